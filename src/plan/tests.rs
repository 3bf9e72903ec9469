use super::*;
use crate::clients::incus::{Client, Instance};
use crate::containers::instance::{self, Spec};
use crate::containers::manifest::Manifest;
use crate::containers::manifest::{ConfigValue, IncusSettings};
use crate::containers::profile::ProfileState;
use crate::name::StorePath;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const OLD: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web-1";
/// Where the plans root their builds (a live inx's `.builds/PID/r`).
const BUILD_ROOT: &str = "/nix/var/nix/profiles/inx/.builds/4242/r";
const NEW: &str = "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-nixos-system-web-2";

fn name(s: &str) -> ContainerName {
    ContainerName::parse(s).unwrap()
}

fn manifest(n: &str, system: &str, incus: IncusSettings) -> Manifest {
    Manifest {
        name: name(n),
        toplevel: StorePath::parse(system).unwrap(),
        drv_path: Some(format!("{}.drv", system.replace("nixos-system", "drv"))),
        incus,
        from_image: false,
        host: Default::default(),
    }
}

fn deployed(m: &Manifest, status: &str) -> Instance {
    let spec = spec(m);
    Instance {
        name: m.name.to_string(),
        status: status.into(),
        kind: "container".into(),
        config: spec.config.clone(),
        devices: spec.devices.clone(),
        profiles: spec.profiles.clone(),
        state: None,
        project: "default".into(),
        location: String::new(),
        snapshots: Vec::new(),
    }
}

fn spec(m: &Manifest) -> Spec {
    instance::desired(
        m,
        "/srv/lab",
        Path::new(&format!("/nix/var/nix/profiles/inx/{}", m.name)),
        true,
    )
}

fn target<'a>(
    m: &'a Manifest,
    inst: Option<&'a Instance>,
    profile: Option<(&str, u32)>,
    running: Option<&str>,
) -> Facts<'a> {
    Facts {
        manifest: m,
        spec: spec(m),
        profile_dir: format!("/nix/var/nix/profiles/inx/{}", m.name).into(),
        profile_dir_exists: profile.is_some(),
        profile: ProfileState {
            system: profile.map(|(p, _)| StorePath::parse(p).unwrap()),
            generation: profile.map(|(_, g)| g),
        },
        instance: inst,
        running_system: running.map(|p| StorePath::parse(p).unwrap()),
        built: profile.is_some_and(|(p, _)| p == m.toplevel.as_str()),
        image: None,
        incus: Client::default(),
        target: None,
        store: Some(crate::hosts::Store::Local),
        host: "local".into(),
    }
}

/// The plan of `up` on servers that can idmap mounts, stopping as by default.
fn planned(targets: &[Facts]) -> Plan {
    up(
        targets,
        &Idmap::new(),
        BUILD_ROOT.as_ref(),
        Shutdown::default(),
    )
    .unwrap()
}

fn shell(targets: &[Facts]) -> String {
    planned(targets).to_shell()
}

#[test]
fn new_container_is_built_profiled_created_and_started() {
    let m = manifest("web", NEW, IncusSettings::default());
    insta::assert_snapshot!(shell(&[target(&m, None, None, None)]));
}

#[test]
fn nothing_changed_plans_nothing() {
    let m = manifest("web", NEW, IncusSettings::default());
    let inst = deployed(&m, "Running");
    let plan = planned(&[target(&m, Some(&inst), Some((NEW, 2)), Some(NEW))]);
    assert!(plan.steps.is_empty(), "{}", plan.to_shell());
    assert_eq!(plan.unchanged, [name("web")]);
}

#[test]
fn changed_system_switches_in_place_without_restart() {
    let old = manifest("web", OLD, IncusSettings::default());
    let inst = deployed(&old, "Running");
    let new = manifest("web", NEW, IncusSettings::default());
    let plan = planned(&[target(&new, Some(&inst), Some((OLD, 1)), Some(OLD))]);
    let whats: Vec<What> = plan.steps.iter().map(|s| s.what).collect();
    assert_eq!(
        whats,
        [What::Build, What::Profile, What::Switch, What::Config],
        "the profile directory is there already: no mkdir"
    );
    insta::assert_snapshot!(plan.to_shell());
}

