//! The image commands of the Incus client (`incus`) or LXD's (`lxc`), as data, and how their
//! output and failures are read. The two clients agree on everything inx uses for images
//! (`image list|import|alias`, `query`, `remote list`); they differ in their name, their daemon
//! and where `create` is `init`.

use crate::error::{Error, Kind, Result};
use crate::images::{Alias, ImageFiles};
use crate::incus::incus_failure;
use crate::process::{Cmd, Output};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// Incus, through its client `incus`.
    #[default]
    Incus,
    /// LXD (as on ChromeOS), through its client `lxc`.
    Lxd,
}

pub use crate::name::RemoteName;

/// A remote the client knows, from `remote list --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Remote {
    #[serde(rename = "Addr")]
    pub addr: String,
    #[serde(rename = "Protocol", default)]
    pub protocol: String,
    #[serde(rename = "Public", default)]
    pub public: bool,
}

impl Remote {
    /// Whether images can be pushed there: an Incus or LXD server, not a read-only
    /// simplestreams or OCI registry.
    pub fn is_server(&self) -> bool {
        matches!(self.protocol.as_str(), "" | "incus" | "lxd")
    }
}

/// An image a server has, from `image list --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerImage {
    pub fingerprint: String,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub aliases: Vec<ServerAlias>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServerAlias {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

impl Backend {
    pub fn program(self) -> &'static str {
        match self {
            Backend::Incus => "incus",
            Backend::Lxd => "lxc",
        }
    }

    pub fn daemon(self) -> &'static str {
        match self {
            Backend::Incus => "Incus",
            Backend::Lxd => "LXD",
        }
    }

    fn cmd(self) -> Cmd {
        Cmd::new(self.program())
    }

    /// `REMOTE:` or, for the local server, nothing.
    fn target(remote: Option<&RemoteName>) -> Option<String> {
        remote.map(|r| format!("{}:", r.as_str()))
    }

    pub fn remote_list(self) -> Cmd {
        self.cmd().args(["remote", "list", "--format", "json"])
    }

    pub fn image_list(self, remote: Option<&RemoteName>) -> Cmd {
        self.cmd()
            .args(["image", "list"])
            .args(Self::target(remote))
            .args(["--format", "json"])
    }

    /// One import of the split image, with its alias when no other image holds it. Neither
    /// client may be asked to take an alias over on import (LXD has no `--reuse`), so then the
    /// plan imports without it and moves the alias afterwards (`alias_retarget`).
    pub fn image_import(
        self,
        files: &ImageFiles,
        remote: Option<&RemoteName>,
        alias: Option<&Alias>,
        public: bool,
    ) -> Cmd {
        let mut cmd = self
            .cmd()
            .args(["image", "import"])
            .arg(files.metadata.display().to_string())
            .arg(files.root.display().to_string())
            .args(Self::target(remote));
        if let Some(alias) = alias {
            cmd = cmd.args(["--alias", alias.as_str()]);
        }
        if public {
            cmd = cmd.arg("--public");
        }
        cmd
    }

    fn prefixed(remote: Option<&RemoteName>, what: &str) -> String {
        match remote {
            Some(r) => format!("{}:{what}", r.as_str()),
            None => what.to_string(),
        }
    }

    /// Points an existing alias at another image in one call, so the alias never names no
    /// image. Neither client has a command for it (`image alias` has create, delete, list and
    /// rename), so this goes through the API: PUT, which both take; LXD 5.0.2 hangs on PATCH of
    /// an alias. PUT replaces the description too, so the alias's own is passed on.
    pub fn alias_retarget(
        self,
        remote: Option<&RemoteName>,
        alias: &Alias,
        fingerprint: &str,
        description: &str,
    ) -> Cmd {
        let body = serde_json::json!({ "description": description, "target": fingerprint });
        self.cmd()
            .args(["query", "-X", "PUT"])
            .arg(Self::prefixed(
                remote,
                &format!("/1.0/images/aliases/{}", alias.as_str()),
            ))
            .args(["--data".to_string(), body.to_string()])
    }

    pub fn alias_create(
        self,
        remote: Option<&RemoteName>,
        alias: &Alias,
        fingerprint: &str,
    ) -> Cmd {
        self.cmd()
            .args(["image", "alias", "create"])
            .arg(Self::prefixed(remote, alias.as_str()))
            .arg(fingerprint)
    }

    /// Makes an image that is already there public (both clients' `image edit` wants an editor).
    pub fn make_public(self, remote: Option<&RemoteName>, fingerprint: &str) -> Cmd {
        self.cmd()
            .args(["query", "-X", "PATCH", "--wait"])
            .arg(Self::prefixed(
                remote,
                &format!("/1.0/images/{fingerprint}"),
            ))
            .args(["--data", r#"{"public":true}"#])
    }

    /// Explains a failed command: a daemon that is down or refuses gets its own exit code, with
    /// this backend's name in the hint.
    pub fn failure(self, cmd: &Cmd, out: &Output) -> Error {
        let err = out.stderr.to_lowercase();
        let refused = ["not authorized", "forbidden", "not trusted"];
        if refused.iter().any(|s| err.contains(s)) {
            return crate::process::failure(Kind::Incus, cmd, out).with_hint(format!(
                "the {} server refused: add this client as trusted there (`{} config trust add` on the server, then `{} remote add NAME https://HOST:8443 --token TOKEN` here)",
                self.daemon(),
                self.program(),
                self.program()
            ));
        }
        let mut e = incus_failure(cmd, out);
        if self == Backend::Lxd {
            e.hint = e.hint.map(|h| {
                h.replace("Incus daemon", "LXD daemon")
                    .replace("systemctl start incus", "systemctl start lxd")
                    .replace("incus-admin group", "lxd group")
            });
        }
        e
    }

    pub fn checked(self, cmd: &Cmd, out: Output) -> Result<Output> {
        if out.success() {
            Ok(out)
        } else {
            Err(self.failure(cmd, &out))
        }
    }
}

pub fn parse_remotes(out: &Output) -> Result<BTreeMap<String, Remote>> {
    serde_json::from_str(&out.stdout).map_err(|e| {
        Error::new(
            Kind::Failed,
            format!("cannot read the output of remote list: {e}"),
        )
    })
}

pub fn parse_images(out: &Output) -> Result<Vec<ServerImage>> {
    serde_json::from_str(&out.stdout).map_err(|e| {
        Error::new(
            Kind::Failed,
            format!("cannot read the output of image list: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::images::ImageKind;

    fn files() -> ImageFiles {
        ImageFiles {
            kind: ImageKind::Container,
            metadata: "/nix/store/m/meta.tar.xz".into(),
            root: "/nix/store/r/root.squashfs".into(),
            fingerprint: "ab12".into(),
        }
    }

    #[test]
    fn both_clients_take_the_same_image_commands() {
        let alias = Alias::parse("nixos/web").unwrap();
        let remote = RemoteName::parse("pub:").unwrap();
        assert_eq!(
            Backend::Incus.image_import(&files(), Some(&remote), Some(&alias), true).to_shell(),
            "incus image import /nix/store/m/meta.tar.xz /nix/store/r/root.squashfs pub: --alias nixos/web --public"
        );
        assert_eq!(
            Backend::Lxd.image_import(&files(), None, Some(&alias), false).to_shell(),
            "lxc image import /nix/store/m/meta.tar.xz /nix/store/r/root.squashfs --alias nixos/web"
        );
        assert_eq!(
            Backend::Lxd.image_list(Some(&remote)).to_shell(),
            "lxc image list pub: --format json"
        );
        assert_eq!(
            Backend::Incus.make_public(None, "ab12").to_shell(),
            r#"incus query -X PATCH --wait /1.0/images/ab12 --data '{"public":true}'"#
        );
        assert_eq!(
            Backend::Incus
                .alias_create(Some(&remote), &alias, "ab12")
                .to_shell(),
            "incus image alias create pub:nixos/web ab12"
        );
        assert_eq!(
            Backend::Lxd
                .alias_retarget(Some(&remote), &alias, "ab12", "the web server")
                .to_shell(),
            r#"lxc query -X PUT pub:/1.0/images/aliases/nixos/web --data '{"description":"the web server","target":"ab12"}'"#
        );
    }

    #[test]
    fn remotes_and_images_are_read() {
        let out = |s: &str| Output {
            code: Some(0),
            stdout: s.into(),
            stderr: String::new(),
        };
        let remotes = parse_remotes(&out(
            r#"{"images":{"Addr":"https://images.example","Protocol":"simplestreams","Public":true},
                "local":{"Addr":"unix://","Protocol":"","Public":false,"Static":true}}"#,
        ))
        .unwrap();
        assert!(!remotes["images"].is_server());
        assert!(remotes["local"].is_server());
        let images = parse_images(&out(
            r#"[{"fingerprint":"ab12","public":true,"aliases":[{"name":"nixos/web","description":""}],"size":1}]"#,
        ))
        .unwrap();
        assert_eq!(images[0].aliases[0].name, "nixos/web");
        assert!(RemoteName::parse("bad name").is_err());
        assert_eq!(RemoteName::parse("pub:").unwrap().as_str(), "pub");
    }

    #[test]
    fn refusals_and_a_down_lxd_are_explained() {
        let cmd = Backend::Lxd.image_list(None);
        let out = |e: &str| Output {
            code: Some(1),
            stdout: String::new(),
            stderr: e.into(),
        };
        let down = Backend::Lxd.failure(
            &cmd,
            &out("Error: LXD unix socket \"/var/lib/lxd/unix.socket\" not accessible: dial unix: connect: connection refused"),
        );
        assert_eq!(down.kind, Kind::Incus);
        assert!(down.hint.unwrap().contains("LXD daemon"));
        let refused = Backend::Incus.failure(&cmd, &out("Error: not authorized"));
        assert_eq!(refused.kind, Kind::Incus);
    }
}
