//! The gathering that several hosts add to a command: one listing per Incus remote (a cluster
//! lists all its members at once), where the remotes and members are, and each other host's
//! profiles, read in one ssh call per host. All calls of a round run at the same time. Every
//! command that reaches containers on other hosts gathers through here (`Gather`, from
//! `Ctx::gather`); the plans then work on what it found.

use crate::clients::incus::{self, Client, Instance};
use crate::cmd::{Cmd, Output};
use crate::containers::profile::{ProfileState, Profiles};
use crate::error::{Error, Kind, Result};
use crate::execute::process::Run;
use crate::hosts::{self, Addresses, Placement, SshDest, Store};

/// What gathering needs of a command: what runs the queries, the Incus client of its project,
/// its flake, and the placement the command line gives.
pub struct Gather<'a> {
    pub runner: &'a dyn Run,
    pub incus: &'a Client,
    pub flake: &'a str,
    pub placement: &'a Placement,
}
use crate::name::{ContainerName, RemoteName};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

pub type Listings = BTreeMap<Option<RemoteName>, BTreeMap<String, Instance>>;

/// Each container's host profile: its folder there, whether it exists, and what it holds.
pub type ProfileStates = BTreeMap<ContainerName, (PathBuf, bool, ProfileState)>;

/// The hosts that did not answer: their containers, and the error that says so.
pub type Unreached = Vec<(Vec<ContainerName>, Error)>;

/// What each call of `servers` asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Query {
    /// `list REMOTE:`
    List,
    /// `query REMOTE:/1.0`
    Info,
    /// `cluster list REMOTE:`
    Members,
    /// The client's `remote list`.
    Remotes,
}

/// What Incus says about the servers a command's containers run on.
pub struct Servers {
    pub listings: Listings,
    pub addresses: Addresses,
    /// Each server's answer to `query /1.0` (for idmapped mounts), when asked.
    pub info: BTreeMap<Option<RemoteName>, (Cmd, Result<Output>)>,
}

impl Servers {
    /// The instance of `name` where `placement` puts it.
    pub fn instance(&self, placement: &Placement, name: &ContainerName) -> Option<&Instance> {
        self.listings
            .get(&placement.remote)
            .and_then(|l| l.get(name.as_str()))
    }
}

/// Lists every remote the placements name (the local server's listing may come in already
/// made, from the round that evaluated the flake), and learns the addresses of the remotes and
/// of the members of those that are clusters. `info`: also ask each remote's server about
/// itself.
pub fn servers(
    g: &Gather,
    placements: &[&Placement],
    mut listings: Listings,
    info: bool,
) -> Result<Servers> {
    let client = g.incus;
    let remotes: BTreeSet<Option<RemoteName>> =
        placements.iter().map(|p| p.remote.clone()).collect();
    // Only a target on the local server needs to know whether it is a cluster.
    let clusters: BTreeSet<Option<RemoteName>> = placements
        .iter()
        .filter(|p| p.remote.is_some() || p.target.is_some())
        .map(|p| p.remote.clone())
        .collect();
    let mut cmds: Vec<(Query, Option<RemoteName>, Cmd)> = Vec::new();
    for r in &remotes {
        let on = client.on(r.as_ref());
        if !listings.contains_key(r) {
            cmds.push((Query::List, r.clone(), on.list()));
        }
        if info && r.is_some() {
            cmds.push((Query::Info, r.clone(), on.server_info()));
        }
    }
    for r in &clusters {
        cmds.push((
            Query::Members,
            r.clone(),
            client.on(r.as_ref()).cluster_list(),
        ));
    }
    if remotes.iter().any(Option::is_some) {
        cmds.push((Query::Remotes, None, client.remote_list()));
    }
    let refs: Vec<&Cmd> = cmds.iter().map(|(_, _, c)| c).collect();
    let outs = g.runner.capture_many(&refs);

    let mut addresses = Addresses {
        ssh_opts: std::env::var("NIX_SSHOPTS")
            .unwrap_or_default()
            .split_whitespace()
            .map(String::from)
            .collect(),
        ..Addresses::default()
    };
    let mut info_of = BTreeMap::new();
    // Listings first: a remote that is down says so there.
    let mut rest = Vec::new();
    for ((what, remote, cmd), out) in cmds.into_iter().zip(outs) {
        if what == Query::List {
            let listed = incus::parse_list(&incus::checked(&cmd, out?)?)?;
            listings.insert(remote, listed);
        } else {
            rest.push((what, remote, cmd, out));
        }
    }
    for (what, remote, cmd, out) in rest {
        match what {
            Query::Info => {
                info_of.insert(remote, (cmd, out));
            }
            // A server that is not a cluster refuses `cluster list`.
            Query::Members => {
                if let Ok(out) = out.and_then(|o| incus::checked(&cmd, o)) {
                    addresses
                        .members
                        .insert(remote, hosts::parse_members(&out.stdout)?);
                }
            }
            Query::Remotes => {
                addresses.remotes = incus::parse_remotes(&incus::checked(&cmd, out?)?)?
            }
            Query::List => unreachable!("listings are read first"),
        }
    }
    Ok(Servers {
        listings,
        addresses,
        info: info_of,
    })
}