#[test]
fn a_switch_that_failed_before_is_retried() {
    // The profile already points at the new system, but the container still runs the old one.
    let old = manifest("web", OLD, IncusSettings::default());
    let inst = deployed(&old, "Running");
    let new = manifest("web", NEW, IncusSettings::default());
    let plan = planned(&[target(&new, Some(&inst), Some((NEW, 2)), Some(OLD))]);
    let whats: Vec<What> = plan.steps.iter().map(|s| s.what).collect();
    assert_eq!(whats, [What::Switch, What::Config]);
}

#[test]
fn stopped_container_is_started_with_its_new_system() {
    let old = manifest("web", OLD, IncusSettings::default());
    let inst = deployed(&old, "Stopped");
    let new = manifest("web", NEW, IncusSettings::default());
    let plan = planned(&[target(&new, Some(&inst), Some((OLD, 1)), None)]);
    let whats: Vec<What> = plan.steps.iter().map(|s| s.what).collect();
    assert_eq!(
        whats,
        [What::Build, What::Profile, What::Config, What::Start]
    );
}

#[test]
fn the_profile_directory_is_made_only_where_it_is_missing() {
    let m = manifest("web", NEW, IncusSettings::default());
    let inst = deployed(&m, "Running");
    let creates_dir = |t: Facts| {
        planned(&[t])
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::CreateDir(_)))
    };
    // Someone removed the profile directory of a running container: it is made again.
    let gone = target(&m, Some(&inst), None, Some(NEW));
    assert!(!gone.profile_dir_exists);
    assert!(creates_dir(gone));
    // The directory is there but its `system` link is not: only the profile is set.
    let mut emptied = target(&m, Some(&inst), None, Some(NEW));
    emptied.profile_dir_exists = true;
    assert!(!creates_dir(emptied));
}

#[test]
fn a_running_container_whose_profile_directory_was_removed_gets_the_new_one_bound() {
    // The container still has the removed directory bound, empty: the new one is bound in
    // its place before the switch, which runs from it.
    let old = manifest("web", OLD, IncusSettings::default());
    let inst = deployed(&old, "Running");
    let new = manifest("web", NEW, IncusSettings::default());
    let plan = planned(&[target(&new, Some(&inst), None, Some(OLD))]);
    insta::assert_snapshot!(plan.to_shell());
    let whats: Vec<What> = plan.steps.iter().map(|s| s.what).collect();
    assert_eq!(
        whats,
        [
            What::Build,
            What::Profile,
            What::Profile,
            What::InxDevices,
            What::InxDevices,
            What::Switch,
            What::Config
        ]
    );
    // Stopped, it binds the directory when it starts: nothing to do.
    let stopped = deployed(&new, "Stopped");
    let plan = planned(&[target(&new, Some(&stopped), None, None)]);
    let whats: Vec<What> = plan.steps.iter().map(|s| s.what).collect();
    assert_eq!(
        whats,
        [What::Build, What::Profile, What::Profile, What::Start]
    );
}

#[test]
fn live_config_change_does_not_restart() {
    let old = manifest("web", NEW, IncusSettings::default());
    let inst = deployed(&old, "Running");
    let settings = IncusSettings {
        config: BTreeMap::from([("limits.memory".into(), ConfigValue::String("1GiB".into()))]),
        ..Default::default()
    };
    let new = manifest("web", NEW, settings);
    let plan = planned(&[target(&new, Some(&inst), Some((NEW, 2)), Some(NEW))]);
    insta::assert_snapshot!(plan.to_shell());
}

#[test]
fn config_change_that_acts_at_start_restarts() {
    let old = manifest("web", NEW, IncusSettings::default());
    let inst = deployed(&old, "Running");
    let settings = IncusSettings {
        config: BTreeMap::from([("security.idmap.isolated".into(), ConfigValue::Bool(true))]),
        ..Default::default()
    };
    let new = manifest("web", NEW, settings);
    let plan = planned(&[target(&new, Some(&inst), Some((NEW, 2)), Some(NEW))]);
    insta::assert_snapshot!(plan.to_shell());
}

#[test]
fn interrupted_up_finishes_where_it_stopped() {
    // The profile was set and the instance created, but the start never ran.
    let m = manifest("web", NEW, IncusSettings::default());
    let inst = deployed(&m, "Stopped");
    let plan = planned(&[target(&m, Some(&inst), Some((NEW, 1)), None)]);
    let whats: Vec<What> = plan.steps.iter().map(|s| s.what).collect();
    assert_eq!(whats, [What::Start]);
}

