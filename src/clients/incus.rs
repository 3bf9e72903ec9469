//! The one client type: the commands inx gives the Incus client (`incus`) or LXD's (`lxc`), as
//! data, and how their output and failures are read. The two clients agree on everything inx
//! uses for images (`image list|import|alias`, `query`, `remote list`); containers are Incus's
//! only. They differ in their name and their daemon's.

use crate::cmd::{failure, Cmd, Output};
use crate::error::{Error, Kind, Result};
use crate::name::Alias;
use crate::name::{ContainerName, ProjectName, SnapshotName};
use serde::Deserialize;
use std::collections::BTreeMap;

pub type Config = BTreeMap<String, String>;
pub type Devices = BTreeMap<String, BTreeMap<String, String>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Backend {
    /// Incus, through its client `incus`.
    #[default]
    Incus,
    /// LXD (as on ChromeOS), through its client `lxc`.
    Lxd,
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
}

/// Builds the argv of one client, for one project (`None`: the client's current one; inx
/// settles it once per command, see `commands::Scope`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Client {
    pub backend: Backend,
    pub project: Option<ProjectName>,
    /// The remote whose instances it manages (`None`: the local server).
    pub remote: Option<RemoteName>,
}

/// Where `incus exec` looks for programs: NixOS keeps everything under these, and `incus exec`
/// gives a PATH without them.
pub const GUEST_PATH: &str =
    "/run/wrappers/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin";

impl Client {
    /// The client of this backend, for image commands (which name no project).
    pub fn of(backend: Backend) -> Self {
        Client {
            backend,
            project: None,
            remote: None,
        }
    }

    /// The project this client works in, by name (`default` when it names none).
    pub fn project_name(&self) -> String {
        self.project
            .as_ref()
            .map_or_else(|| "default".to_string(), |p| p.as_str().to_string())
    }

    fn cmd(&self) -> Cmd {
        let cmd = Cmd::new(self.backend.program());
        match &self.project {
            Some(p) => cmd.args(["--project", p.as_str()]),
            None => cmd,
        }
    }

    /// The client's current project (`incus project switch`). Incus 6.0 reads it from the
    /// client's config; from 6.15 on the client asks the server (`environment.project` of
    /// `/1.0`), so the daemon must answer, and a restricted client gets the project the server
    /// gives it.
    pub fn current_project() -> Cmd {
        Cmd::new("incus").args(["project", "get-current"])
    }

    /// This client for the instances of another remote (`None`: the local server).
    pub fn on(&self, remote: Option<&RemoteName>) -> Client {
        Client {
            remote: remote.cloned(),
            ..self.clone()
        }
    }

    /// An instance as the client addresses it: `REMOTE:NAME`, or `NAME` on the local server.
    pub fn at(&self, name: &ContainerName) -> String {
        Self::prefixed(self.remote.as_ref(), name.as_str())
    }

    /// All instances of the project with config, devices and state, in one call (a cluster's
    /// from every member, each with its `location`).
    pub fn list(&self) -> Cmd {
        self.cmd()
            .arg("list")
            .args(Self::target(self.remote.as_ref()))
            .args(["--format", "json"])
    }

    /// A cluster's members and their addresses (fails on a server that is not a cluster).
    pub fn cluster_list(&self) -> Cmd {
        self.cmd()
            .args(["cluster", "list"])
            .args(Self::target(self.remote.as_ref()))
            .args(["--format", "json"])
    }

    /// Moves a stopped instance to another member of its cluster (Incus moves the root
    /// filesystem).
    pub fn move_to(&self, name: &ContainerName, member: &str) -> Cmd {
        self.cmd()
            .args(["move", &self.at(name), "--target", member])
    }

    /// Every project's instances: GC roots are the whole host's business.
    pub fn list_all_projects(&self) -> Cmd {
        Cmd::new("incus").args(["list", "--all-projects", "--format", "json"])
    }

    /// Instance lifecycle events of every project, one JSON object per line, until stopped.
    pub fn monitor_lifecycle(&self) -> Cmd {
        Cmd::new("incus").args([
            "monitor",
            "--all-projects",
            "--type=lifecycle",
            "--format=json",
        ])
    }

