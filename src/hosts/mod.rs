//! Several hosts: where a container runs (the local server, an Incus remote, a member of an
//! Incus cluster) and how inx reaches the /nix/store of the host under it. Each host has its own
//! store, so a shared-store container runs only where its closure is: inx builds once here and
//! copies to each host over ssh, as Nix does (`nix copy --to ssh://`, `NIX_SSHOPTS`).

pub mod gather;
pub mod ssh;

use crate::clients::incus::Remote;
pub use crate::containers::placement::{Placement, SshSettings};
use crate::error::{Error, Result};
use crate::name::{HostWord, RemoteName};
pub use ssh::SshDest;
use std::collections::BTreeMap;

/// `local`, `REMOTE`, `REMOTE/MEMBER` or (a member of the local server's cluster) `/MEMBER`:
/// how `list` and the plans name a host.
pub fn label(remote: Option<&RemoteName>, member: Option<&str>) -> String {
    match (remote, member) {
        (None, None) => "local".to_string(),
        (Some(r), None) => r.to_string(),
        (r, Some(m)) => format!("{}/{m}", r.map(|r| r.as_str()).unwrap_or("")),
    }
}

/// A host's store: this machine's, or one reached over ssh.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Store {
    Local,
    Ssh(SshDest),
}

/// What the Incus client knows of where servers are: its remotes' addresses (its own config)
/// and, per remote that is a cluster, its members' (`cluster list`, one call per remote).
#[derive(Debug, Clone, Default)]
pub struct Addresses {
    pub remotes: BTreeMap<String, Remote>,
    /// Per remote (`None`: the local server), its members' URLs; absent: not a cluster.
    pub members: BTreeMap<Option<RemoteName>, BTreeMap<String, String>>,
    /// `NIX_SSHOPTS`, split as Nix splits it: inx's own ssh calls use it too.
    pub ssh_opts: Vec<String>,
}

/// A member as `cluster list --format json` describes it.
#[derive(Debug, serde::Deserialize)]
struct Member {
    server_name: String,
    url: String,
}

pub fn parse_members(json: &str) -> Result<BTreeMap<String, String>> {
    let members: Vec<Member> = serde_json::from_str(json).map_err(|e| {
        Error::new(
            crate::error::Kind::Incus,
            format!("cannot read the output of incus cluster list: {e}"),
        )
    })?;
    Ok(members
        .into_iter()
        .map(|m| (m.server_name, m.url))
        .collect())
}

impl Addresses {
    /// The store a container placed at `placement` uses, once it is known on which member it
    /// is (`location`: where Incus put an existing instance). `Ok(None)`: Incus has yet to pick
    /// the member (a cluster, no target, no instance).
    pub fn store(&self, placement: &Placement, location: Option<&str>) -> Result<Option<Store>> {
        // The local server's containers use this machine's store, even where that server is
        // a cluster member (then inx does not follow Incus elsewhere without a target).
        if placement.is_local() {
            return Ok(Some(Store::Local));
        }
        let remote = placement.remote.as_ref();
        let name = remote.map_or("the local server", |r| r.as_str());
        let url = match self.members.get(&remote.cloned()) {
            Some(members) => {
                let member = placement
                    .target
                    .as_ref()
                    .map(|t| t.as_str())
                    .or(location.filter(|l| !l.is_empty() && *l != "none"));
                let Some(member) = member else {
                    return Ok(None);
                };
                members.get(member).cloned().ok_or_else(|| {
                    Error::input(format!("{name} has no cluster member named {member}")).with_hint(
                        format!(
                            "`incus cluster list {}` shows its members",
                            remote.map(|r| format!("{r}:")).unwrap_or_default()
                        ),
                    )
                })?
            }
            None if placement.target.is_some() => {
                return Err(Error::input(format!(
                    "{name} is not a cluster, so a container there cannot have a target member"
                ))
                .with_hint("remove incus.target (or --target)"));
            }
            None => match remote {
                None => return Ok(Some(Store::Local)),
                Some(r) => self
                    .remotes
                    .get(r.as_str())
                    .map(|r| r.addr.clone())
                    .ok_or_else(|| {
                        Error::input(format!("the Incus client has no remote named {r}")).with_hint(
                            "`incus remote list` shows them; add one with `incus remote add`",
                        )
                    })?,
            },
        };
        // A remote that is this machine's own server (`local`, `unix://`).
        if url.starts_with("unix:") && placement.ssh.host.is_none() {
            return Ok(Some(Store::Local));
        }
        let host = match &placement.ssh.host {
            Some(h) => h.clone(),
            None => host_of(&url).ok_or_else(|| {
                Error::input(format!(
                    "cannot tell an ssh host from {name}'s address {url}"
                ))
                .with_hint("set ssh.host in mkContainer (or pass --ssh USER@HOST)")
            })?,
        };
        Ok(Some(Store::Ssh(SshDest {
            user: placement
                .ssh
                .user
                .clone()
                .unwrap_or_else(|| HostWord::ssh("root").expect("a valid user")),
            host,
            port: placement.ssh.port,
            opts: self.ssh_opts.clone(),
        })))
    }
}