#[test]
fn unmanaged_instance_is_refused_before_any_step() {
    let m = manifest("web", NEW, IncusSettings::default());
    let other = manifest("db", NEW, IncusSettings::default());
    let mut foreign = deployed(&m, "Running");
    foreign.config.retain(|k, _| !k.starts_with("user.inx."));
    let err = up(
        &[
            target(&other, None, None, None),
            target(&m, Some(&foreign), None, None),
        ],
        &Idmap::new(),
        BUILD_ROOT.as_ref(),
        Shutdown::default(),
    )
    .unwrap_err();
    assert_eq!(err.kind, Kind::Unmanaged);
    insta::assert_snapshot!(err.to_string());
}

#[test]
fn several_containers_share_one_build() {
    let a = manifest("a", OLD, IncusSettings::default());
    let b = manifest("b", NEW, IncusSettings::default());
    let plan = planned(&[target(&a, None, None, None), target(&b, None, None, None)]);
    let builds: Vec<&Step> = plan
        .steps
        .iter()
        .filter(|s| s.what == What::Build)
        .collect();
    assert_eq!(builds.len(), 1);
    let Action::Run(cmd) = &builds[0].action else {
        panic!("a build runs a command")
    };
    assert_eq!(
        cmd.args[3..],
        [
            "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-drv-web-1.drv",
            "/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-drv-web-2.drv"
        ],
        "one realise for both: {:?}",
        cmd.args
    );
}

/// A system that is already in the store but that no profile holds yet is realised with a
/// root too: the GC could otherwise take it before `nix-env --set` runs.
#[test]
fn a_built_system_is_rooted_until_its_profile_holds_it() {
    let m = manifest("web", NEW, IncusSettings::default());
    let mut t = target(&m, None, None, None);
    t.built = true;
    let plan = planned(&[t]);
    let first = &plan.steps[0];
    assert_eq!(first.what, What::Build);
    assert_eq!(
        first.description,
        "keep 1 system from the GC until the profiles hold them"
    );
    let Action::Run(cmd) = &first.action else {
        panic!("a build runs a command")
    };
    assert_eq!(cmd.args, ["--add-root", BUILD_ROOT, "--realise", NEW]);
    let unchanged = target(&m, None, Some((NEW, 1)), None);
    let plan = planned(&[unchanged]);
    assert!(
        plan.steps.iter().all(|s| s.what != What::Build),
        "a system its profile holds needs no root of the command's"
    );
}

/// A container on another host: that host is held (inx's lock there, roots for the system)
/// before the copy and until its profile holds the system; the container's steps come after.
#[test]
fn a_container_on_another_host_is_copied_and_profiled_there_under_that_hosts_hold() {
    let m = manifest("web", NEW, IncusSettings::default());
    let mut t = target(&m, None, None, None);
    let h4 = crate::name::RemoteName::parse("h4").unwrap();
    t.incus = Client::default().on(Some(&h4));
    t.host = "h4".into();
    t.store = Some(crate::hosts::Store::Ssh(crate::hosts::SshDest {
        user: crate::name::HostWord::ssh("root").unwrap(),
        host: crate::name::HostWord::ssh("127.0.0.4").unwrap(),
        port: None,
        opts: Vec::new(),
    }));
    let plan = planned(&[t]);
    let of_host: Vec<What> = plan
        .steps
        .iter()
        .filter(|s| s.container.is_none() && s.host.as_deref() == Some("h4"))
        .map(|s| s.what)
        .collect();
    assert_eq!(of_host, [What::Hold, What::Copy, What::Profile]);
    insta::assert_snapshot!(plan.to_shell());
}

#[test]
fn plan_as_json() {
    let m = manifest("web", NEW, IncusSettings::default());
    let inst = deployed(&m, "Stopped");
    let plan = planned(&[target(&m, Some(&inst), Some((NEW, 1)), None)]);
    // As `--json` prints it.
    insta::assert_json_snapshot!(crate::output::document(&plan));
}

