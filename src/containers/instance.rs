//! The instance inx wants for a container: Incus config, devices and profiles, generated from
//! its manifest. Pure; snapshot-tested.

use crate::clients::incus::{Config, Devices, Instance};
use crate::containers::manifest::Manifest;
use crate::name::StorePath;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// Marks an instance as inx's; its value is the manifest schema it was made from.
pub const KEY_MANAGED: &str = "user.inx.schema";
/// The system last deployed (booted or switched to) in the instance.
pub const KEY_SYSTEM: &str = "user.inx.system";
/// The flake the instance was deployed from.
pub const KEY_FLAKE: &str = "user.inx.flake";
/// On an instance created from the container's image (not the shared store): its fingerprint.
pub const KEY_IMAGE: &str = "user.inx.image";

/// The container boots whatever the host profile (bound at /nix/var/nix/profiles) points at, so
/// a rollback is a profile switch.
pub const INIT_LINE: &str = "lxc.init.cmd = /nix/var/nix/profiles/system/init";

pub const DAEMON_SOCKET_DIR: &str = "/nix/var/nix/daemon-socket";

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Spec {
    pub config: Config,
    pub devices: Devices,
    #[serde(skip)]
    pub profiles: Vec<String>,
}

pub fn is_managed(instance: &Instance) -> bool {
    instance.config.contains_key(KEY_MANAGED)
}

/// Each snapshot's name and the system inx had deployed when it was taken (Incus copies the
/// instance's config, `user.inx.system` with it, into the snapshot). Snapshots without one
/// (taken before inx deployed anything) have nothing to keep.
pub fn snapshot_systems(instance: &Instance) -> std::collections::BTreeMap<String, StorePath> {
    instance
        .snapshots
        .iter()
        .filter_map(|s| {
            let system = StorePath::parse(s.config.get(KEY_SYSTEM)?).ok()?;
            Some((s.name.clone(), system))
        })
        .collect()
}

/// What a running instance runs now: read through its init's root, or, where that cannot be
/// read, the system inx last recorded. `None` when it is not running.
pub fn running_system(instance: &Instance) -> Option<StorePath> {
    if !instance.running() {
        return None;
    }
    instance
        .init_pid()
        .and_then(read_current_system)
        .or_else(|| {
            instance
                .config
                .get(KEY_SYSTEM)
                .and_then(|s| StorePath::parse(s).ok())
        })
}

/// What inx last deployed in a running instance (for an instance on another host, whose init
/// cannot be read from here).
pub fn recorded_system(instance: &Instance) -> Option<StorePath> {
    if !instance.running() {
        return None;
    }
    instance
        .config
        .get(KEY_SYSTEM)
        .and_then(|s| StorePath::parse(s).ok())
}

/// How long a clean shutdown may take before the container is killed: systemd's
/// DefaultTimeoutStopSec, which nixos-container's `container@` units keep.
pub const STOP_TIMEOUT: u32 = 90;

/// `shift` is whether Incus can idmap the shared mounts (so the store is owned by root inside
/// an unprivileged container rather than by nobody).
pub fn desired(manifest: &Manifest, flake: &str, profile_dir: &Path, shift: bool) -> Spec {
    let mut config: Config = manifest
        .incus
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.to_incus()))
        .collect();
    let raw_lxc = match config.get("raw.lxc") {
        Some(user) => format!("{INIT_LINE}\n{user}"),
        None => INIT_LINE.to_string(),
    };
    config.insert("raw.lxc".into(), raw_lxc);
    config.insert(
        KEY_MANAGED.into(),
        crate::containers::manifest::SCHEMA_VERSION.to_string(),
    );
    config.insert(KEY_SYSTEM.into(), manifest.toplevel.to_string());
    config.insert(KEY_FLAKE.into(), flake.to_string());

    let privileged = config
        .get("security.privileged")
        .is_some_and(|v| v == "true");
    let bind = |source: &str, path: &str, readonly: bool| {
        let mut d = BTreeMap::from([
            ("type".to_string(), "disk".to_string()),
            ("source".to_string(), source.to_string()),
            ("path".to_string(), path.to_string()),
        ]);
        if readonly {
            d.insert("readonly".into(), "true".into());
        }
        if shift && !privileged {
            d.insert("shift".into(), "true".into());
        }
        d
    };
    let mut devices: Devices = user_devices(manifest);
    devices.insert("inx-store".into(), bind("/nix/store", "/nix/store", true));
    devices.insert(
        "inx-profiles".into(),
        bind(
            &profile_dir.display().to_string(),
            "/nix/var/nix/profiles",
            false,
        ),
    );
    devices.insert(
        "inx-daemon".into(),
        bind(DAEMON_SOCKET_DIR, DAEMON_SOCKET_DIR, false),
    );

    let profiles = manifest
        .incus
        .profiles
        .clone()
        .unwrap_or_else(|| vec!["default".to_string()]);
    Spec {
        config,
        devices,
        profiles,
    }
}

