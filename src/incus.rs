//! The `incus` commands inx runs, as data, and how `incus list` and failures are read.

use crate::error::{Error, Kind, Result};
use crate::name::{ContainerName, ProjectName};
use crate::process::{failure, Cmd, Output};
use serde::Deserialize;
use std::collections::BTreeMap;

pub type Config = BTreeMap<String, String>;
pub type Devices = BTreeMap<String, BTreeMap<String, String>>;

/// Builds incus argv for one project.
#[derive(Debug, Clone, Default)]
pub struct Incus {
    pub project: Option<ProjectName>,
}

/// Where `incus exec` looks for programs: NixOS keeps everything under these, and `incus exec`
/// gives a PATH without them.
pub const GUEST_PATH: &str =
    "/run/wrappers/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin";

impl Incus {
    fn cmd(&self) -> Cmd {
        let cmd = Cmd::new("incus");
        match &self.project {
            Some(p) => cmd.args(["--project", p.as_str()]),
            None => cmd,
        }
    }

    /// The client's current project (`incus project switch`): read from its own config, no
    /// call to the server.
    pub fn current_project() -> Cmd {
        Cmd::new("incus").args(["project", "get-current"])
    }

    /// All instances of the project with config, devices and state, in one call.
    pub fn list(&self) -> Cmd {
        self.cmd().args(["list", "--format", "json"])
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
        Cmd::new("incus").args(["query", "/1.0"])
    }

    /// One call creates the instance with its whole config: no image, no unpacking.
    pub fn create_empty(
        &self,
        name: &ContainerName,
        profiles: &[String],
        config_json: String,
    ) -> Cmd {
        let mut cmd = self.cmd().args(["create", "--empty", name.as_str()]);
        if profiles.is_empty() {
            cmd = cmd.arg("--no-profiles");
        }
        for p in profiles {
            cmd = cmd.args(["--profile", p]);
        }
        cmd.stdin(config_json)
    }

    /// The images of the project, to see whether one is there already.
    pub fn image_list(&self) -> Cmd {
        self.cmd().args(["image", "list", "--format", "json"])
    }

    /// Imports a split image without an alias: instances are made from its fingerprint.
    pub fn image_import(&self, metadata: &str, root: &str) -> Cmd {
        self.cmd().args(["image", "import", metadata, root])
    }

    /// One call creates the instance from an image, with its whole config on stdin.
    pub fn create_from_image(
        &self,
        fingerprint: &str,
        name: &ContainerName,
        profiles: &[String],
        config_json: String,
    ) -> Cmd {
        let mut cmd = self.cmd().args(["create", fingerprint, name.as_str()]);
        if profiles.is_empty() {
            cmd = cmd.arg("--no-profiles");
        }
        for p in profiles {
            cmd = cmd.args(["--profile", p]);
        }
        cmd.stdin(config_json)
    }

    pub fn start(&self, name: &ContainerName) -> Cmd {
        self.cmd().args(["start", name.as_str()])
    }

    pub fn stop(&self, name: &ContainerName) -> Cmd {
        self.cmd().args(["stop", name.as_str()])
    }

    pub fn restart(&self, name: &ContainerName) -> Cmd {
        self.cmd().args(["restart", name.as_str()])
    }

    /// Deletes the instance and its root filesystem, stopping it first if it runs.
    pub fn delete(&self, name: &ContainerName) -> Cmd {
        self.cmd().args(["delete", "--force", name.as_str()])
    }

    pub fn exec(&self, name: &ContainerName, argv: &[String]) -> Cmd {
        self.cmd()
            .args([
                "exec",
                name.as_str(),
                "--env",
                &format!("PATH={GUEST_PATH}"),
                "--",
            ])
            .args(argv.iter().cloned())
    }

    pub fn config_set(&self, name: &ContainerName, values: &Config) -> Cmd {
        self.cmd()
            .args(["config", "set", name.as_str()])
            .args(values.iter().map(|(k, v)| format!("{k}={v}")))
    }

    pub fn config_unset(&self, name: &ContainerName, key: &str) -> Cmd {
        self.cmd().args(["config", "unset", name.as_str(), key])
    }

    pub fn device_add(
        &self,
        name: &ContainerName,
        device: &str,
        props: &BTreeMap<String, String>,
    ) -> Cmd {
        let kind = props.get("type").map(String::as_str).unwrap_or("none");
        self.cmd()
            .args(["config", "device", "add", name.as_str(), device, kind])
            .args(
                props
                    .iter()
                    .filter(|(k, _)| *k != "type")
                    .map(|(k, v)| format!("{k}={v}")),
            )
    }