#[test]
fn lifecycle_skips_what_is_already_so_and_refuses_strangers() {
    let m = manifest("web", NEW, IncusSettings::default());
    let instances = BTreeMap::from([("web".to_string(), deployed(&m, "Running"))]);
    let incus = Client::default();
    let start = lifecycle(
        Lifecycle::Start,
        &[name("web")],
        &instances,
        &incus,
        Shutdown::default(),
    )
    .unwrap();
    assert!(start.steps.is_empty());
    let stop = lifecycle(
        Lifecycle::Stop,
        &[name("web")],
        &instances,
        &incus,
        Shutdown::default(),
    )
    .unwrap();
    assert_eq!(
        stop.to_shell(),
        "# web: stop\nincus stop web --timeout 90 || incus stop web --force\n",
        "a clean shutdown for systemd's 90 s, then a kill"
    );
    let quick = Shutdown {
        timeout: 5,
        force: false,
    };
    let restart = lifecycle(
        Lifecycle::Restart,
        &[name("web")],
        &instances,
        &incus,
        quick,
    );
    assert_eq!(
        restart.unwrap().to_shell(),
        "# web: restart\nincus restart web --timeout 5 || incus restart web --force\n"
    );
    let force = Shutdown {
        timeout: 5,
        force: true,
    };
    let killed = lifecycle(Lifecycle::Stop, &[name("web")], &instances, &incus, force);
    assert_eq!(
        killed.unwrap().to_shell(),
        "# web: stop\nincus stop web --force\n"
    );
    assert_eq!(
        lifecycle(
            Lifecycle::Start,
            &[name("db")],
            &instances,
            &incus,
            Shutdown::default()
        )
        .unwrap_err()
        .kind,
        Kind::Input
    );
    let mut foreign = instances.clone();
    foreign.get_mut("web").unwrap().config.clear();
    assert_eq!(
        lifecycle(
            Lifecycle::Stop,
            &[name("web")],
            &foreign,
            &incus,
            Shutdown::default()
        )
        .unwrap_err()
        .kind,
        Kind::Unmanaged
    );
}

#[test]
fn destroy_removes_instance_and_profile_only() {
    let m = manifest("web", NEW, IncusSettings::default());
    let instances = BTreeMap::from([("web".to_string(), deployed(&m, "Running"))]);
    let dirs = |n: &str, exist: bool| HostDirs {
        profile: (
            PathBuf::from(format!("/nix/var/nix/profiles/inx/{n}")),
            exist,
        ),
        roots: (
            PathBuf::from(format!("/nix/var/nix/gcroots/inx/{n}")),
            exist,
        ),
        roots_lock: "/nix/var/nix/gcroots/inx/.lock".into(),
        ssh: None,
    };
    let client = Client::default();
    let doomed = |n: &str, exist: bool| Doomed {
        instance: instances.get(n),
        incus: &client,
        dirs: dirs(n, exist),
    };
    let all = BTreeMap::from([
        (name("web"), doomed("web", true)),
        (name("db"), doomed("db", false)),
    ]);
    let plan = destroy(&[name("web")], &all, Shutdown::default()).unwrap();
    assert!(plan.deletes_data());
    insta::assert_snapshot!(plan.to_shell());
    assert_eq!(
        destroy(&[name("db")], &all, Shutdown::default())
            .unwrap_err()
            .kind,
        Kind::Input
    );
}

#[test]
fn only_plans_that_write_inx_devices_need_the_idmap_question() {
    let m = manifest("web", NEW, IncusSettings::default());
    let new = planned(&[target(&m, None, None, None)]);
    assert!(new.writes_inx_devices_on(|_| true), "a create writes them");
    let inst = deployed(&m, "Running");
    let same = planned(&[target(&m, Some(&inst), Some((NEW, 2)), Some(NEW))]);
    assert!(!same.writes_inx_devices_on(|_| true));
    let mut unshifted = inst.clone();
    unshifted
        .devices
        .get_mut("inx-store")
        .unwrap()
        .remove("shift");
    let fix = planned(&[target(&m, Some(&unshifted), Some((NEW, 2)), Some(NEW))]);
    assert!(fix.writes_inx_devices_on(|_| true));
    let settings = IncusSettings {
        devices: BTreeMap::from([(
            "data".into(),
            BTreeMap::from([("type".into(), ConfigValue::String("none".into()))]),
        )]),
        ..Default::default()
    };
    let user_dev = manifest("web", NEW, settings);
    let add = planned(&[target(&user_dev, Some(&inst), Some((NEW, 2)), Some(NEW))]);
    assert!(
        !add.writes_inx_devices_on(|_| true),
        "a user's device is not inx's"
    );
}

