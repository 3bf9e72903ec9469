use super::{parse_names, Ctx};
use crate::clients::incus::Instance;
use crate::clients::{incus, nix};
use crate::containers::instance::{self, is_managed};
use crate::containers::manifest;
use crate::containers::profile::ProfileState;
use crate::error::{Error, Result};
use crate::hosts::gather;
use crate::hosts::Placement;
use crate::name::{ContainerName, StorePath};
use crate::output::{self, errln, out};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Missing,
    Stopped,
    Running,
    Outdated,
    Drifted,
    /// Declared and managed, but its host profile is gone (removed by hand).
    Unprofiled,
    Orphaned,
    Conflict,
    /// On another host whose store inx cannot reach over ssh now.
    Unreachable,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Missing => "missing",
            State::Stopped => "stopped",
            State::Running => "running",
            State::Outdated => "outdated",
            State::Drifted => "drifted",
            State::Unprofiled => "unprofiled",
            State::Orphaned => "orphaned",
            State::Conflict => "conflict",
            State::Unreachable => "unreachable",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub state: State,
    pub declared: bool,
    pub managed: bool,
    /// Incus's status of the instance, when there is one.
    pub status: Option<String>,
    /// The profile generation the container boots.
    pub generation: Option<u32>,
    pub profile_system: Option<StorePath>,
    /// What the container runs now (running containers only).
    pub running_system: Option<StorePath>,
    /// The profile points at a system inx did not put there (a `nixos-rebuild` inside, or a
    /// `nix-env --set` by hand): the next `up` switches back to the flake's.
    pub drifted: bool,
    /// Where it runs: `local`, `REMOTE` or `REMOTE/MEMBER` (see `hosts::label`).
    pub host: String,
    /// Its global addresses while it runs (IPv4 first); `[]` when none (every documented key
    /// is always present, docs/json.md).
    pub addresses: Vec<String>,
}

/// The JSON of `list` and `status` (docs/json.md).
#[derive(Serialize)]
struct Listing<'a> {
    containers: &'a [Row],
}

