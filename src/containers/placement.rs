//! Where the flake (or the command line) says a container runs: pure data of the flake
//! contract. How inx reaches that host is `hosts`'s.

use crate::error::{Error, Result};
use crate::name::{HostWord, RemoteName};

/// Where a container is declared to run: mkContainer's `incus.remote`, `incus.target` and
/// `ssh`, each overridden by the command line's `--remote`, `--target` and `--ssh`.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Placement {
    pub remote: Option<RemoteName>,
    /// A cluster member; none lets Incus pick one.
    pub target: Option<HostWord>,
    pub ssh: SshSettings,
}

/// How to reach the host's sshd; what is not set comes from Incus (the host) or ssh's own
/// defaults (port 22, or the user's ssh config), with `root` as the user.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SshSettings {
    pub user: Option<HostWord>,
    pub host: Option<HostWord>,
    pub port: Option<u16>,
}

impl SshSettings {
    /// `[USER@]HOST[:PORT]`, as `--ssh` takes it.
    pub fn parse(s: &str) -> Result<Self> {
        let (user, rest) = match s.split_once('@') {
            Some((u, r)) => (Some(HostWord::ssh(u)?), r),
            None => (None, s),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => {
                let port = p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                    Error::input(format!("invalid ssh port {p:?}: give 1 to 65535"))
                })?;
                (h, Some(port))
            }
            None => (rest, None),
        };
        let host = (!host.is_empty())
            .then(|| HostWord::ssh(host))
            .transpose()?;
        Ok(SshSettings { user, host, port })
    }
}

impl Placement {
    /// Whether the container runs on the local server (the store is this machine's).
    pub fn is_local(&self) -> bool {
        self.remote.is_none() && self.target.is_none()
    }

    /// `self` (the command line) over `flake`: each thing set here wins.
    pub fn over(&self, flake: &Placement) -> Placement {
        Placement {
            remote: self.remote.clone().or_else(|| flake.remote.clone()),
            target: self.target.clone().or_else(|| flake.target.clone()),
            ssh: SshSettings {
                user: self.ssh.user.clone().or_else(|| flake.ssh.user.clone()),
                host: self.ssh.host.clone().or_else(|| flake.ssh.host.clone()),
                port: self.ssh.port.or(flake.ssh.port),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_settings_parse_user_host_and_port_and_refuse_options() {
        let s = SshSettings::parse("127.0.0.3").unwrap();
        assert_eq!(
            (s.user, s.host.unwrap().as_str().to_string(), s.port),
            (None, "127.0.0.3".into(), None)
        );
        let s = SshSettings::parse("me@h:22").unwrap();
        assert_eq!(s.user.unwrap().as_str(), "me");
        assert_eq!(s.port, Some(22));
        for bad in ["-oProxyCommand=x", "me@-h", "h:0", "h:99999", "a b"] {
            assert!(SshSettings::parse(bad).is_err(), "{bad}");
        }
    }
}