fn image_files(fp: &str) -> crate::images::ImageFiles {
    crate::images::ImageFiles {
        kind: crate::images::ImageKind::Container,
        metadata: "/nix/store/m-meta/tarball/meta.tar.xz".into(),
        root: "/nix/store/r-root/root.squashfs".into(),
        fingerprint: fp.into(),
    }
}

const FP: &str = "aafd3b080e960061a0fa9fcb977662b52b9f033d0d0041746e6cbe2ef4621c95";

#[test]
fn a_container_from_its_image_is_imported_and_created_without_shared_mounts() {
    let m = manifest("web", NEW, IncusSettings::default());
    let mut t = target(&m, None, None, None);
    t.spec = instance::desired_from_image(&m, "/srv/lab", FP, NEW);
    t.image = Some(ImageSource {
        files: Some(image_files(FP)),
        to_build: vec![],
        present: false,
    });
    let plan = planned(&[t.clone()]);
    insta::assert_snapshot!(plan.to_shell());
    assert!(!plan.to_shell().contains("inx-store"));
    // With the image already on the server, no import.
    t.image.as_mut().unwrap().present = true;
    let plan = planned(&[t]);
    assert!(!plan.steps.iter().any(|s| s.what == What::Import));
}

#[test]
fn an_image_container_with_a_new_system_is_reported_not_switched() {
    let old = manifest("web", OLD, IncusSettings::default());
    let spec = instance::desired_from_image(&old, "/srv/lab", FP, OLD);
    let inst = Instance {
        name: "web".into(),
        status: "Running".into(),
        kind: "container".into(),
        config: spec.config.clone(),
        devices: spec.devices.clone(),
        profiles: spec.profiles.clone(),
        state: None,
        project: "default".into(),
        location: String::new(),
        snapshots: Vec::new(),
    };
    let new = manifest("web", NEW, IncusSettings::default());
    let mut t = target(&new, Some(&inst), None, Some(OLD));
    t.spec = spec;
    t.image = Some(ImageSource {
        files: None,
        to_build: vec![],
        present: true,
    });
    let plan = planned(&[t]);
    assert!(plan.steps.is_empty(), "{}", plan.to_shell());
    assert_eq!(plan.notes.len(), 1);
    assert!(
        plan.notes[0].to_string().contains("inx destroy web"),
        "{:?}",
        plan.notes
    );
}

/// Where the multi-host plans put a container: `remote` (and `member`), fed over ssh to
/// `address` (with `port` when not 22); `address` none: a cluster member Incus has yet to pick.
fn elsewhere<'a>(
    t: Facts<'a>,
    remote: &str,
    member: Option<&str>,
    address: Option<&str>,
    port: Option<u16>,
) -> Facts<'a> {
    let remote = crate::name::RemoteName::parse(remote).unwrap();
    Facts {
        incus: Client::default().on(Some(&remote)),
        target: member.map(String::from),
        host: crate::hosts::label(Some(&remote), member),
        store: address.map(|a| {
            crate::hosts::Store::Ssh(crate::hosts::SshDest {
                user: crate::name::HostWord::ssh("root").unwrap(),
                host: crate::name::HostWord::ssh(a).unwrap(),
                port,
                opts: Vec::new(),
            })
        }),
        ..t
    }
}