/// The host of `https://HOST:PORT` (or `https://HOST`), when it is a name or IPv4 address.
fn host_of(url: &str) -> Option<HostWord> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = match authority.rsplit_once(':') {
        Some((h, _)) if !h.contains(':') => h,
        _ => authority,
    };
    HostWord::ssh(host).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addresses() -> Addresses {
        let remote = |addr: &str| Remote {
            addr: addr.to_string(),
            protocol: "incus".into(),
            public: false,
        };
        Addresses {
            remotes: BTreeMap::from([
                ("h2".to_string(), remote("https://127.0.0.2:8443")),
                ("h4".to_string(), remote("https://box.example:8443")),
                ("local".to_string(), remote("unix://")),
            ]),
            members: BTreeMap::from([(
                Some(RemoteName::parse("h2").unwrap()),
                BTreeMap::from([
                    ("m2".to_string(), "https://127.0.0.2:8443".to_string()),
                    ("m3".to_string(), "https://127.0.0.3:8443".to_string()),
                ]),
            )]),
            ssh_opts: vec!["-F".into(), "/cfg".into()],
        }
    }

    fn at(remote: Option<&str>, target: Option<&str>) -> Placement {
        Placement {
            remote: remote.map(|r| RemoteName::parse(r).unwrap()),
            target: target.map(|t| HostWord::member(t).unwrap()),
            ssh: SshSettings::default(),
        }
    }

    fn host(store: Option<Store>) -> String {
        match store {
            Some(Store::Ssh(d)) => format!("{}@{}:{:?}", d.user, d.host, d.port),
            Some(Store::Local) => "local".into(),
            None => "unplaced".into(),
        }
    }

    #[test]
    fn the_ssh_host_is_the_address_incus_has_for_the_member_or_remote() {
        let a = addresses();
        assert_eq!(host(a.store(&at(None, None), None).unwrap()), "local");
        assert_eq!(
            host(a.store(&at(Some("local"), None), None).unwrap()),
            "local"
        );
        assert_eq!(
            host(a.store(&at(Some("h4"), None), None).unwrap()),
            "root@box.example:None"
        );
        assert_eq!(
            host(a.store(&at(Some("h2"), Some("m3")), None).unwrap()),
            "root@127.0.0.3:None"
        );
        // No target: where Incus put the instance, or not known yet.
        assert_eq!(
            host(a.store(&at(Some("h2"), None), Some("m2")).unwrap()),
            "root@127.0.0.2:None"
        );
        assert_eq!(
            host(a.store(&at(Some("h2"), None), None).unwrap()),
            "unplaced"
        );
    }

    #[test]
    fn declared_ssh_settings_win_over_what_incus_says() {
        let mut p = at(Some("h2"), Some("m3"));
        p.ssh = SshSettings::parse("deploy@node3.lan:2222").unwrap();
        assert_eq!(
            host(addresses().store(&p, None).unwrap()),
            "deploy@node3.lan:Some(2222)"
        );
    }

    #[test]
    fn unknown_remotes_members_and_targets_off_a_cluster_are_input_errors() {
        let a = addresses();
        for (p, says) in [
            (at(Some("nope"), None), "no remote named nope"),
            (at(Some("h2"), Some("m9")), "no cluster member named m9"),
            (at(Some("h4"), Some("m3")), "h4 is not a cluster"),
        ] {
            let e = a.store(&p, None).unwrap_err();
            assert_eq!(e.kind, crate::error::Kind::Input);
            assert!(e.message.contains(says), "{}", e.message);
        }
    }

    #[test]
    fn the_command_line_wins_over_the_flake() {
        let flake = Placement {
            ssh: SshSettings::parse("alice@a:2200").unwrap(),
            ..at(Some("h2"), Some("m2"))
        };
        let cli = Placement {
            ssh: SshSettings::parse("bob@b").unwrap(),
            ..at(None, Some("m3"))
        };
        let p = cli.over(&flake);
        assert_eq!(p.remote.unwrap().as_str(), "h2");
        assert_eq!(p.target.unwrap().as_str(), "m3");
        assert_eq!(p.ssh.user.unwrap().as_str(), "bob");
        assert_eq!(p.ssh.port, Some(2200));
        assert_eq!(label(None, None), "local");
    }
}