    pub fn device_remove(&self, name: &ContainerName, device: &str) -> Cmd {
        self.cmd()
            .args(["config", "device", "remove", name.as_str(), device])
    }

    pub fn profile_assign(&self, name: &ContainerName, profiles: &[String]) -> Cmd {
        self.cmd()
            .args(["profile", "assign", name.as_str(), &profiles.join(",")])
    }
}

/// An instance as `incus list --format json` describes it (only the fields inx reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Instance {
    pub name: String,
    pub status: String,
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub config: Config,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub devices: Devices,
    #[serde(default, deserialize_with = "null_is_empty")]
    pub profiles: Vec<String>,
    #[serde(default)]
    pub state: Option<InstanceState>,
    #[serde(default = "default_project")]
    pub project: String,
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

fn default_project() -> String {
    "default".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct InstanceState {
    #[serde(default)]
    pub pid: i64,
}

impl Instance {
    pub fn running(&self) -> bool {
        self.status == "Running"
    }

    /// The host PID of the container's init, while it runs.
    pub fn init_pid(&self) -> Option<u32> {
        self.state
            .as_ref()
            .and_then(|s| u32::try_from(s.pid).ok())
            .filter(|p| *p > 0)
    }
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

/// Whether the server can shift mounts with idmapped mounts (`shift=true` on disk devices).
pub fn parse_idmapped_mounts(out: &Output) -> bool {
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| {
            v.pointer("/environment/kernel_features/idmapped_mounts")
                .cloned()
        })
        .is_some_and(|v| v == "true" || v == true)
}

/// Explains a failed incus command: a daemon that is down or refuses us gets its own exit code.
pub fn incus_failure(cmd: &Cmd, out: &Output) -> Error {
    let err = out.stderr.to_lowercase();
    if err.contains("needed permissions") || err.contains("permission denied") {
        return failure(Kind::Incus, cmd, out).with_hint(
            "the Incus daemon refused access: run inx as root or as a member of the incus-admin group",
        );
    }
    let down = [
        "doesn't appear to be started",
        "failed to connect",
        "connection refused",
    ];
    if down.iter().any(|s| err.contains(s)) {
        return failure(Kind::Incus, cmd, out).with_hint(
            "the Incus daemon is not running: start it (systemctl start incus) and try again",
        );
    }
    failure(Kind::Failed, cmd, out)
}

/// A query's output when it succeeded, else the explained failure.
pub fn checked(cmd: &Cmd, out: Output) -> Result<Output> {
    if out.success() {
        Ok(out)
    } else {
        Err(incus_failure(cmd, &out))
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
    fn project_goes_first() {
        let incus = Incus {
            project: Some(ProjectName::parse("lab").unwrap()),
        };
        assert_eq!(
            incus.list().to_shell(),
            "incus --project lab list --format json"
        );
        let web = ContainerName::parse("web").unwrap();
        let profiles = vec!["default".to_string(), "lab".to_string()];
        assert_eq!(
            incus.create_empty(&web, &profiles, "{}".into()).args,
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
        assert!(Incus::default()
            .create_empty(&web, &[], "{}".into())
            .args
            .contains(&"--no-profiles".into()));
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
        let cmd = Incus::default().list();
        let down = incus_failure(&cmd, &out(1, "", "Error: The incus daemon doesn't appear to be started (socket path: /var/lib/incus/unix.socket)"));
        assert_eq!(down.kind, Kind::Incus);
        insta::assert_snapshot!("daemon_down", down.to_string());
        let denied = incus_failure(&cmd, &out(1, "", "Error: You don't have the needed permissions to talk to the incus daemon (socket path: /var/lib/incus/unix.socket)"));
        assert_eq!(denied.kind, Kind::Incus);
        let other = incus_failure(&cmd, &out(1, "", "Error: Instance not found"));
        assert_eq!(other.kind, Kind::Failed);
    }

    #[test]
    fn idmapped_mounts() {
        assert!(parse_idmapped_mounts(&out(
            0,
            r#"{"environment":{"kernel_features":{"idmapped_mounts":"true"}}}"#,
            ""
        )));
        assert!(!parse_idmapped_mounts(&out(
            0,
            r#"{"environment":{"kernel_features":{"idmapped_mounts":"false"}}}"#,
            ""
        )));
        assert!(!parse_idmapped_mounts(&out(0, "{}", "")));
    }
}
