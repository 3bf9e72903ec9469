//! End to end: what containers build survives the host's garbage collection with inx, and
//! does not without it. Real Nix client in real Incus containers, the real host daemon.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

#[path = "e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "e2e/builds.rs"]
mod builds;

use builds::{build_in, host_gc};
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

/// `inx roots watch` as a child process, stopped when dropped.
struct Watcher(std::process::Child);

impl Watcher {
    fn start() -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_inx"))
            .args(["roots", "watch", "--interval", "3600"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start inx roots watch");
        let mut lines = std::io::BufReader::new(child.stderr.take().unwrap()).lines();
        // Its first sync may report before it says it is watching.
        loop {
            let line = lines.next().expect("inx roots watch ended early").unwrap();
            eprintln!("[watch] {line}");
            if line.starts_with("roots: watching") {
                break;
            }
        }
        // Keep draining what it says (into the test's output) so it never blocks on a pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[watch] {line}");
            }
        });
        Watcher(child)
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A root query right after the build deletes the auto link (the host cannot resolve it);
/// the watcher has read it by then and keeps the build. It follows containers that restart
/// (new init, new root to read through) and containers created while it runs.
#[test]
fn the_watcher_keeps_a_build_through_an_immediate_root_query_and_gc() {
    let _host = host!("the_watcher_keeps_a_build_through_an_immediate_root_query_and_gc");
    let fx = Fixture::new("watch");
    let a = fx.name("a");
    let b = fx.name("b");
    fx.declare(&[(&a, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let nonce = std::process::id();
    let _watch = Watcher::start();

    let check = |container: &str, tag: &str| {
        let path = build_in(container, &format!("/root/{tag}"), &format!("{tag}{nonce}"));
        let roots = std::process::Command::new("nix-store")
            .args(["--gc", "--print-roots"])
            .output()
            .unwrap();
        assert!(roots.status.success());
        assert!(host_gc(&path), "{container}: the build {tag} was collected");
        path
    };
    let first = check(&a, "first");

    fx.inx(&["restart", &a]).ok();
    check(&a, "after-restart");
    assert!(
        rooted(&a).contains(&first),
        "the restart window dropped a root whose link is still there"
    );

    fx.declare(&[
        (&a, "inx.lib.mkContainer { toplevel = sys \"1\"; }"),
        (&b, "inx.lib.mkContainer { toplevel = sys \"1\"; }"),
    ]);
    fx.up(&[]);
    let in_b = check(&b, "new-container");
    assert!(rooted(&b).contains(&in_b));
}

/// A stopped container's builds are read from its storage volume and kept; a destroyed
/// container's roots are gone, whether inx or incus destroyed it, and its builds go.
#[test]
fn stopped_containers_keep_their_builds_and_destroyed_ones_release_them() {
    let _host = host!("stopped_containers_keep_their_builds_and_destroyed_ones_release_them");
    let fx = Fixture::new("stop");
    let a = fx.name("a");
    let b = fx.name("b");
    let decl = "inx.lib.mkContainer { toplevel = sys \"1\"; }";
    fx.declare(&[(&a, decl), (&b, decl)]);
    fx.up(&[]);
    let nonce = std::process::id();

    // Built, then stopped before any sync: only the stopped volume can tell.
    let in_a = build_in(&a, "/root/result", &format!("stopped{nonce}"));
    fx.inx(&["stop", &a]).ok();
    fx.inx(&["roots", "sync"])
        .ok()
        .stderr_has(&format!("{a}: 1 new"));
    assert!(host_gc(&in_a), "a stopped container's build was collected");
    fx.inx(&["start", &a]).ok();
    assert_eq!(sh_out(&a, "cat /root/result"), format!("stopped{nonce}"));

    fx.inx(&["destroy", "--force", &a]).ok();
    assert!(
        !Path::new(ROOTS).join(&a).exists(),
        "destroy left roots behind"
    );
    assert!(!host_gc(&in_a), "a destroyed container's build was kept");

    // Deleted behind inx's back: the next sync drops its roots.
    let in_b = build_in(&b, "/root/result", &format!("deleted{nonce}"));
    fx.inx(&["roots", "sync"]).ok();
    assert_eq!(rooted(&b), std::slice::from_ref(&in_b));
    let deleted = std::process::Command::new("incus")
        .args(["delete", "--force", &b])
        .status()
        .unwrap();
    assert!(deleted.success());
    fx.inx(&["roots", "sync"])
        .ok()
        .stderr_has(&format!("{b}: 0 new, 1 dropped"));
    assert!(!Path::new(ROOTS).join(&b).exists());
    assert!(!host_gc(&in_b), "a deleted container's build was kept");
}

/// Links that lead out of the container make no roots and make inx read nothing of the
/// host: the paths they name exist on the host and lead to store paths there, so following
/// them out would show up as roots.
#[test]
fn hostile_links_make_no_roots() {
    let _host = host!("hostile_links_make_no_roots");
    let fx = Fixture::new("hostile");
    let c = fx.name("c");
    fx.declare(&[(&c, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let nonce = std::process::id();
    let good = build_in(&c, "/root/good", &format!("good{nonce}"));

    // On the host: a directory whose link leads to a store path the container's root lacks
    // the route to. A confined walk cannot reach it; a walk that escaped would root it.
    let bait_dir = fx.path().join("bait");
    std::fs::create_dir_all(&bait_dir).unwrap();
    let bait = builds::nix_client();
    std::os::unix::fs::symlink(bait, bait_dir.join("result")).unwrap();
    let bait_link = bait_dir.join("result").display().to_string();
    let depth = "../".repeat(20);
    let links = [
        ("abs", bait_link.clone()),
        (
            "dots",
            format!("{depth}{}", bait_link.trim_start_matches('/')),
        ),
        ("magic", format!("/proc/1/root{bait_link}")),
        ("self", format!("/proc/self/root{bait_link}")),
        ("shadow", "/etc/shadow".to_string()),
        ("loop-a", "/root/loop-b".to_string()),
        ("loop-b", "/root/loop-a".to_string()),
        ("dir", "/root/../../..".to_string()),
    ];
    for (name, target) in &links {
        sh_out(&c, &format!("ln -sfn '{target}' /root/{name}"));
    }
    // As the daemon would record them for a client in the container.
    let auto = Path::new("/nix/var/nix/gcroots/auto");
    let mut made = Vec::new();
    let mut origins: Vec<String> = links.iter().map(|(n, _)| format!("/root/{n}")).collect();
    origins.push(format!("/root/dir{bait_link}"));
    origins.push(format!("/../..{bait_link}"));
    for (i, origin) in origins.iter().enumerate() {
        let link = auto.join(format!("inx-e2e-hostile-{nonce}-{i}"));
        std::os::unix::fs::symlink(origin, &link).unwrap();
        made.push(link);
    }
    let shadow_before = std::fs::metadata("/etc/shadow")
        .unwrap()
        .modified()
        .unwrap();

    let sync = fx.inx(&["roots", "sync"]);
    for link in &made {
        let _ = std::fs::remove_file(link);
    }
    sync.ok();
    assert_eq!(rooted(&c), [good], "only the build is rooted");
    let index = std::fs::read_to_string(Path::new(ROOTS).join(&c).join("roots.json")).unwrap();
    assert!(!index.contains(bait), "{index}");
    assert_eq!(
        std::fs::metadata("/etc/shadow")
            .unwrap()
            .modified()
            .unwrap(),
        shadow_before
    );
    // Nothing appeared anywhere else under inx's roots either.
    for entry in std::fs::read_dir(ROOTS).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            for link in std::fs::read_dir(&path).unwrap().flatten() {
                if let Ok(target) = std::fs::read_link(link.path()) {
                    assert_ne!(
                        target,
                        Path::new(bait),
                        "{} roots the bait",
                        link.path().display()
                    );
                }
            }
        }
    }
}

/// `inx gc` is the whole story in one command: it syncs first, so a build whose only trace is
/// the auto link survives, and then really collects (a path nothing keeps is gone).
#[test]
fn inx_gc_syncs_then_collects() {
    let _host = host!("inx_gc_syncs_then_collects");
    let fx = Fixture::new("collect");
    let c = fx.name("c");
    fx.declare(&[(&c, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let nonce = std::process::id();
    let built = build_in(&c, "/root/result", &format!("collect{nonce}"));
    let garbage_file = fx.path().join(format!("inx-e2e-garbage-{nonce}"));
    std::fs::write(&garbage_file, format!("garbage {nonce}\n")).unwrap();
    let out = std::process::Command::new("nix-store")
        .arg("--add")
        .arg(&garbage_file)
        .output()
        .unwrap();
    let garbage = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(builds::on_host(&garbage));

    fx.inx(&["gc"]).ok().stderr_has(&format!("{c}: 1 new"));
    assert!(
        builds::on_host(&built),
        "inx gc collected the container's build"
    );
    assert!(!builds::on_host(&garbage), "inx gc did not collect");
    assert_eq!(sh_out(&c, "cat /root/result"), format!("collect{nonce}"));
}

/// Syncs while a container restarts again and again: Incus lists it without its config (so
/// without inx's marker) for a moment, and its init has the host's root before it pivots.
/// Neither may make inx drop a root whose link is still there.
#[test]
fn syncs_during_restarts_never_drop_a_live_root() {
    let _host = host!("syncs_during_restarts_never_drop_a_live_root");
    let fx = Fixture::new("restarts");
    let a = fx.name("a");
    fx.declare(&[(&a, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let nonce = std::process::id();
    let built = build_in(&a, "/root/result", &format!("restarts{nonce}"));
    fx.inx(&["roots", "sync"]).ok();
    assert_eq!(rooted(&a), std::slice::from_ref(&built));

    let bin = env!("CARGO_BIN_EXE_inx");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = stop.clone();
    let name = a.clone();
    let syncer = std::thread::spawn(move || {
        let mut drops = Vec::new();
        let mut syncs = 0;
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            let out = std::process::Command::new(bin)
                .args(["roots", "sync"])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            drops.extend(
                err.lines()
                    .filter(|l| {
                        l.starts_with(&format!("{name}:"))
                            && l.contains("dropped")
                            && !l.contains(" 0 dropped")
                    })
                    .map(String::from),
            );
            syncs += 1;
        }
        (syncs, drops)
    });
    let (_, system) = harness::profile(&a).unwrap();
    for _ in 0..6 {
        let restarted = std::process::Command::new("incus")
            .args(["restart", &a])
            .status()
            .unwrap();
        assert!(restarted.success());
        // Up before the next restart: a stop signal that reaches the fixture's init before its
        // trap is set is lost (PID 1 ignores signals it does not handle), and the restart hangs.
        harness::wait_active(&a, &system);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (syncs, drops) = syncer.join().unwrap();
    eprintln!("{syncs} syncs during 6 restarts");
    assert!(syncs >= 6, "too few syncs ({syncs}) to mean anything");
    assert!(
        drops.is_empty(),
        "roots dropped during restarts: {drops:#?}"
    );
    assert_eq!(rooted(&a), [built]);
}

/// The confinement of the host module's `inx-roots` unit (lib/modules/host.nix), as far as
/// `unshare` and `setpriv` reproduce it without systemd: the system read-only but for
/// /nix/var/nix/gcroots and /nix/var/nix/profiles/inx (ProtectSystem=strict, ReadWritePaths),
/// an empty read-only /root and /home (ProtectHome), no network but loopback
/// (PrivateNetwork), only CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER and CAP_SYS_PTRACE
/// (CapabilityBoundingSet), NoNewPrivileges, and the incus client's config in a runtime folder
/// (RuntimeDirectory, INCUS_CONF). `$1` is that folder; the rest is the command.
const CONFINED: &str = r#"
set -e
run=$1
shift
mount --bind /nix/var/nix/gcroots /nix/var/nix/gcroots
mount --bind /nix/var/nix/profiles/inx /nix/var/nix/profiles/inx
mount -o remount,bind,ro /
mount -t tmpfs -o mode=0700 tmpfs "$run"
mount -t tmpfs -o ro,mode=0755 tmpfs /root
mount -t tmpfs -o ro,mode=0755 tmpfs /home
exec setpriv --bounding-set -all,+dac_override,+dac_read_search,+fowner,+sys_ptrace \
  --inh-caps=-all --no-new-privs -- env HOME=/root INCUS_CONF="$run/incus" "$@"
"#;

/// The host module runs the watcher confined (tests/flake.rs scores that unit): inside that
/// confinement `inx roots sync` still reads a running container's build through
/// /proc/PID/root and roots it, so the host's GC keeps it. (The system call filter and the
/// other options that only restrict what inx never does are not reproduced here.)
#[test]
fn roots_sync_works_confined_as_the_host_modules_service() {
    let _host = host!("roots_sync_works_confined_as_the_host_modules_service");
    let fx = Fixture::new("confined");
    let c = fx.name("c");
    fx.declare(&[(&c, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let built = build_in(
        &c,
        "/root/confined",
        &format!("confined{}", std::process::id()),
    );
    let run = fx.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let out = std::process::Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private", "--"])
        .args(["sh", "-c", CONFINED, "confined"])
        .arg(&run)
        .arg(env!("CARGO_BIN_EXE_inx"))
        .args(["roots", "sync"])
        .output()
        .expect("run unshare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    assert!(out.status.success(), "confined roots sync failed: {out:?}");
    assert!(stderr.contains(&format!("{c}: 1 new")), "{stderr}");
    assert_eq!(rooted(&c), std::slice::from_ref(&built));
    assert!(
        host_gc(&built),
        "the confined sync's root did not keep the build"
    );
}