/// Each container's profile on its own host's store: this machine's read from the filesystem,
/// another host's in one ssh call per host (all hosts at once). A host that does not answer is
/// an error before anything changes.
pub fn profiles(
    g: &Gather,
    profiles: &Profiles,
    stores: &[(&ContainerName, Option<&Store>)],
) -> Result<ProfileStates> {
    let (states, mut unreached) = profiles_reached(g, profiles, stores)?;
    match unreached.pop() {
        Some((_, e)) => Err(e),
        None => Ok(states),
    }
}

/// `profiles`, for a command that can go on without some hosts (`list`): the states it read,
/// and each host that did not answer with its error and its containers.
pub fn profiles_reached(
    g: &Gather,
    profiles: &Profiles,
    stores: &[(&ContainerName, Option<&Store>)],
) -> Result<(ProfileStates, Unreached)> {
    let mut unreached = Vec::new();
    let mut states = BTreeMap::new();
    let remote_dirs = profiles.on_other_host();
    let mut by_host: BTreeMap<&SshDest, Vec<&ContainerName>> = BTreeMap::new();
    for (name, store) in stores {
        match store {
            Some(Store::Ssh(dest)) => by_host.entry(dest).or_default().push(name),
            Some(Store::Local) => {
                let dir = profiles.dir(name);
                states.insert(
                    (*name).clone(),
                    (dir.clone(), dir.is_dir(), profiles.read(name)),
                );
            }
            // Not placed yet: nothing there to read.
            None => {
                states.insert(
                    (*name).clone(),
                    (remote_dirs.dir(name), false, ProfileState::default()),
                );
            }
        }
    }
    let reads: Vec<(&SshDest, Vec<PathBuf>, Cmd)> = by_host
        .iter()
        .map(|(dest, names)| {
            let dirs: Vec<PathBuf> = names.iter().map(|n| remote_dirs.dir(n)).collect();
            let cmd = dest.read_profiles(&dirs);
            (*dest, dirs, cmd)
        })
        .collect();
    let refs: Vec<&Cmd> = reads.iter().map(|(_, _, c)| c).collect();
    let outs = g.runner.capture_many(&refs);
    for ((dest, dirs, cmd), out) in reads.iter().zip(outs) {
        let out = out?;
        if !out.success() {
            let names = by_host[dest].iter().map(|n| (*n).clone()).collect();
            unreached.push((names, unreachable(dest, &out)));
            continue;
        }
        let read = hosts::ssh::parse_profiles(cmd, &out, dirs.len())?;
        for ((name, dir), state) in by_host[dest].iter().zip(dirs).zip(read) {
            let exists = state.is_some();
            states.insert(
                (*name).clone(),
                (dir.clone(), exists, state.unwrap_or_default()),
            );
        }
    }
    Ok((states, unreached))
}