/// One `up` across hosts, every kind of step another host gets: a new container on a remote
/// reached on another ssh port (hold, copy with NIX_SSHOPTS, profile, create, start), one
/// updated in place on a cluster member (its copy and profile there, the switch through the
/// remote), one on a cluster with no member named (created where Incus places it, the rest
/// after), and one that needs a restart there (stopped as `Shutdown` says). Each host's
/// steps come before any container's, in one chain per host.
#[test]
fn every_kind_of_step_on_other_hosts() {
    // Each its own system, as in a real flake.
    let system = |n: &str| format!("/nix/store/{}-nixos-system-{n}", &NEW[11..43]);
    let new = manifest("new", &system("new"), IncusSettings::default());
    let updated = manifest("updated", &system("updated"), IncusSettings::default());
    let running = deployed(&updated, "Running");
    let unplaced = manifest("unplaced", &system("unplaced"), IncusSettings::default());
    let mut settings = IncusSettings::default();
    settings.config.insert(
        "limits.kernel.nofile".into(),
        ConfigValue::String("4096".into()),
    );
    let restarted = manifest("restarted", OLD, settings);
    let before = deployed(
        &manifest("restarted", OLD, IncusSettings::default()),
        "Running",
    );
    let targets = [
        elsewhere(
            target(&new, None, None, None),
            "h4",
            None,
            Some("127.0.0.4"),
            Some(2222),
        ),
        elsewhere(
            target(&updated, Some(&running), Some((OLD, 1)), Some(OLD)),
            "h2",
            Some("member2"),
            Some("127.0.0.2"),
            None,
        ),
        elsewhere(target(&unplaced, None, None, None), "h2", None, None, None),
        elsewhere(
            target(&restarted, Some(&before), Some((OLD, 1)), Some(OLD)),
            "h2",
            Some("member3"),
            Some("127.0.0.3"),
            None,
        ),
    ];
    let quick = Shutdown {
        timeout: 10,
        force: false,
    };
    let plan = up(&targets, &Idmap::new(), BUILD_ROOT.as_ref(), quick).unwrap();
    // Hosts' steps (no container) come before every container's.
    let first_container = plan
        .steps
        .iter()
        .position(|s| s.container.is_some())
        .unwrap();
    assert!(plan.steps[first_container..]
        .iter()
        .all(|s| s.container.is_some()));
    insta::assert_snapshot!(plan.to_shell());
}

/// `stop` and `destroy` of a container on another host: the stop through its remote, its
/// folders removed over ssh on its host.
#[test]
fn stop_and_destroy_on_another_host() {
    let m = manifest("web", NEW, IncusSettings::default());
    let inst = deployed(&m, "Running");
    let h4 = crate::name::RemoteName::parse("h4").unwrap();
    let client = Client::default().on(Some(&h4));
    let instances = BTreeMap::from([("web".to_string(), inst.clone())]);
    let stop = lifecycle(
        Lifecycle::Stop,
        &[name("web")],
        &instances,
        &client,
        Shutdown::default(),
    )
    .unwrap();
    let dest = crate::hosts::SshDest {
        user: crate::name::HostWord::ssh("root").unwrap(),
        host: crate::name::HostWord::ssh("127.0.0.4").unwrap(),
        port: None,
        opts: Vec::new(),
    };
    let doomed = BTreeMap::from([(
        name("web"),
        Doomed {
            instance: Some(&inst),
            incus: &client,
            dirs: HostDirs {
                profile: ("/nix/var/nix/profiles/inx/web".into(), true),
                roots: ("/nix/var/nix/gcroots/inx/web".into(), true),
                roots_lock: "/nix/var/nix/gcroots/inx/.lock".into(),
                ssh: Some(dest),
            },
        },
    )]);
    let destroyed = destroy(&[name("web")], &doomed, Shutdown::default()).unwrap();
    insta::assert_snapshot!(format!("{}\n{}", stop.to_shell(), destroyed.to_shell()));
}

/// The create step's input of a plan's only create.
fn create_input(plan: &Plan) -> String {
    let create = plan.steps.iter().find(|s| s.what == What::Create);
    match create.map(|s| &s.action) {
        Some(Action::Run(cmd)) => cmd.stdin.clone().expect("a create has its input"),
        other => panic!("no create: {other:?}"),
    }
}

#[test]
fn a_server_that_cannot_idmap_mounts_gets_unshifted_binds_kept_and_a_warning() {
    let m = manifest("web", NEW, IncusSettings::default());
    let plan_with = |can: bool| {
        let idmap = Idmap::from([(None, Ok(can))]);
        up(
            &[target(&m, None, None, None)],
            &idmap,
            BUILD_ROOT.as_ref(),
            Shutdown::default(),
        )
        .unwrap()
    };
    let able = plan_with(true);
    assert!(create_input(&able).contains("\"shift\""));
    assert!(able.warnings.is_empty(), "{:?}", able.warnings);

    let unable = plan_with(false);
    assert!(!create_input(&unable).contains("\"shift\""));
    assert_eq!(
        unable.warnings,
        ["this Incus server cannot idmap mounts, so /nix/store shows up owned by nobody inside unprivileged containers (it still works read-only)"]
    );
    // The warning is no part of the plan as printed.
    assert!(!unable.to_shell().contains("idmap"));

    // An instance made with unshifted binds keeps them there: nothing to do (the warning
    // again, as shifted binds would be written but for that server).
    let inst = Instance {
        devices: instance::without_shift(&spec(&m)).devices,
        ..deployed(&m, "Running")
    };
    let idmap = Idmap::from([(None, Ok(false))]);
    let same = up(
        &[target(&m, Some(&inst), Some((NEW, 2)), Some(NEW))],
        &idmap,
        BUILD_ROOT.as_ref(),
        Shutdown::default(),
    )
    .unwrap();
    assert!(same.steps.is_empty(), "{}", same.to_shell());
    assert_eq!(same.warnings, unable.warnings);
}