    /// The server's description, for kernel features.
    pub fn server_info(&self) -> Cmd {
        Cmd::new("incus").args(["query", &Self::prefixed(self.remote.as_ref(), "/1.0")])
    }

    /// One call creates the instance with its whole config: no image, no unpacking.
    pub fn create_empty(
        &self,
        name: &ContainerName,
        target: Option<&str>,
        profiles: &[String],
        config_json: String,
    ) -> Cmd {
        let mut cmd = self.cmd().args(["create", "--empty", &self.at(name)]);
        if let Some(member) = target {
            cmd = cmd.args(["--target", member]);
        }
        with_profiles(cmd, profiles).stdin(config_json)
    }

    /// `create_empty` for a throw-away instance: Incus deletes it when it stops.
    pub fn create_ephemeral(
        &self,
        name: &ContainerName,
        profiles: &[String],
        config_json: String,
    ) -> Cmd {
        let cmd = self
            .cmd()
            .args(["create", "--empty", "--ephemeral", &self.at(name)]);
        with_profiles(cmd, profiles).stdin(config_json)
    }

    /// One call creates the instance from an image, with its whole config on stdin.
    pub fn create_from_image(
        &self,
        fingerprint: &str,
        name: &ContainerName,
        profiles: &[String],
        config_json: String,
    ) -> Cmd {
        let cmd = self.cmd().args(["create", fingerprint, &self.at(name)]);
        with_profiles(cmd, profiles).stdin(config_json)
    }

    pub fn start(&self, name: &ContainerName) -> Cmd {
        self.start_all(&[name])
    }

    /// One call that starts several instances: Incus starts each it can and names each it
    /// could not (`NAME: error: ...`).
    pub fn start_all(&self, names: &[&ContainerName]) -> Cmd {
        self.cmd()
            .arg("start")
            .args(names.iter().map(|n| self.at(n)))
    }

    /// A clean shutdown, which Incus gives up after `timeout` seconds (failing, the instance
    /// still running).
    pub fn stop_within(&self, name: &ContainerName, timeout: u32) -> Cmd {
        self.cmd()
            .args(["stop", &self.at(name), "--timeout", &timeout.to_string()])
    }

    /// Kills the instance at once.
    pub fn kill(&self, name: &ContainerName) -> Cmd {
        self.cmd().args(["stop", &self.at(name), "--force"])
    }

    /// A snapshot of the root filesystem and the config (`user.inx.system` with it). Never
    /// expiring: inx keeps a GC root for each of its snapshots and deletes both itself, so
    /// `snapshots.expiry` (and Incus 6.14's `snapshots.expiry.manual`) must not remove it behind
    /// inx's back (`--no-expiry` is in Incus 6.0 already).
    pub fn snapshot_create(&self, name: &ContainerName, snapshot: &SnapshotName) -> Cmd {
        self.cmd().args([
            "snapshot",
            "create",
            &self.at(name),
            snapshot.as_str(),
            "--no-expiry",
        ])
    }

    /// Brings back a snapshot's root filesystem and config; the instance must be stopped.
    pub fn snapshot_restore(&self, name: &ContainerName, snapshot: &SnapshotName) -> Cmd {
        self.cmd()
            .args(["snapshot", "restore", &self.at(name), snapshot.as_str()])
    }

    /// A restart after a clean shutdown, which Incus gives up after `timeout` seconds.
    pub fn restart_within(&self, name: &ContainerName, timeout: u32) -> Cmd {
        self.cmd()
            .args(["restart", &self.at(name), "--timeout", &timeout.to_string()])
    }

    /// A restart that kills the instance at once.
    pub fn restart_killing(&self, name: &ContainerName) -> Cmd {
        self.cmd().args(["restart", &self.at(name), "--force"])
    }

    /// Deletes the instance and its root filesystem, stopping it first if it runs.
    pub fn delete(&self, name: &ContainerName) -> Cmd {
        self.cmd().args(["delete", "--force", &self.at(name)])
    }

    pub fn exec(&self, name: &ContainerName, argv: &[String]) -> Cmd {
        self.cmd()
            .args([
                "exec",
                &self.at(name),
                "--env",
                &format!("PATH={GUEST_PATH}"),
                "--",
            ])
            .args(argv.iter().cloned())
    }

