//! End to end: what containers build survives the host's garbage collection with inx, and
//! does not without it. Real Nix client in real Incus containers, the real host daemon.

#[path = "e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "e2e/builds.rs"]
mod builds;

use builds::{build_in, host_gc, on_host};
use harness::{host, sh_out, Fixture, ROOTS};
use std::path::Path;

macro_rules! host {
    ($test:expr) => {
        match host($test) {
            Some(guard) => guard,
            None => return,
        }
    };
}

/// The store paths rooted for `name`, from inx's links.
fn rooted(name: &str) -> Vec<String> {
    let mut paths: Vec<String> = std::fs::read_dir(Path::new(ROOTS).join(name))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("r-"))
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.display().to_string())
        .collect();
    paths.sort();
    paths
}

#[test]
fn builds_in_a_container_survive_host_gc_only_with_inx() {
    let _host = host!("builds_in_a_container_survive_host_gc_only_with_inx");
    let fx = Fixture::new("gc");
    let c = fx.name("c");
    fx.declare(&[(&c, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    const N: usize = 3;
    let nonce = std::process::id();

    // The control: no inx. The host's GC deletes what the container built.
    let without: Vec<String> = (0..N)
        .map(|i| {
            build_in(
                &c,
                &format!("/root/plain-{i}"),
                &format!("plain{nonce}x{i}"),
            )
        })
        .collect();
    let survived_without = without.iter().filter(|p| host_gc(p)).count();
    eprintln!("without inx: {survived_without} of {N} container builds survived host GC");
    assert_eq!(survived_without, 0, "the problem did not reproduce");
    assert_eq!(
        sh_out(&c, "cat /root/plain-0 2>/dev/null || echo dangling"),
        "dangling",
        "the container's result link should now dangle"
    );

    // With inx: one sync before the GC, and everything survives.
    let with: Vec<String> = (0..N)
        .map(|i| build_in(&c, &format!("/root/kept-{i}"), &format!("kept{nonce}x{i}")))
        .collect();
    fx.inx(&["roots", "sync"])
        .ok()
        .stderr_has(&format!("{c}: {N} new"));
    let mut expected = with.clone();
    expected.sort();
    assert_eq!(rooted(&c), expected);
    let survived_with = with.iter().filter(|p| host_gc(p)).count();
    eprintln!("with inx roots sync: {survived_with} of {N} container builds survived host GC");
    assert_eq!(survived_with, N);
    // The GC deleted the auto links (it cannot resolve them); the roots stay regardless.
    fx.inx(&["roots", "sync"]).ok();
    assert_eq!(rooted(&c), expected);
    assert_eq!(
        sh_out(&c, "cat /root/kept-0"),
        format!("kept{nonce}x0"),
        "the container still reads its build"
    );

    // `rm result` in the container, a sync, and that build can go.
    sh_out(&c, "rm /root/kept-0");
    fx.inx(&["roots", "sync"])
        .ok()
        .stderr_has(&format!("{c}: 0 new, 1 dropped"));
    assert!(!host_gc(&with[0]), "a dropped build should be collected");
    assert!(host_gc(&with[1]) && host_gc(&with[2]));
}
