//! The host module's initialisation of Incus (lib/modules/incus-init.sh, the `inx-incus-init`
//! service), run as that service runs it, against the test host's real Incus: an Incus that is
//! set up is left exactly as it was, and a fresh one (a project with a default profile of its
//! own, empty as a fresh Incus's is) gets its root disk once. No bridge is made: the test host
//! must get none (shared/test-host.md), so the script is given no bridge on the fresh side.

use super::harness::*;
use std::path::Path;
use std::process::Command;

/// The script as the module's service runs it: `sh` (the module wraps it with the system's
/// shell), its bridge settings in the environment, the Incus client config in `conf` if given.
fn run_init(conf: Option<&Path>, bridge: &str) -> std::process::Output {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("lib/modules/incus-init.sh");
    let mut cmd = Command::new("sh");
    cmd.arg(script)
        .env("INX_BRIDGE", bridge)
        .env("INX_BRIDGE_ADDRESS", "10.0.100.1/24");
    if let Some(conf) = conf {
        cmd.env("INCUS_CONF", conf);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "incus-init.sh failed: {out:?}");
    out
}

/// What the script could change, as `project` sees them: the pools, the networks and the
/// default profile, without their `used_by` (which other instances change).
fn incus_state(project: &str) -> Vec<serde_json::Value> {
    [
        "/1.0/storage-pools?recursion=1",
        "/1.0/networks?recursion=1",
        "/1.0/profiles/default?",
    ]
    .iter()
    .map(|url| format!("{url}&project={project}"))
    .map(|url| {
        let out = incus_with(None, &["query", &url]);
        assert!(out.status.success(), "incus query {url}: {out:?}");
        let mut v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for item in v
            .as_array_mut()
            .map_or_else(Vec::new, |a| a.iter_mut().collect())
        {
            item.as_object_mut().unwrap().remove("used_by");
        }
        if let Some(object) = v.as_object_mut() {
            object.remove("used_by");
        }
        v
    })
    .collect()
}

#[test]
fn incus_init_leaves_a_set_up_incus_as_it_is_at_every_run() {
    let _host = host!("incus_init_set_up");
    let before = incus_state("default");
    // The test host's Incus has a default profile with a root disk and no bridge at all: with
    // the module's default bridge named, nothing is made either.
    for _ in 0..2 {
        let out = run_init(None, "incusbr0");
        let said = String::from_utf8_lossy(&out.stdout);
        assert!(
            said.contains("Incus is set up already") && said.contains("nothing changed"),
            "{said}"
        );
        assert_eq!(incus_state("default"), before, "the set-up Incus changed");
    }
}

#[test]
fn incus_init_gives_a_fresh_default_profile_its_root_disk_once() {
    let _host = host!("incus_init_fresh");
    let fx = Fixture::new("init");
    let project = "inx-e2e-init";
    let conf = fx.path().join("incus-client");
    std::fs::create_dir_all(&conf).unwrap();
    let incus = |args: &[&str]| incus_with(Some(&conf), args);
    // A project with profiles of its own: its default profile is as empty as a fresh Incus's.
    incus(&["project", "delete", project]);
    let made = incus(&["project", "create", project, "-c", "features.profiles=true"]);
    assert!(made.status.success(), "{made:?}");
    let switched = incus(&["project", "switch", project]);
    assert!(switched.status.success(), "{switched:?}");
    let pools_before = incus_state("default")[0].clone();

    let first = run_init(Some(&conf), "");
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("keeping the storage pool default"), "{said}");
    let profile = &incus_state(project)[2];
    assert_eq!(
        profile["devices"],
        serde_json::json!({"root": {"type": "disk", "path": "/", "pool": "default"}}),
        "{profile}"
    );
    assert_eq!(
        incus_state("default")[0],
        pools_before,
        "the existing pool changed"
    );

    let after_first = incus_state(project);
    let second = run_init(Some(&conf), "");
    assert!(
        String::from_utf8_lossy(&second.stdout).contains("nothing changed"),
        "{second:?}"
    );
    assert_eq!(
        incus_state(project),
        after_first,
        "the second run changed it"
    );

    incus(&["project", "switch", "default"]);
    let deleted = incus(&["project", "delete", project]);
    assert!(deleted.status.success(), "{deleted:?}");
}