    pub fn config_set(&self, name: &ContainerName, values: &Config) -> Cmd {
        self.cmd()
            .args(["config", "set", &self.at(name)])
            .args(values.iter().map(|(k, v)| format!("{k}={v}")))
    }

    pub fn config_unset(&self, name: &ContainerName, key: &str) -> Cmd {
        self.cmd().args(["config", "unset", &self.at(name), key])
    }

    pub fn device_add(
        &self,
        name: &ContainerName,
        device: &str,
        props: &BTreeMap<String, String>,
    ) -> Cmd {
        let kind = props.get("type").map(String::as_str).unwrap_or("none");
        self.cmd()
            .args(["config", "device", "add", &self.at(name), device, kind])
            .args(
                props
                    .iter()
                    .filter(|(k, _)| *k != "type")
                    .map(|(k, v)| format!("{k}={v}")),
            )
    }

    pub fn device_remove(&self, name: &ContainerName, device: &str) -> Cmd {
        self.cmd()
            .args(["config", "device", "remove", &self.at(name), device])
    }

    pub fn profile_assign(&self, name: &ContainerName, profiles: &[String]) -> Cmd {
        self.cmd()
            .args(["profile", "assign", &self.at(name), &profiles.join(",")])
    }

    /// `REMOTE:` or, for the local server, nothing.
    fn target(remote: Option<&RemoteName>) -> Option<String> {
        remote.map(|r| format!("{}:", r.as_str()))
    }

    pub fn remote_list(&self) -> Cmd {
        self.cmd().args(["remote", "list", "--format", "json"])
    }

    pub fn image_list(&self, remote: Option<&RemoteName>) -> Cmd {
        self.cmd()
            .args(["image", "list"])
            .args(Self::target(remote))
            .args(["--format", "json"])
    }

    /// One import of the split image, with its alias when no other image holds it. Neither
    /// client may be asked to take an alias over on import (LXD has no `--reuse`), so then the
    /// plan imports without it and moves the alias afterwards (`alias_retarget`).
    /// `metadata` and `root` are the split image's two files.
    pub fn image_import(
        &self,
        (metadata, root): (&std::path::Path, &std::path::Path),
        remote: Option<&RemoteName>,
        alias: Option<&Alias>,
        public: bool,
    ) -> Cmd {
        let mut cmd = self
            .cmd()
            .args(["image", "import"])
            .arg(metadata.display().to_string())
            .arg(root.display().to_string())
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
        &self,
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
        &self,
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
    pub fn make_public(&self, remote: Option<&RemoteName>, fingerprint: &str) -> Cmd {
        self.cmd()
            .args(["query", "-X", "PATCH", "--wait"])
            .arg(Self::prefixed(
                remote,
                &format!("/1.0/images/{fingerprint}"),
            ))
            .args(["--data", r#"{"public":true}"#])
    }
}

/// A create's Incus profiles, in order; none is `--no-profiles` (else Incus adds `default`).
fn with_profiles(cmd: Cmd, profiles: &[String]) -> Cmd {
    if profiles.is_empty() {
        return cmd.arg("--no-profiles");
    }
    profiles
        .iter()
        .fold(cmd, |cmd, p| cmd.args(["--profile", p.as_str()]))
}

/// An instance as `incus list --format json` describes it (only the fields inx reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Instance {
    pub name: String,
    pub status: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "config_map")]
    pub config: Config,
    #[serde(default, deserialize_with = "devices_map")]
    pub devices: Devices,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub profiles: Vec<String>,
    #[serde(default)]
    pub state: Option<InstanceState>,
    #[serde(default = "default_project")]
    pub project: String,
    /// The cluster member it is on (`none` or empty off a cluster).
    #[serde(default)]
    pub location: String,
    /// Listed with the instance (`incus list` asks for everything), each with its own copy of
    /// the config it was taken with.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub snapshots: Vec<Snapshot>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct Snapshot {
    pub name: String,
    #[serde(default, deserialize_with = "config_map")]
    pub config: Config,
    #[serde(default)]
    pub created_at: String,
}