/// `inx list` (no names) and `inx status [NAME...]`: one placement-only evaluation (no system
/// is evaluated) and one listing per server; profiles and running systems are read from the
/// filesystem here, and over one ssh call per other host.
pub fn list(ctx: &Ctx, names: &[String]) -> Result<()> {
    let wanted = parse_names(names)?;
    // The evaluation and the local listing run at the same time: `list` then takes about as
    // long as `incus list` alone. A failed evaluation is still reported first.
    let eval = nix::eval_placements(&ctx.flake);
    let listing = ctx.incus()?.list();
    let (out, listed) = ctx.runner.capture_both(&eval, &listing);
    let out = nix::evaluated(&ctx.flake, &eval, out)?;
    let declared: BTreeMap<String, Placement> = manifest::parse_placements(&out.stdout)?
        .into_iter()
        .map(|(n, p)| (n, ctx.placement.over(&p)))
        .collect();
    let local = incus::parse_list(&incus::checked(&listing, listed?)?)?;
    let placements: Vec<&Placement> = declared.values().collect();
    let servers = gather::servers(
        &ctx.gather()?,
        &placements,
        BTreeMap::from([(None, local)]),
        false,
    )?;

    // Every declared container where it is declared, then every managed instance of every
    // listed server that is not one of those (orphans, wherever they are).
    let mut found: Vec<(String, Option<Placement>, Option<&Instance>)> = declared
        .iter()
        .map(|(n, p)| {
            let inst = ContainerName::parse(n)
                .ok()
                .and_then(|c| servers.instance(p, &c));
            (n.clone(), Some(p.clone()), inst)
        })
        .collect();
    for (remote, instances) in &servers.listings {
        for i in instances.values().filter(|i| is_managed(i)) {
            let here = declared.get(&i.name).is_some_and(|p| &p.remote == remote);
            if !here {
                let p = Placement {
                    remote: remote.clone(),
                    ..Placement::default()
                };
                found.push((i.name.clone(), Some(p), Some(i)));
            }
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));

    // Each container's store (names that are no container's name are left out).
    let mut located = Vec::new();
    for (name, placement, inst) in &found {
        if let Ok(n) = ContainerName::parse(name) {
            let p = placement.clone().unwrap_or_default();
            let store = servers
                .addresses
                .store(&p, inst.map(|i| i.location.as_str()))?;
            located.push((n, store));
        }
    }
    let stores: Vec<_> = located.iter().map(|(n, s)| (n, s.as_ref())).collect();
    // A host that does not answer costs its own rows only: they say so, the rest is listed.
    let (profiles, unreached) = gather::profiles_reached(&ctx.gather()?, ctx.profiles()?, &stores)?;
    let unreachable: Vec<&ContainerName> = unreached.iter().flat_map(|(n, _)| n).collect();
    for (_, e) in &unreached {
        errln!(
            "warning: {}; its containers show as unreachable",
            e.message.trim_end_matches("; nothing was changed")
        );
    }

    let mut rows: Vec<Row> = found
        .iter()
        .map(|(name, placement, inst)| {
            let profile = ContainerName::parse(name)
                .ok()
                .and_then(|n| profiles.get(&n))
                .map(|(_, _, state)| state.clone())
                .unwrap_or_default();
            let p = placement.clone().unwrap_or_default();
            let member = inst
                .map(|i| i.location.as_str())
                .filter(|l| !l.is_empty() && *l != "none");
            let host = crate::hosts::label(
                p.remote.as_ref(),
                p.target.as_ref().map(|t| t.as_str()).or(member),
            );
            let here = p.is_local();
            let declared = declared.get(name).is_some_and(|d| d.remote == p.remote);
            let mut row = row(name, declared, *inst, profile, host, here);
            if unreachable.iter().any(|n| n.as_str() == name) {
                row.state = State::Unreachable;
            }
            row
        })
        .collect();
    if !wanted.is_empty() {
        let unknown: Vec<&ContainerName> = wanted
            .iter()
            .filter(|w| !rows.iter().any(|r| r.name == w.as_str()))
            .collect();
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|n| n.to_string()).collect();
            return Err(Error::input(format!(
                "neither declared nor managed by inx: {}",
                names.join(", ")
            )));
        }
        rows.retain(|r| wanted.iter().any(|w| w.as_str() == r.name));
    }

    if ctx.json {
        output::json(&Listing { containers: &rows });
    } else {
        out!("{}", table(&rows));
    }
    for r in rows.iter().filter(|r| r.state == State::Unprofiled) {
        let project = match &ctx.incus()?.project {
            Some(p) if !p.is_default() => format!("--project {} ", p.as_str()),
            _ => String::new(),
        };
        errln!(
            "note: {0} has no host profile: nothing keeps its system from the host's garbage collection, and it cannot start again; `inx {project}up {0}` makes the profile again",
            r.name
        );
    }
    Ok(())
}

fn row(
    name: &str,
    declared: bool,
    instance: Option<&Instance>,
    profile: ProfileState,
    host: String,
    here: bool,
) -> Row {
    let managed = instance.is_some_and(is_managed);
    // Another host's /proc is not ours: there, what inx recorded is what runs.
    let running_system = instance.filter(|_| managed).and_then(if here {
        instance::running_system
    } else {
        instance::recorded_system
    });
    // inx records each system it deploys (`up`, `rollback`) on the instance.
    let recorded = instance
        .filter(|_| managed)
        .and_then(|i| i.config.get(instance::KEY_SYSTEM));
    let drifted = match (&profile.system, recorded) {
        (Some(p), Some(r)) => p.as_str() != r,
        _ => false,
    };
    // A container made from its image has no host profile; any other has one from its first
    // `up` on. Without it, nothing keeps its system from the host's GC and it cannot boot.
    let unprofiled = profile.system.is_none() && !instance.is_some_and(instance::is_from_image);
    let state = match instance {
        None => State::Missing,
        Some(_) if !managed => State::Conflict,
        Some(_) if !declared => State::Orphaned,
        Some(_) if unprofiled => State::Unprofiled,
        Some(i) if i.running() => {
            if profile.system.is_some() && running_system != profile.system {
                State::Outdated
            } else if drifted {
                State::Drifted
            } else {
                State::Running
            }
        }
        Some(_) => State::Stopped,
    };
    Row {
        name: name.to_string(),
        state,
        declared,
        managed,
        status: instance.map(|i| i.status.clone()),
        generation: profile.generation,
        profile_system: profile.system,
        running_system,
        drifted,
        host,
        addresses: instance.map(Instance::addresses).unwrap_or_default(),
    }
}

