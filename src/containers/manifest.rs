//! The Rust side of the flake contract: what `lib.mkContainer` puts in `inxManifest`, as read by
//! one `nix eval --json` for all containers (see `nix::eval_manifests`).

use crate::containers::placement::{Placement, SshSettings};
use crate::error::{Error, Kind, Result};
use crate::name::{ContainerName, StorePath};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The manifest schema this inx reads. `lib/default.nix` writes the same number.
pub const SCHEMA_VERSION: u64 = 1;

/// What one evaluation returns: the manifests of the selected containers, and the names that
/// were asked for but are not declared.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEval {
    missing: Vec<String>,
    containers: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: ContainerName,
    pub toplevel: StorePath,
    /// The derivation to realise when `toplevel` is not built yet; `None` when the flake gave
    /// an already-built path.
    pub drv_path: Option<String>,
    pub incus: IncusSettings,
    /// Run from the container's image instead of the shared store (`fromImage = true`).
    pub from_image: bool,
    /// Where it runs, as the flake declares it (the local server when it says nothing).
    pub host: Placement,
}

/// Instance settings the user adds on top of what inx needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncusSettings {
    #[serde(default)]
    pub config: BTreeMap<String, ConfigValue>,
    #[serde(default)]
    pub devices: BTreeMap<String, BTreeMap<String, ConfigValue>>,
    /// `None` means Incus's `default` profile (which holds the root disk).
    #[serde(default)]
    pub profiles: Option<Vec<String>>,
}

/// Incus wants strings; Nix users write `limits.cpu = 2;` or `security.nesting = true;`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ConfigValue {
    String(String),
    Bool(bool),
    Int(i64),
}