/// An instance that is being created is listed with `null` for its config, devices and
/// profiles.
fn null_is_empty<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A config value as Incus reads one: since 6.18 its API takes booleans and numbers for a
/// config map's strings (and `null` for ""), so inx reads them the same way wherever it reads
/// instance config, should a server or a tool in between ever hand them on unconverted.
#[derive(Deserialize)]
#[serde(untagged)]
enum ConfigScalar {
    String(String),
    Bool(bool),
    Number(serde_json::Number),
    Null,
}

impl From<ConfigScalar> for String {
    fn from(v: ConfigScalar) -> String {
        match v {
            ConfigScalar::String(s) => s,
            ConfigScalar::Bool(b) => b.to_string(),
            ConfigScalar::Number(n) => n.to_string(),
            ConfigScalar::Null => String::new(),
        }
    }
}

fn scalars(map: BTreeMap<String, ConfigScalar>) -> Config {
    map.into_iter().map(|(k, v)| (k, v.into())).collect()
}

fn config_map<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Config, D::Error> {
    let map: BTreeMap<String, ConfigScalar> = null_is_empty(d)?;
    Ok(scalars(map))
}

fn devices_map<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Devices, D::Error> {
    let map: BTreeMap<String, BTreeMap<String, ConfigScalar>> = null_is_empty(d)?;
    Ok(map.into_iter().map(|(k, v)| (k, scalars(v))).collect())
}