#[test]
fn a_failed_idmap_question_fails_up_only_where_inx_devices_are_written() {
    let m = manifest("web", NEW, IncusSettings::default());
    let failed = || Err(Error::new(Kind::Failed, "query failed"));
    let h2 = crate::name::RemoteName::parse("h2").unwrap();
    let new = [target(&m, None, None, None)];
    // Asked of the local server, which is to get the create: the error.
    let err = up(
        &new,
        &Idmap::from([(None, failed())]),
        BUILD_ROOT.as_ref(),
        Shutdown::default(),
    )
    .unwrap_err();
    assert_eq!(err.message, "query failed");
    // Asked of another server, where nothing is written: no matter.
    let plan = up(
        &new,
        &Idmap::from([(None, Ok(true)), (Some(h2), failed())]),
        BUILD_ROOT.as_ref(),
        Shutdown::default(),
    )
    .unwrap();
    assert!(create_input(&plan).contains("\"shift\""));
    // An unchanged container writes nothing: no matter either.
    let inst = deployed(&m, "Running");
    let same = up(
        &[target(&m, Some(&inst), Some((NEW, 2)), Some(NEW))],
        &Idmap::from([(None, failed())]),
        BUILD_ROOT.as_ref(),
        Shutdown::default(),
    )
    .unwrap();
    assert!(same.steps.is_empty(), "{}", same.to_shell());
}

#[test]
fn image_need_refuses_another_server_and_a_change_of_kind_and_evaluates_only_new_instances() {
    let shared = manifest("web", NEW, IncusSettings::default());
    let imaged = Manifest {
        from_image: true,
        ..shared.clone()
    };
    let made_shared = deployed(&shared, "Running");
    let mut made_from_image = made_shared.clone();
    made_from_image
        .config
        .insert(instance::KEY_IMAGE.into(), FP.into());
    let mut unmanaged = made_from_image.clone();
    unmanaged.config.remove(instance::KEY_MANAGED);

    let need = |m: &Manifest, local: bool, inst: Option<&Instance>, flag: bool| {
        image_need(m, local, inst, flag)
    };
    assert_eq!(
        need(&shared, true, None, false).unwrap(),
        ImageNeed::Nothing
    );
    assert_eq!(
        need(&shared, false, None, false).unwrap(),
        ImageNeed::Nothing
    );
    assert_eq!(
        need(&imaged, true, None, false).unwrap(),
        ImageNeed::Outputs
    );
    assert_eq!(need(&shared, true, None, true).unwrap(), ImageNeed::Outputs);
    assert_eq!(
        need(&imaged, true, Some(&made_from_image), false).unwrap(),
        ImageNeed::Kept
    );
    // An instance inx does not manage is refused later, by `up`: nothing to evaluate.
    assert_eq!(
        need(&imaged, true, Some(&unmanaged), false).unwrap(),
        ImageNeed::Outputs
    );
    let refused = |m: &Manifest, local: bool, inst: Option<&Instance>, flag: bool| {
        let e = need(m, local, inst, flag).unwrap_err();
        assert_eq!(e.kind, Kind::Input);
        e.message
    };
    assert!(refused(&imaged, false, None, false).contains("on the local server only"));
    assert!(refused(&shared, false, None, true).contains("on the local server only"));
    assert!(refused(&shared, true, Some(&made_from_image), false)
        .contains("was made from its image, but is now declared to use the shared store"));
    assert!(refused(&imaged, true, Some(&made_shared), false)
        .contains("was made from the shared store"));
}