/// `spec` with inx's shared mounts not shifted: as `desired` makes it for a server that
/// cannot idmap mounts.
pub fn without_shift(spec: &Spec) -> Spec {
    let mut spec = spec.clone();
    for (name, device) in &mut spec.devices {
        if crate::containers::manifest::is_inx_device(name) {
            device.remove("shift");
        }
    }
    spec
}

pub fn is_from_image(instance: &Instance) -> bool {
    instance.config.contains_key(KEY_IMAGE)
}

/// The instance of a container that runs from its image: the user's settings and inx's keys,
/// no shared mounts and no init line (the image has /sbin/init). `image` and `system` are what
/// the instance was (or will be) created from: an image-based instance keeps them until it
/// is made again.
pub fn desired_from_image(manifest: &Manifest, flake: &str, image: &str, system: &str) -> Spec {
    let mut config: Config = manifest
        .incus
        .config
        .iter()
        .map(|(k, v)| (k.clone(), v.to_incus()))
        .collect();
    config.insert(
        KEY_MANAGED.into(),
        crate::containers::manifest::SCHEMA_VERSION.to_string(),
    );
    config.insert(KEY_SYSTEM.into(), system.to_string());
    config.insert(KEY_FLAKE.into(), flake.to_string());
    config.insert(KEY_IMAGE.into(), image.to_string());
    let devices: Devices = user_devices(manifest);
    Spec {
        config,
        devices,
        profiles: manifest
            .incus
            .profiles
            .clone()
            .unwrap_or_else(|| vec!["default".to_string()]),
    }
}

/// The system a running container booted or last switched to, read from the host through its
/// init's root (`/run/current-system`); `None` when it cannot be read.
fn read_current_system(init_pid: u32) -> Option<StorePath> {
    read_system_link(init_pid, "/run/current-system")
}

/// The system a running container booted (`/run/booted-system`, which NixOS sets at boot).
pub fn booted_system(instance: &Instance) -> Option<StorePath> {
    instance
        .init_pid()
        .filter(|_| instance.running())
        .and_then(|pid| read_system_link(pid, "/run/booted-system"))
}

/// Whether a running container's init has activated a system yet (`/run/current-system`,
/// which NixOS links early in stage 2); `None` when that cannot be read here.
pub fn activated(instance: &Instance) -> Option<bool> {
    let pid = instance.init_pid().filter(|_| instance.running())?;
    // Only root may look into another user's process root: elsewhere, cannot tell.
    std::fs::read_dir(format!("/proc/{pid}/root")).ok()?;
    Some(read_current_system(pid).is_some())
}

/// How long ago the container's init started, from /proc (its start in clock ticks since
/// boot; Linux's USER_HZ is 100 on every architecture inx runs on).
pub fn init_age(instance: &Instance) -> Option<std::time::Duration> {
    let pid = instance.init_pid()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces), from the 3rd on.
    let after = stat.rsplit_once(')')?.1;
    let start_ticks: f64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(std::time::Duration::from_secs_f64(
        (uptime - start_ticks / 100.0).max(0.0),
    ))
}

/// Read confined to the container's root: the container writes these links, and a link out
/// of its root must not make the host read its own files.
fn read_system_link(init_pid: u32, link: &str) -> Option<StorePath> {
    let root = std::path::PathBuf::from(format!("/proc/{init_pid}/root"));
    match crate::roots::confine::resolve(&root, link) {
        crate::roots::confine::Resolved::Store(path) => Some(path),
        _ => None,
    }
}

/// The devices the flake declares, with values as Incus writes them.
fn user_devices(manifest: &Manifest) -> Devices {
    manifest
        .incus
        .devices
        .iter()
        .map(|(name, props)| {
            let props = props
                .iter()
                .map(|(k, v)| (k.clone(), v.to_incus()))
                .collect();
            (name.clone(), props)
        })
        .collect()
}