fn default_project() -> String {
    "default".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstanceState {
    #[serde(default)]
    pub pid: i64,
    /// The container's interfaces by name, while it runs.
    #[serde(default, deserialize_with = "null_is_empty")]
    pub network: std::collections::BTreeMap<String, NetworkState>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct NetworkState {
    #[serde(default, deserialize_with = "null_is_empty")]
    pub addresses: Vec<NetworkAddress>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct NetworkAddress {
    #[serde(default)]
    pub family: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub scope: String,
}

impl Instance {
    pub fn running(&self) -> bool {
        self.status == "Running"
    }

    /// The global addresses of its interfaces (IPv4 first), as `nixos-container show-ip`
    /// shows one; loopback and link-local ones are left out.
    pub fn addresses(&self) -> Vec<String> {
        let mut all: Vec<(bool, String)> = self
            .state
            .iter()
            .flat_map(|s| s.network.values())
            .flat_map(|n| &n.addresses)
            .filter(|a| a.scope == "global")
            .map(|a| (a.family != "inet", a.address.clone()))
            .collect();
        all.sort();
        all.into_iter().map(|(_, a)| a).collect()
    }

    /// The host PID of the container's init, while it runs.
    pub fn init_pid(&self) -> Option<u32> {
        self.state
            .as_ref()
            .and_then(|s| u32::try_from(s.pid).ok())
            .filter(|p| *p > 0)
    }
}

pub use crate::name::RemoteName;

/// A remote the client knows, from `remote list --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRemote")]
pub struct Remote {
    /// The address the client uses: the one that last worked, else the first it has.
    pub addr: String,
    pub protocol: String,
    pub public: bool,
}

/// Both shapes of a listed remote: Incus 6 and LXD have `Addr`; Incus 7.0.1 has `Addrs` (a
/// list) and `LastWorkingAddr` instead.
#[derive(Deserialize)]
struct RawRemote {
    #[serde(rename = "Addr", default)]
    addr: Option<String>,
    #[serde(rename = "Addrs", default)]
    addrs: Option<Vec<String>>,
    #[serde(rename = "LastWorkingAddr", default)]
    last_working: Option<String>,
    #[serde(rename = "Protocol", default)]
    protocol: String,
    #[serde(rename = "Public", default)]
    public: bool,
}

impl TryFrom<RawRemote> for Remote {
    type Error = String;

    fn try_from(raw: RawRemote) -> std::result::Result<Self, String> {
        let addr = [raw.last_working, raw.addr]
            .into_iter()
            .flatten()
            .chain(raw.addrs.into_iter().flatten())
            .find(|a| !a.is_empty())
            .ok_or("a remote without an address (no Addr, LastWorkingAddr or Addrs)")?;
        Ok(Remote {
            addr,
            protocol: raw.protocol,
            public: raw.public,
        })
    }
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

pub fn parse_current_project(out: &Output) -> Result<ProjectName> {
    ProjectName::parse(out.stdout.trim()).map_err(|e| {
        Error::new(
            Kind::Incus,
            format!(
                "cannot read the client's current project from `incus project get-current`: {}",
                e.message
            ),
        )
        .with_hint("pass --project NAME")
    })
}

pub fn parse_list(out: &Output) -> Result<BTreeMap<String, Instance>> {
    let list: Vec<Instance> = serde_json::from_str(&out.stdout).map_err(|e| {
        Error::new(
            Kind::Incus,
            format!("cannot read the output of incus list: {e}"),
        )
    })?;
    Ok(list.into_iter().map(|i| (i.name.clone(), i)).collect())
}

/// Whether the server can shift mounts with idmapped mounts (`shift=true` on disk devices),
/// from `query /1.0`. Incus 6 (and LXD) report the kernel's support in
/// `kernel_features.idmapped_mounts`. Incus 7.0 dropped that detection (`kernel_features` is
/// `{}`): it takes the kernel's support for granted and checks each filesystem when the
/// container starts, so there the answer is yes, and a filesystem that cannot idmap (or
/// `INCUS_IDMAPPED_MOUNTS_DISABLE`) fails the start, which `failure_of` explains.
pub fn parse_idmapped_mounts(out: &Output) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(&out.stdout) else {
        return false;
    };
    match v.pointer("/environment/kernel_features/idmapped_mounts") {
        Some(reported) => reported == "true" || reported == true,
        None => {
            v.pointer("/environment/server") == Some(&serde_json::json!("incus"))
                && v.pointer("/environment/server_version")
                    .and_then(|s| s.as_str())
                    .and_then(|s| s.split('.').next())
                    .and_then(|major| major.parse::<u32>().ok())
                    .is_some_and(|major| major >= 7)
        }
    }
}

/// This server's name in its cluster, from `query /1.0`; `None` when it is not clustered (or
/// the answer cannot be read).
pub fn parse_member_name(out: &Output) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    let env = v.get("environment")?;
    if env.get("server_clustered")? != true {
        return None;
    }
    env.get("server_name")?.as_str().map(String::from)
}

/// Explains a failed `incus` or `lxc` command: a daemon that is down or refuses us, or a
/// server that does not trust this client, gets its own exit code and a hint naming the
/// client that ran.
pub fn failure_of(cmd: &Cmd, out: &Output) -> Error {
    let backend = if cmd.program == Backend::Lxd.program() {
        Backend::Lxd
    } else {
        Backend::Incus
    };
    let (daemon, program) = (backend.daemon(), backend.program());
    let err = out.stderr.to_lowercase();
    let untrusted = ["not authorized", "forbidden", "not trusted"];
    if untrusted.iter().any(|s| err.contains(s)) {
        return failure(Kind::Incus, cmd, out).with_hint(format!(
            "the {daemon} server refused: add this client as trusted there (`{program} config trust add` on the server, then `{program} remote add NAME https://HOST:8443 --token TOKEN` here)"
        ));
    }
    if err.contains("needed permissions") || err.contains("permission denied") {
        let group = match backend {
            Backend::Incus => "incus-admin",
            Backend::Lxd => "lxd",
        };
        return failure(Kind::Incus, cmd, out).with_hint(format!(
            "the {daemon} daemon refused access: run inx as root or as a member of the {group} group"
        ));
    }
    // Incus 7 checks at start that the filesystem of each `shift=true` disk can be idmapped.
    if err.contains("idmapping abilities") {
        return failure(Kind::Incus, cmd, out).with_hint(
            "the Incus server cannot idmap a shared mount (/nix/store, the profile folder or the daemon socket): it needs a filesystem with idmapped mounts and no INCUS_IDMAPPED_MOUNTS_DISABLE in incusd's environment; or make the container privileged (security.privileged = true), which needs no idmap",
        );
    }
    let down = [
        "doesn't appear to be started",
        "failed to connect",
        "connection refused",
    ];
    if down.iter().any(|s| err.contains(s)) {
        let unit = match backend {
            Backend::Incus => "incus",
            Backend::Lxd => "lxd",
        };
        return failure(Kind::Incus, cmd, out).with_hint(format!(
            "the {daemon} daemon is not running: start it (systemctl start {unit}) and try again"
        ));
    }
    failure(Kind::Failed, cmd, out)
}

/// A command's output when it succeeded, else the explained failure.
pub fn checked(cmd: &Cmd, out: Output) -> Result<Output> {
    if out.success() {
        Ok(out)
    } else {
        Err(failure_of(cmd, &out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(code: i32, stdout: &str, stderr: &str) -> Output {
        Output {
            code: Some(code),
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn an_instance_being_created_lists_with_nulls() {
        let list = r#"[{"name":"web","status":"Stopped","type":"container","config":null,
            "devices":null,"profiles":null,"state":null,"project":"lab"}]"#;
        let parsed = parse_list(&out(0, list, "")).unwrap();
        let web = &parsed["web"];
        assert!(web.config.is_empty() && web.devices.is_empty() && web.profiles.is_empty());
        assert_eq!(web.project, "lab");
        let defaults = parse_list(&out(0, r#"[{"name":"db","status":"Running"}]"#, "")).unwrap();
        assert_eq!(defaults["db"].project, "default");
    }

    #[test]
    fn a_remote_prefixes_instances_and_a_target_places_the_new_one() {
        let h2 = Client::default().on(Some(&RemoteName::parse("h2").unwrap()));
        let web = ContainerName::parse("web").unwrap();
        assert_eq!(h2.list().to_shell(), "incus list h2: --format json");
        assert_eq!(
            h2.create_empty(&web, Some("member3"), &[], "{}".into())
                .args
                .join(" "),
            "create --empty h2:web --target member3 --no-profiles"
        );
        assert_eq!(h2.exec(&web, &["true".into()]).args[1], "h2:web");
        assert_eq!(
            h2.move_to(&web, "member2").to_shell(),
            "incus move h2:web --target member2"
        );
        assert_eq!(h2.server_info().to_shell(), "incus query h2:/1.0");
        assert_eq!(
            Client::default().list().to_shell(),
            "incus list --format json"
        );
    }

    #[test]
    fn a_cluster_member_knows_its_name_and_a_lone_server_has_none() {
        let member = out(
            0,
            r#"{"environment":{"server_clustered":true,"server_name":"member3"}}"#,
            "",
        );
        assert_eq!(parse_member_name(&member).as_deref(), Some("member3"));
        let alone = out(
            0,
            r#"{"environment":{"server_clustered":false,"server_name":"box"}}"#,
            "",
        );
        assert_eq!(parse_member_name(&alone), None);
        assert_eq!(parse_member_name(&out(0, "", "")), None);
    }

    #[test]
    fn project_goes_first() {
        let incus = Client {
            backend: Backend::Incus,
            project: Some(ProjectName::parse("lab").unwrap()),
            remote: None,
        };
        assert_eq!(
            incus.list().to_shell(),
            "incus --project lab list --format json"
        );
        let web = ContainerName::parse("web").unwrap();
        let profiles = vec!["default".to_string(), "lab".to_string()];
        assert_eq!(
            incus.create_empty(&web, None, &profiles, "{}".into()).args,
            [
                "--project",
                "lab",
                "create",
                "--empty",
                "web",
                "--profile",
                "default",
                "--profile",
                "lab"
            ]
        );
        assert!(Client::default()
            .create_empty(&web, None, &[], "{}".into())
            .args
            .contains(&"--no-profiles".into()));
    }

    #[test]
    fn config_values_given_as_booleans_and_numbers_read_as_incus_stores_them() {
        let json = r#"[{"name":"web","status":"Running","config":{"limits.cpu":2,
            "security.nesting":true,"limits.cpu.allowance":0.5,"user.note":null,"user.inx.schema":"1"},
            "devices":{"data":{"type":"disk","readonly":true,"size":10}},
            "snapshots":[{"name":"s1","config":{"security.privileged":false}}]}]"#;
        let list = parse_list(&out(0, json, "")).unwrap();
        let web = &list["web"];
        assert_eq!(web.config["limits.cpu"], "2");
        assert_eq!(web.config["security.nesting"], "true");
        assert_eq!(web.config["limits.cpu.allowance"], "0.5");
        assert_eq!(web.config["user.note"], "");
        assert_eq!(web.config["user.inx.schema"], "1");
        assert_eq!(web.devices["data"]["readonly"], "true");
        assert_eq!(web.devices["data"]["size"], "10");
        assert_eq!(web.snapshots[0].config["security.privileged"], "false");
        let nested = r#"[{"name":"web","status":"Running","config":{"x":{"y":1}}}]"#;
        assert!(parse_list(&out(0, nested, "")).is_err());
    }

    #[test]
    fn parses_list() {
        let json = r#"[{"name":"web","status":"Running","type":"container","config":{"user.inx.schema":"1"},
            "devices":{},"profiles":["default"],"state":{"pid":4242,"status":"Running"},"extra":1},
            {"name":"db","status":"Stopped","type":"container","config":{},"devices":{},"profiles":[],"state":{"pid":0}}]"#;
        let list = parse_list(&out(0, json, "")).unwrap();
        assert_eq!(list["web"].init_pid(), Some(4242));
        assert!(list["web"].running());
        assert_eq!(list["db"].init_pid(), None);
    }

    #[test]
    fn an_instance_in_error_does_not_spoil_the_listing() {
        let json = r#"[{"name":"broken","status":"Error","type":"container","config":null,
            "devices":null,"profiles":null,"state":null},
            {"name":"web","status":"Running","type":"container","config":{"user.inx.schema":"1"},
            "devices":{},"profiles":["default"],"state":{"pid":4242}}]"#;
        let list = parse_list(&out(0, json, "")).unwrap();
        assert!(list["broken"].config.is_empty() && list["broken"].devices.is_empty());
        assert!(!list["broken"].running());
        assert_eq!(list["web"].init_pid(), Some(4242));
    }

    #[test]
    fn daemon_down_and_permission_are_incus_errors() {
        let cmd = Client::default().list();
        let down = failure_of(&cmd, &out(1, "", "Error: The incus daemon doesn't appear to be started (socket path: /var/lib/incus/unix.socket)"));
        assert_eq!(down.kind, Kind::Incus);
        insta::assert_snapshot!("daemon_down", down.to_string());
        let denied = failure_of(&cmd, &out(1, "", "Error: You don't have the needed permissions to talk to the incus daemon (socket path: /var/lib/incus/unix.socket)"));
        assert_eq!(denied.kind, Kind::Incus);
        let idmap = failure_of(&cmd, &out(1, "", "Error: Failed to start device \"inx-store\": Failed to setup device mount \"inx-store\": idmapping abilities are required but aren't supported on system"));
        assert_eq!(idmap.kind, Kind::Incus);
        assert!(idmap
            .hint
            .unwrap()
            .contains("INCUS_IDMAPPED_MOUNTS_DISABLE"));
        let other = failure_of(&cmd, &out(1, "", "Error: Instance not found"));
        assert_eq!(other.kind, Kind::Failed);
    }

    #[test]
    fn idmapped_mounts_as_incus_6_reports_them() {
        assert!(parse_idmapped_mounts(&out(
            0,
            r#"{"environment":{"server":"incus","server_version":"6.0.4","kernel_features":{"idmapped_mounts":"true"}}}"#,
            ""
        )));
        assert!(!parse_idmapped_mounts(&out(
            0,
            r#"{"environment":{"server":"incus","server_version":"6.0.4","kernel_features":{"idmapped_mounts":"false"}}}"#,
            ""
        )));
        assert!(!parse_idmapped_mounts(&out(0, "{}", "")));
        assert!(!parse_idmapped_mounts(&out(0, "", "")));
    }

    #[test]
    fn incus_7_has_idmapped_mounts_though_it_reports_no_kernel_features() {
        // What Incus 7.0.2 answers to `query /1.0` (the parts inx reads).
        let seven = r#"{"api_extensions":["instance_selinux"],"environment":{"kernel_features":{},
            "server":"incus","server_version":"7.0.2"}}"#;
        assert!(parse_idmapped_mounts(&out(0, seven, "")));
        // An Incus 6 or LXD that reports no kernel features at all is not taken to have them.
        let six =
            r#"{"environment":{"kernel_features":{},"server":"incus","server_version":"6.0.4"}}"#;
        assert!(!parse_idmapped_mounts(&out(0, six, "")));
        let lxd = r#"{"environment":{"kernel_features":{},"server":"lxd","server_version":"7.0"}}"#;
        assert!(!parse_idmapped_mounts(&out(0, lxd, "")));
    }

    use crate::images::{ImageFiles, ImageKind};

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
            Client::of(Backend::Incus).image_import(files().paths(), Some(&remote), Some(&alias), true).to_shell(),
            "incus image import /nix/store/m/meta.tar.xz /nix/store/r/root.squashfs pub: --alias nixos/web --public"
        );
        assert_eq!(
            Client::of(Backend::Lxd).image_import(files().paths(), None, Some(&alias), false).to_shell(),
            "lxc image import /nix/store/m/meta.tar.xz /nix/store/r/root.squashfs --alias nixos/web"
        );
        assert_eq!(
            Client::of(Backend::Lxd)
                .image_list(Some(&remote))
                .to_shell(),
            "lxc image list pub: --format json"
        );
        assert_eq!(
            Client::of(Backend::Incus)
                .make_public(None, "ab12")
                .to_shell(),
            r#"incus query -X PATCH --wait /1.0/images/ab12 --data '{"public":true}'"#
        );
        assert_eq!(
            Client::of(Backend::Incus)
                .alias_create(Some(&remote), &alias, "ab12")
                .to_shell(),
            "incus image alias create pub:nixos/web ab12"
        );
        assert_eq!(
            Client::of(Backend::Lxd)
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
        assert_eq!(remotes["images"].addr, "https://images.example");
        let images = parse_images(&out(
            r#"[{"fingerprint":"ab12","public":true,"aliases":[{"name":"nixos/web","description":""}],"size":1}]"#,
        ))
        .unwrap();
        assert_eq!(images[0].aliases[0].name, "nixos/web");
        assert!(RemoteName::parse("bad name").is_err());
        assert_eq!(RemoteName::parse("pub:").unwrap().as_str(), "pub");
    }

    #[test]
    fn remotes_listed_by_incus_7_have_a_list_of_addresses() {
        // `incus remote list --format json` of Incus 7.0.2 (TLS abridged).
        let listed = r#"{"h2":{"Addrs":["https://127.0.0.2:8443","https://[::1]:8443"],
            "LastWorkingAddr":"","AuthType":"tls","Protocol":"incus","Public":false,
            "Global":false,"Static":false,"TLS":null},
            "h4":{"Addrs":["https://10.0.0.4:8443","https://127.0.0.4:8443"],
            "LastWorkingAddr":"https://127.0.0.4:8443","Protocol":"incus","Public":false},
            "local":{"Addrs":["unix://"],"LastWorkingAddr":"","Protocol":"incus","Public":false,"Static":true}}"#;
        let remotes = parse_remotes(&out(0, listed, "")).unwrap();
        assert_eq!(remotes["h2"].addr, "https://127.0.0.2:8443");
        assert_eq!(remotes["h4"].addr, "https://127.0.0.4:8443");
        assert_eq!(remotes["local"].addr, "unix://");
        assert!(remotes["h2"].is_server() && !remotes["h2"].public);
        let e = parse_remotes(&out(0, r#"{"x":{"Addrs":[],"Protocol":"incus"}}"#, "")).unwrap_err();
        assert!(e.message.contains("without an address"), "{}", e.message);
    }

    #[test]
    fn refusals_and_a_down_lxd_are_explained() {
        let cmd = Client::of(Backend::Lxd).image_list(None);
        let out = |e: &str| Output {
            code: Some(1),
            stdout: String::new(),
            stderr: e.into(),
        };
        let down = failure_of(
            &cmd,
            &out("Error: LXD unix socket \"/var/lib/lxd/unix.socket\" not accessible: dial unix: connect: connection refused"),
        );
        assert_eq!(down.kind, Kind::Incus);
        assert!(down.hint.unwrap().contains("LXD daemon"));
        let refused = failure_of(&cmd, &out("Error: not authorized"));
        assert_eq!(refused.kind, Kind::Incus);
    }
}