pub fn unreachable(dest: &SshDest, out: &Output) -> Error {
    Error::new(
        Kind::Unreachable,
        format!(
            "cannot reach {} over ssh: {}; nothing was changed",
            dest.login(),
            crate::cmd::tail(out.stderr.trim(), 3)
        ),
    )
    .with_hint("inx reaches other hosts' stores with ssh, as `nix copy --to ssh://` does: check that sshd runs there and that `ssh USER@HOST true` works without a prompt (NIX_SSHOPTS, ssh.user/host/port in mkContainer, or --ssh)")
}

/// One named container, found where the flake (under the command line) places it.
pub struct Located {
    pub placement: Placement,
    pub instance: Option<Instance>,
    /// Its host's store; `None` when its cluster has not placed it (no instance, no target).
    pub store: Option<Store>,
    /// The client for its server.
    pub incus: Client,
}

impl Located {
    /// For commands that read or write the host profile here: refuses a container elsewhere.
    pub fn here_only(&self, name: &ContainerName, command: &str) -> Result<()> {
        if matches!(self.store, Some(Store::Local) | None) && self.placement.is_local() {
            return Ok(());
        }
        Err(Error::input(format!(
            "{name} runs on {}; `inx {command}` works on this machine's containers only",
            hosts::label(
                self.placement.remote.as_ref(),
                self.placement.target.as_ref().map(|t| t.as_str())
            )
        ))
        .with_hint("use incus on that remote, or run inx on that host"))
    }
}

/// Finds each named container. The local server's listing comes first, and when it has every
/// one (and the command line names no remote), that is all: local containers cost what they
/// did before there were other hosts. Otherwise a cheap evaluation (no system is evaluated)
/// says where the flake places them, and their servers are listed. A name the flake does not
/// declare, or a flake that cannot be evaluated, means the local server (or `--remote`), so a
/// container can still be stopped or destroyed after its flake broke.
pub fn locate(g: &Gather, names: &[ContainerName]) -> Result<BTreeMap<ContainerName, Located>> {
    Ok(locate_with_addresses(g, names)?.0)
}

/// `locate`, with what Incus said of where the servers and members are.
pub fn locate_with_addresses(
    g: &Gather,
    names: &[ContainerName],
) -> Result<(BTreeMap<ContainerName, Located>, Addresses)> {
    let listing = g.incus.list();
    let local = incus::parse_list(&incus::checked(&listing, g.runner.capture(&listing)?)?)?;
    let all_here = names.iter().all(|n| local.contains_key(n.as_str()));
    let declared = if all_here && g.placement.is_local() {
        BTreeMap::new()
    } else {
        let eval = crate::clients::nix::eval_placements(g.flake);
        match crate::clients::nix::evaluated(g.flake, &eval, g.runner.capture(&eval))
            .and_then(|o| crate::containers::manifest::parse_placements(&o.stdout))
        {
            Ok(d) => d,
            Err(e) if e.kind == Kind::ToolMissing => return Err(e),
            Err(_) => BTreeMap::new(),
        }
    };
    let placements: Vec<Placement> = names
        .iter()
        .map(|n| {
            g.placement
                .over(&declared.get(n.as_str()).cloned().unwrap_or_default())
        })
        .collect();
    let servers = servers(
        g,
        &placements.iter().collect::<Vec<_>>(),
        BTreeMap::from([(None, local)]),
        false,
    )?;
    let found = names
        .iter()
        .zip(placements)
        .map(|(n, p)| {
            let instance = servers.instance(&p, n).cloned();
            let store = servers
                .addresses
                .store(&p, instance.as_ref().map(|i| i.location.as_str()))?;
            let incus = g.incus.on(p.remote.as_ref());
            Ok((
                n.clone(),
                Located {
                    placement: p,
                    instance,
                    store,
                    incus,
                },
            ))
        })
        .collect::<Result<_>>()?;
    Ok((found, servers.addresses))
}

/// The instance of a container that must be on this machine (commands that read or write its
/// host profile here): `None` when there is none; an error when the flake places it elsewhere.
pub fn here(g: &Gather, name: &ContainerName, command: &str) -> Result<Option<Instance>> {
    let mut located = locate(g, std::slice::from_ref(name))?;
    let l = located.remove(name).expect("located every name");
    l.here_only(name, command)?;
    Ok(l.instance)
}