/// The config and devices as `incus create` reads them on stdin (JSON is YAML).
pub fn create_input(spec: &Spec) -> String {
    serde_json::to_string_pretty(spec).expect("a spec is always serialisable") + "\n"
}

/// What has to change to turn an instance's own config into the spec.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Diff {
    pub set: Config,
    pub unset: Vec<String>,
    pub remove_devices: Vec<String>,
    pub add_devices: Devices,
    pub profiles: Option<Vec<String>>,
}

/// Keys Incus itself writes or that only describe an image: never inx's to set or unset.
fn incus_owned(key: &str) -> bool {
    key.starts_with("volatile.") || key.starts_with("image.")
}

pub fn diff(spec: &Spec, instance: &Instance) -> Diff {
    let set = spec
        .config
        .iter()
        .filter(|(k, v)| instance.config.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let unset = instance
        .config
        .keys()
        .filter(|k| !incus_owned(k) && !spec.config.contains_key(*k))
        .cloned()
        .collect();
    // A changed device is removed and added again: Incus hot-plugs disks into containers.
    let changed = |name: &String| spec.devices.get(name) != instance.devices.get(name);
    let remove_devices = instance
        .devices
        .keys()
        .filter(|n| changed(n))
        .cloned()
        .collect();
    let add_devices = spec
        .devices
        .iter()
        .filter(|(n, _)| changed(n))
        .map(|(n, d)| (n.clone(), d.clone()))
        .collect();
    let profiles = (spec.profiles != instance.profiles).then(|| spec.profiles.clone());
    Diff {
        set,
        unset,
        remove_devices,
        add_devices,
        profiles,
    }
}

impl Diff {
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        *self == Diff::default()
    }

    /// Whether a running container must restart for the change to take effect. Follows the
    /// "live update" column of Incus's instance options: keys Incus applies to a running
    /// container, and keys only the daemon reads (snapshots, autostart, cloud-init for a
    /// later first boot), change in place; raw.*, linux.sysctl.*, most security.* and kernel
    /// limits act only at start. Container devices are hot-plugged. Profiles can carry any
    /// key, so changing them restarts.
    pub fn needs_restart(&self) -> bool {
        const LIVE_PREFIXES: [&str; 10] = [
            "user.",
            "environment.",
            "boot.",
            "snapshots.",
            "migration.",
            "cloud-init.",
            "cluster.",
            "smbios11.",
            "security.protection.",
            "security.syscalls.intercept.mount.",
        ];
        const LIVE_KEYS: [&str; 3] = ["security.nesting", "linux.kernel_modules", "raw.apparmor"];
        let live = |k: &str| {
            LIVE_PREFIXES.iter().any(|p| k.starts_with(p))
                || LIVE_KEYS.contains(&k)
                || (k.starts_with("limits.") && !k.starts_with("limits.kernel."))
        };
        self.profiles.is_some() || self.set.keys().chain(&self.unset).any(|k| !live(k))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_age_and_activation_of_an_init_are_read_from_proc() {
        let me = Instance {
            name: "me".into(),
            status: "Running".into(),
            kind: "container".into(),
            config: Default::default(),
            devices: Default::default(),
            profiles: Vec::new(),
            state: Some(crate::clients::incus::InstanceState {
                pid: i64::from(std::process::id()),
                network: Default::default(),
            }),
            project: "default".into(),
            location: String::new(),
            snapshots: Vec::new(),
        };
        let age = init_age(&me).expect("this process's age");
        assert!(age < std::time::Duration::from_secs(3600), "{age:?}");
        // This host's own /run/current-system, read as a container's would be.
        let here =
            std::fs::read_link("/run/current-system").is_ok_and(|p| p.starts_with("/nix/store/"));
        assert_eq!(activated(&me), Some(here));
        let stopped = Instance {
            status: "Stopped".into(),
            ..me
        };
        assert_eq!(activated(&stopped), None);
    }
    use super::*;
    use crate::containers::manifest::{ConfigValue, IncusSettings};
    use crate::name::{ContainerName, StorePath};

    fn manifest(incus: IncusSettings) -> Manifest {
        Manifest {
            name: ContainerName::parse("web").unwrap(),
            toplevel: StorePath::parse(
                "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web",
            )
            .unwrap(),
            drv_path: None,
            incus,
            from_image: false,
            host: Default::default(),
        }
    }

    fn instance_from(spec: &Spec) -> Instance {
        let mut config = spec.config.clone();
        config.insert("volatile.idmap.base".into(), "0".into());
        Instance {
            name: "web".into(),
            status: "Running".into(),
            kind: "container".into(),
            config,
            devices: spec.devices.clone(),
            profiles: spec.profiles.clone(),
            state: None,
            project: "default".into(),
            location: String::new(),
            snapshots: Vec::new(),
        }
    }

    #[test]
    fn generated_instance_config() {
        let incus = IncusSettings {
            config: BTreeMap::from([
                ("limits.cpu".into(), ConfigValue::Int(2)),
                (
                    "raw.lxc".into(),
                    ConfigValue::String("lxc.apparmor.profile = unconfined".into()),
                ),
            ]),
            devices: BTreeMap::from([(
                "data".into(),
                BTreeMap::from([
                    ("type".into(), ConfigValue::String("disk".into())),
                    ("source".into(), ConfigValue::String("/srv/web".into())),
                    ("path".into(), ConfigValue::String("/srv".into())),
                ]),
            )]),
            profiles: None,
        };
        let spec = desired(
            &manifest(incus),
            "/home/me/lab",
            Path::new("/nix/var/nix/profiles/inx/web"),
            true,
        );
        assert_eq!(spec.profiles, ["default"]);
        insta::assert_snapshot!(create_input(&spec));
    }

    #[test]
    fn no_shift_without_idmap_or_when_privileged() {
        let plain = desired(
            &manifest(IncusSettings::default()),
            ".",
            Path::new("/p"),
            false,
        );
        assert!(plain.devices.values().all(|d| !d.contains_key("shift")));
        let privileged = IncusSettings {
            config: BTreeMap::from([("security.privileged".into(), ConfigValue::Bool(true))]),
            ..Default::default()
        };
        let spec = desired(&manifest(privileged), ".", Path::new("/p"), true);
        assert!(spec.devices.values().all(|d| !d.contains_key("shift")));
        let shifted = desired(
            &manifest(IncusSettings::default()),
            ".",
            Path::new("/p"),
            true,
        );
        assert!(shifted.devices["inx-store"].contains_key("shift"));
        assert_eq!(without_shift(&shifted), plain);
    }

    #[test]
    fn diff_of_an_unchanged_instance_is_empty() {
        let spec = desired(
            &manifest(IncusSettings::default()),
            ".",
            Path::new("/p"),
            true,
        );
        assert!(diff(&spec, &instance_from(&spec)).is_empty());
    }

    #[test]
    fn diff_finds_config_device_and_profile_changes() {
        let old = desired(
            &manifest(IncusSettings::default()),
            ".",
            Path::new("/p"),
            true,
        );
        let mut inst = instance_from(&old);
        inst.config.insert("user.hand-made".into(), "x".into());
        inst.devices.insert(
            "gone".into(),
            BTreeMap::from([("type".into(), "none".into())]),
        );
        let new_settings = IncusSettings {
            config: BTreeMap::from([("limits.memory".into(), ConfigValue::String("1GiB".into()))]),
            devices: BTreeMap::new(),
            profiles: Some(vec!["default".into(), "lab".into()]),
        };
        let new = desired(&manifest(new_settings), ".", Path::new("/p"), true);
        let d = diff(&new, &inst);
        assert_eq!(d.set.keys().collect::<Vec<_>>(), ["limits.memory"]);
        assert_eq!(d.unset, ["user.hand-made"]);
        assert_eq!(d.remove_devices, ["gone"]);
        assert!(d.add_devices.is_empty());
        assert_eq!(
            d.profiles.as_deref(),
            Some(&["default".to_string(), "lab".to_string()][..])
        );
        assert!(d.needs_restart(), "a profile change restarts");
    }

    #[test]
    fn restart_rules() {
        let with_keys = |keys: &[&str]| Diff {
            set: keys
                .iter()
                .map(|k| (k.to_string(), "1".to_string()))
                .collect(),
            ..Default::default()
        };
        assert!(!with_keys(&[
            "user.x",
            "limits.memory",
            "limits.cpu",
            "boot.autostart",
            "security.nesting",
            KEY_SYSTEM
        ])
        .needs_restart());
        for k in [
            "raw.lxc",
            "security.privileged",
            "linux.sysctl.net.core.somaxconn",
            "limits.kernel.nofile",
        ] {
            assert!(with_keys(&[k]).needs_restart(), "{k} needs a restart");
        }
        let devices_only = Diff {
            remove_devices: vec!["x".into()],
            ..Default::default()
        };
        assert!(!devices_only.needs_restart());
    }
}