impl ConfigValue {
    pub fn to_incus(&self) -> String {
        match self {
            ConfigValue::String(s) => s.clone(),
            ConfigValue::Bool(b) => b.to_string(),
            ConfigValue::Int(i) => i.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawManifest {
    #[allow(dead_code)]
    schema_version: u64,
    toplevel: String,
    drv_path: Option<String>,
    #[serde(default)]
    incus: IncusSettings,
    #[serde(default)]
    from_image: bool,
    #[serde(default)]
    host: RawHost,
}

/// `host` as lib/default.nix writes it (only when the flake sets something).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    remote: Option<String>,
    target: Option<String>,
    #[serde(default)]
    ssh: RawSsh,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    user: Option<String>,
    host: Option<String>,
    port: Option<u16>,
}

impl RawHost {
    fn parse(self) -> Result<Placement> {
        use crate::name::{HostWord, RemoteName};
        Ok(Placement {
            remote: self.remote.as_deref().map(RemoteName::parse).transpose()?,
            target: self.target.as_deref().map(HostWord::member).transpose()?,
            ssh: SshSettings {
                user: self.ssh.user.as_deref().map(HostWord::ssh).transpose()?,
                host: self.ssh.host.as_deref().map(HostWord::ssh).transpose()?,
                port: self.ssh.port.filter(|p| *p > 0),
            },
        })
    }
}

/// Whether a device is one of inx's own (the flake may declare none of that name).
pub fn is_inx_device(name: &str) -> bool {
    name.starts_with("inx-")
}

/// The output of `nix::eval_placements`: each declared name and where it runs.
pub fn parse_placements(json: &str) -> Result<BTreeMap<String, Placement>> {
    let raw: BTreeMap<String, Option<RawHost>> = serde_json::from_str(json).map_err(|e| {
        Error::new(
            Kind::Eval,
            format!("cannot read the output of nix eval: {e}"),
        )
    })?;
    raw.into_iter()
        .map(|(name, host)| {
            let placement = host.unwrap_or_default().parse().map_err(|e| {
                Error::input(format!("inxContainers.{name}: {}", e.message))
                    .with_hint(e.hint.unwrap_or_default())
            })?;
            Ok((name, placement))
        })
        .collect()
}

/// The containers an evaluation selected, in name order.
pub fn parse_eval_output(json: &str) -> Result<Vec<Manifest>> {
    let raw: RawEval = serde_json::from_str(json).map_err(|e| {
        Error::new(
            Kind::Eval,
            format!("cannot read the output of nix eval: {e}"),
        )
        .with_hint("this is a bug in inx's projection or a very old inx flake input")
    })?;
    if !raw.missing.is_empty() {
        return Err(Error::input(format!(
            "not declared in the flake's inxContainers: {}",
            raw.missing.join(", ")
        ))
        .with_hint("`inx list` shows the declared containers"));
    }
    raw.containers
        .into_iter()
        .map(|(name, value)| parse_one(&name, value))
        .collect()
}

fn parse_one(name: &str, value: serde_json::Value) -> Result<Manifest> {
    let name = ContainerName::parse(name).map_err(|e| {
        Error::input(format!("inxContainers.{name}: {}", e.message))
            .with_hint(e.hint.unwrap_or_default())
    })?;
    if value.is_null() {
        return Err(Error::new(
            Kind::Eval,
            format!("inxContainers.{name} was not made with inx.lib.mkContainer (it has no inxManifest)"),
        )
        .with_hint(format!("declare it as `inxContainers.{name} = inx.lib.mkContainer {{ ... }};`")));
    }
    let version = value.get("schemaVersion").and_then(|v| v.as_u64());
    if version != Some(SCHEMA_VERSION) {
        let found = value
            .get("schemaVersion")
            .map(|v| v.to_string())
            .unwrap_or_else(|| "none".into());
        return Err(Error::new(
            Kind::Schema,
            format!(
                "inxContainers.{name} has manifest schema version {found}; this inx understands version {SCHEMA_VERSION}"
            ),
        )
        .with_hint("use the inx binary from the same inx flake input (`nix run .#inx`), or update the flake input with `nix flake update inx`"));
    }
    let raw: RawManifest = serde_json::from_value(value).map_err(|e| {
        Error::new(
            Kind::Eval,
            format!("inxContainers.{name}: malformed manifest: {e}"),
        )
    })?;
    let toplevel = StorePath::parse(&raw.toplevel).map_err(|e| {
        Error::new(
            Kind::Eval,
            format!("inxContainers.{name}.toplevel: {}", e.message),
        )
    })?;
    for device in raw.incus.devices.keys() {
        if is_inx_device(device) {
            return Err(Error::input(format!(
                "inxContainers.{name}: device name {device:?} is reserved (inx- devices are inx's own)"
            )));
        }
        crate::name::check_device_name(device).map_err(|e| {
            Error::input(format!("inxContainers.{name}: {}", e.message))
                .with_hint(e.hint.unwrap_or_default())
        })?;
    }
    for key in raw.incus.config.keys() {
        if key.starts_with("user.inx.") || key.starts_with("volatile.") {
            return Err(Error::input(format!(
                "inxContainers.{name}: config key {key:?} is reserved"
            )));
        }
    }
    let host = raw.host.parse().map_err(|e| {
        Error::input(format!("inxContainers.{name}: {}", e.message))
            .with_hint(e.hint.unwrap_or_default())
    })?;
    Ok(Manifest {
        name,
        toplevel,
        drv_path: raw.drv_path,
        incus: raw.incus,
        from_image: raw.from_image,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "0123456789abcdfghijklmnpqrsvwxyz";

    fn eval_json(container: serde_json::Value) -> String {
        serde_json::json!({ "missing": [], "containers": { "web": container } }).to_string()
    }

    #[test]
    fn reads_a_full_manifest() {
        let json = eval_json(serde_json::json!({
            "schemaVersion": 1,
            "toplevel": format!("/nix/store/{H}-nixos-system-web"),
            "drvPath": format!("/nix/store/{H}-nixos-system-web.drv"),
            "incus": {
                "config": { "limits.cpu": 2, "security.nesting": true, "limits.memory": "1GiB" },
                "devices": { "data": { "type": "disk", "source": "/srv/web", "path": "/srv" } },
                "profiles": ["default", "lab"]
            }
        }));
        let m = &parse_eval_output(&json).unwrap()[0];
        assert_eq!(m.name.as_str(), "web");
        assert_eq!(m.incus.config["limits.cpu"].to_incus(), "2");
        assert_eq!(m.incus.config["security.nesting"].to_incus(), "true");
        assert_eq!(
            m.incus.profiles.as_deref(),
            Some(&["default".to_string(), "lab".to_string()][..])
        );
    }

    #[test]
    fn reads_where_a_container_runs_and_refuses_a_bad_name() {
        let with = |host: serde_json::Value| {
            eval_json(serde_json::json!({
                "schemaVersion": 1,
                "toplevel": format!("/nix/store/{H}-nixos-system-web"),
                "host": host,
            }))
        };
        let m = &parse_eval_output(&with(serde_json::json!({
            "remote": "h2", "target": "member3", "ssh": { "user": "deploy", "port": 2222 }
        })))
        .unwrap()[0];
        assert_eq!(m.host.remote.as_ref().unwrap().as_str(), "h2");
        assert_eq!(m.host.target.as_ref().unwrap().as_str(), "member3");
        assert_eq!(m.host.ssh.user.as_ref().unwrap().as_str(), "deploy");
        assert_eq!(m.host.ssh.port, Some(2222));
        let e = parse_eval_output(&with(serde_json::json!({ "target": "-x" }))).unwrap_err();
        assert_eq!(e.kind, Kind::Input);
        assert!(
            e.message
                .starts_with("inxContainers.web: invalid cluster member name"),
            "{}",
            e.message
        );
        let e = parse_eval_output(&with(serde_json::json!({ "where": "x" }))).unwrap_err();
        assert_eq!(e.kind, Kind::Eval);
    }

    #[test]
    fn unknown_schema_is_a_schema_error() {
        let json = eval_json(serde_json::json!({ "schemaVersion": 2, "toplevel": "x" }));
        let e = parse_eval_output(&json).unwrap_err();
        assert_eq!(e.kind, Kind::Schema);
        insta::assert_snapshot!(e.to_string());
    }

    #[test]
    fn not_from_mk_container() {
        let e = parse_eval_output(&eval_json(serde_json::Value::Null)).unwrap_err();
        assert_eq!(e.kind, Kind::Eval);
        insta::assert_snapshot!(e.to_string());
    }

    #[test]
    fn missing_names_are_input_errors() {
        let json = r#"{"missing":["db","cache"],"containers":{}}"#;
        let e = parse_eval_output(json).unwrap_err();
        assert_eq!(e.kind, Kind::Input);
        insta::assert_snapshot!(e.to_string());
    }

    #[test]
    fn rejects_invalid_names_reserved_keys_and_unknown_fields() {
        let good = |extra: serde_json::Value| {
            let mut v =
                serde_json::json!({ "schemaVersion": 1, "toplevel": format!("/nix/store/{H}-s") });
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        let bad_name = serde_json::json!({ "missing": [], "containers": { "Web": good(serde_json::json!({})) } });
        assert_eq!(
            parse_eval_output(&bad_name.to_string()).unwrap_err().kind,
            Kind::Input
        );
        let reserved_dev = good(serde_json::json!({ "incus": { "devices": { "inx-store": {} } } }));
        assert_eq!(
            parse_eval_output(&eval_json(reserved_dev))
                .unwrap_err()
                .kind,
            Kind::Input
        );
        let slash = good(serde_json::json!({ "incus": { "devices": { "gpu/0": {} } } }));
        let e = parse_eval_output(&eval_json(slash)).unwrap_err();
        assert_eq!(e.kind, Kind::Input);
        assert!(
            e.message
                .starts_with("inxContainers.web: invalid device name \"gpu/0\""),
            "{}",
            e.message
        );
        let reserved_key =
            good(serde_json::json!({ "incus": { "config": { "user.inx.system": "x" } } }));
        assert_eq!(
            parse_eval_output(&eval_json(reserved_key))
                .unwrap_err()
                .kind,
            Kind::Input
        );
        let unknown = good(serde_json::json!({ "surprise": 1 }));
        assert_eq!(
            parse_eval_output(&eval_json(unknown)).unwrap_err().kind,
            Kind::Eval
        );
        let bad_path = good(serde_json::json!({ "toplevel": "/etc/passwd" }));
        assert_eq!(
            parse_eval_output(&eval_json(bad_path)).unwrap_err().kind,
            Kind::Eval
        );
    }
}