pub fn table(rows: &[Row]) -> String {
    // The HOST column shows only when some container runs on another host.
    let hosts = rows.iter().any(|r| r.host != "local");
    // The ADDRESS column, likewise, only when some container has one.
    let addresses = rows.iter().any(|r| !r.addresses.is_empty());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let system = r.running_system.as_ref().or(r.profile_system.as_ref());
            let mut row = vec![r.name.clone()];
            if hosts {
                row.push(r.host.clone());
            }
            row.extend([
                r.state.as_str().to_string(),
                r.generation
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "-".into()),
                system
                    .map(|s| s.base_name().to_string())
                    .unwrap_or_else(|| "-".into()),
            ]);
            if addresses {
                row.push(if r.addresses.is_empty() {
                    "-".into()
                } else {
                    r.addresses.join(",")
                });
            }
            row
        })
        .collect();
    let mut header: Vec<String> = vec!["NAME".into()];
    if hosts {
        header.push("HOST".into());
    }
    header.extend(["STATE", "GEN", "SYSTEM"].map(String::from));
    if addresses {
        header.push("ADDRESS".into());
    }
    let columns = header.len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            cells
                .iter()
                .chain([&header])
                .map(|r| r[c].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in [&header].into_iter().chain(&cells) {
        let line: Vec<String> = (0..columns)
            .map(|c| format!("{:<w$}", r[c], w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(name: &str, host: &str) -> Row {
        Row {
            name: name.into(),
            state: State::Running,
            declared: true,
            managed: true,
            status: Some("Running".into()),
            generation: Some(1),
            profile_system: None,
            running_system: None,
            drifted: false,
            host: host.into(),
            addresses: vec![],
        }
    }

    #[test]
    fn the_address_column_shows_global_addresses_only_when_a_container_has_one() {
        let listed: Instance = serde_json::from_value(serde_json::json!({
            "name": "db", "status": "Running",
            "state": { "pid": 7, "network": {
                "lo": { "addresses": [ { "family": "inet", "address": "127.0.0.1", "scope": "local" } ] },
                "eth0": { "addresses": [
                    { "family": "inet6", "address": "fc00::2", "scope": "global" },
                    { "family": "inet6", "address": "fe80::1", "scope": "link" },
                    { "family": "inet", "address": "10.231.77.2", "scope": "global" }
                ] }
            } }
        }))
        .unwrap();
        assert_eq!(listed.addresses(), ["10.231.77.2", "fc00::2"]);
        let mut db = at("db", "local");
        db.addresses = listed.addresses();
        let lines: Vec<String> = table(&[db, at("web", "local")])
            .lines()
            .map(String::from)
            .collect();
        assert_eq!(lines[0], "NAME  STATE    GEN  SYSTEM  ADDRESS");
        assert_eq!(lines[1], "db    running  1    -       10.231.77.2,fc00::2");
        assert_eq!(lines[2], "web   running  1    -       -");
        assert_eq!(
            table(&[at("web", "local")]).lines().next(),
            Some("NAME  STATE    GEN  SYSTEM")
        );
    }

    #[test]
    fn the_host_column_shows_only_when_a_container_runs_elsewhere() {
        let here = table(&[at("web", "local")]);
        assert_eq!(here.lines().next(), Some("NAME  STATE    GEN  SYSTEM"));
        let mut db = at("db", "h2/member3");
        db.state = State::Unreachable;
        let both = table(&[db, at("web", "local")]);
        let lines: Vec<&str> = both.lines().collect();
        assert_eq!(lines[0], "NAME  HOST        STATE        GEN  SYSTEM");
        assert_eq!(lines[1], "db    h2/member3  unreachable  1    -");
        assert_eq!(lines[2], "web   local       running      1    -");
    }
}
