//! Snapshots that keep their system: the root filesystem from Incus, the system from a GC root
//! inx holds while the snapshot exists; a restore brings back both, even after the host has
//! collected everything else.

use super::harness::*;
use std::path::Path;
use std::process::Command;

fn snapshot_root(name: &str, snapshot: &str) -> Option<String> {
    std::fs::read_link(Path::new(ROOTS).join(name).join("snapshots").join(snapshot))
        .ok()
        .map(|p| p.display().to_string())
}

fn on_host(args: &[&str]) {
    let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(
        out.status.success(),
        "{}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Snapshot at v1, `up` to v2 and a restart, `nix-collect-garbage -d` and a GC on the host,
/// restore: the container runs v1 again, with its v1 files and without the later ones.
#[test]
fn a_restored_snapshot_brings_back_its_files_and_its_system_after_the_hosts_gc() {
    let _host = host!("snap_restore");
    let fx = Fixture::new("snaprestore");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, v1) = profile(&web).unwrap();
    wait_active(&web, &v1);
    sh_out(&web, "echo one > /root/before");

    fx.inx(&["snapshot", &web, "v1"]).ok().stderr_has("keeps");
    assert_eq!(snapshot_root(&web, "v1").as_deref(), Some(v1.as_str()));
    let listed = fx.inx(&["--json", "snapshots", &web]).ok().json();
    assert_eq!(listed["snapshots"][0]["name"], "v1", "{listed}");
    assert_eq!(listed["snapshots"][0]["system"], v1.as_str(), "{listed}");
    assert_eq!(listed["snapshots"][0]["kept"], true, "{listed}");

    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"2\"; }")]);
    fx.up(&[]).stderr_has("in place");
    let (_, v2) = profile(&web).unwrap();
    wait_active(&web, &v2);
    sh_out(&web, "echo two > /root/after");
    // Booted into v2: no process of the container runs from v1 any more (Nix would count
    // one as a runtime root).
    fx.inx(&["restart", &web]).ok();
    wait_active(&web, &v2);

    // Every old generation of every profile goes, then the collection: only the snapshot's
    // root keeps v1.
    on_host(&["nix-collect-garbage", "-d"]);
    on_host(&["nix-store", "--gc"]);
    assert!(
        Path::new(&v1).exists(),
        "the host's GC took the snapshot's system {v1}"
    );

    fx.inx(&["restore", &web, "v1"]).ok();
    wait_active(&web, &v1);
    assert_eq!(sh_out(&web, "cat /root/before"), "one");
    assert_eq!(
        sh(&web, "test -e /root/after").status.code(),
        Some(1),
        "a file made after the snapshot is gone"
    );
    assert_eq!(profile(&web).unwrap().1, v1, "the profile holds v1 again");
    assert_eq!(
        config(&web, "user.inx.system").as_deref(),
        Some(v1.as_str())
    );

    // Bad input changes nothing.
    fx.inx(&["restore", &web, "nosuch"]).code(3);
    fx.inx(&["snapshot", &web, "v1"]).code(3);
    fx.inx(&["snapshot", &web, "../x"]).code(3);
    assert_eq!(snapshot_root(&web, "v1").as_deref(), Some(v1.as_str()));
}

/// Snapshots Incus takes by itself (here by hand, as `snapshots.schedule` would) get their
/// root at the next sync, and lose it once deleted (and the root is over a minute old).
#[test]
fn a_snapshot_taken_or_deleted_outside_inx_is_rooted_or_released_at_the_next_sync() {
    let _host = host!("snap_sync");
    let fx = Fixture::new("snapsync");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, v1) = profile(&web).unwrap();

    on_host(&["incus", "snapshot", "create", &web, "byhand"]);
    assert_eq!(snapshot_root(&web, "byhand"), None);
    fx.inx(&["roots", "sync"]).ok();
    assert_eq!(snapshot_root(&web, "byhand").as_deref(), Some(v1.as_str()));

    on_host(&["incus", "snapshot", "delete", &web, "byhand"]);
    // A root made in the last minute is kept: a listing may be older than it.
    fx.inx(&["roots", "sync"]).ok();
    assert_eq!(snapshot_root(&web, "byhand").as_deref(), Some(v1.as_str()));
    let link = Path::new(ROOTS).join(&web).join("snapshots/byhand");
    on_host(&[
        "touch",
        "-h",
        "-d",
        "2 minutes ago",
        &link.display().to_string(),
    ]);
    fx.inx(&["roots", "sync"]).ok();
    assert_eq!(snapshot_root(&web, "byhand"), None);
    assert!(
        !Path::new(ROOTS).join(&web).join("snapshots").exists(),
        "no snapshot, no snapshot roots folder"
    );
}
