//! Smoke tests of the multi-host bed (scripts/hosts.sh): host2 and host3 form an Incus cluster
//! (members `member2` and `member3`, remote `h2`), host4 is a standalone server (remote `h4`),
//! each with its own /nix/store fed over ssh. The bed must be up (scripts/test.sh brings it up
//! and down around the run); the `down` test brings up a bed of its own under another root.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The end-to-end harness (a throw-away user flake, the real inx), for inx across the bed.
#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

#[path = "e2e/builds.rs"]
#[allow(dead_code)]
mod builds;

#[path = "hosts/inx.rs"]
mod inx;

/// The tests share the bed's hosts: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// The bed: where it lives and how to reach its hosts.
struct Bed {
    root: PathBuf,
    _guard: MutexGuard<'static, ()>,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bed_root() -> PathBuf {
    std::env::var_os("INX_TEST_HOSTS_ROOT")
        .or_else(|| std::env::var_os("INX_HOSTS_ROOT"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/inx-test/hosts"))
}

fn check(what: &str, o: Output) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({}):\n{}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

impl Bed {
    /// The running bed, or None (after a loud skip; in CI a failure) when it is not up.
    fn get(test: &str) -> Option<Bed> {
        let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let root = bed_root();
        let status = Command::new(repo().join("scripts/hosts.sh"))
            .arg("status")
            .env("INX_HOSTS_ROOT", &root)
            .stderr(Stdio::null())
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            harness::skips::record(
                "hosts",
                test,
                test,
                "the multi-host bed is not up (run `scripts/hosts.sh up` as root)",
            );
            return None;
        }
        Some(Bed {
            root,
            _guard: guard,
        })
    }

    /// The private Incus client config with the remotes `h2` (the cluster) and `h4`.
    fn incus_conf(&self) -> PathBuf {
        self.root.join("incus-client")
    }

    /// The ssh options that Nix's ssh store needs to reach 127.0.0.N.
    fn nix_sshopts(&self) -> String {
        format!("-F {}", self.root.join("ssh/config").display())
    }

    /// Host N's folder of inx's profiles, as the main host sees it.
    fn profiles(&self, n: u8) -> PathBuf {
        self.root.join(format!("host{n}/nix/var/nix/profiles/inx"))
    }

    /// Host N's folder of inx's GC roots, as the main host sees it.
    fn gcroots(&self, n: u8) -> PathBuf {
        self.root.join(format!("host{n}/nix/var/nix/gcroots/inx"))
    }

    /// `ssh://root@127.0.0.N`, host N's store for `nix copy --to`.
    fn store_url(n: u8) -> String {
        format!("ssh://root@127.0.0.{n}")
    }

    /// The main host's incus client with the bed's remotes.
    fn incus(&self) -> Command {
        let mut c = Command::new("incus");
        c.env("INCUS_CONF", self.incus_conf());
        c
    }

    /// A command run on host N (in its mount namespace: its /nix, its Incus).
    fn on_host(&self, n: u8, program: &str) -> Command {
        let r = self.root.join(format!("host{n}"));
        let pid = std::fs::read_to_string(r.join("holder.pid")).unwrap();
        let mut c = Command::new("nsenter");
        c.args(["-t", pid.trim(), "-m", "--", program]);
        c.env("INCUS_DIR", r.join("incus"));
        c
    }

    fn has_path(&self, n: u8, path: &str) -> bool {
        self.on_host(n, "nix-store")
            .args(["--check-validity", path])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    fn copy_to(&self, n: u8, path: &str) {
        check(
            "nix copy",
            Command::new("nix")
                .args(["--extra-experimental-features", "nix-command"])
                .args(["copy", "--to", &Bed::store_url(n), path])
                .env("NIX_SSHOPTS", self.nix_sshopts())
                .output()
                .unwrap(),
        );
    }
}

/// A unique name for this test's things.
fn unique(test: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "inx-hosts-{test}-{}-{}",
        std::process::id(),
        nanos % 1_000_000_000
    )
}

/// A synthetic system (tests/fixtures/synthetic-system.nix from /bin/busybox) built on the main
/// host; the version makes it a path no other host has.
fn build_system(version: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("bb")).unwrap();
    std::fs::create_dir(dir.path().join("bb/bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.path().join("bb/bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", dir.path().join("bb/bin/sh")).unwrap();
    let expr = format!(
        "import {} {{ busybox = builtins.path {{ path = {}/bb; name = \"busybox-static\"; }}; version = \"{version}\"; }}",
        repo().join("tests/fixtures/synthetic-system.nix").display(),
        dir.path().display()
    );
    check(
        "nix-build of the synthetic system",
        Command::new("nix-build")
            .args(["--no-out-link", "-E", &expr])
            .output()
            .unwrap(),
    )
    .trim()
    .to_string()
}

/// Deletes the instance when the test ends, however it ends.
struct Instance<'a> {
    bed: &'a Bed,
    remote_name: String,
}

impl Drop for Instance<'_> {
    fn drop(&mut self) {
        let _ = self
            .bed
            .incus()
            .args(["delete", "--force", &self.remote_name])
            .output();
    }
}

/// Creates an empty container on `remote` (placed on `target` if given) shaped as inx makes
/// them: init from the profile dir's `system` link, host N's /nix/store (shift=true) and
/// profile dir as disks; starts it and waits until its system has activated.
fn boot_on(bed: &Bed, host: u8, remote: &str, target: Option<&str>, system: &str, name: &str) {
    let profiles = bed.root.join(format!("host{host}/profiles/{name}"));
    std::fs::create_dir_all(&profiles).unwrap();
    std::os::unix::fs::symlink(system, profiles.join("system")).unwrap();
    let remote_name = format!("{remote}:{name}");
    let mut create = bed.incus();
    create.args(["--project", "default", "create", "--empty", &remote_name]);
    if let Some(t) = target {
        create.args(["--target", t]);
    }
    create.args([
        "-c",
        "raw.lxc=lxc.init.cmd = /nix/var/nix/profiles/system/init",
    ]);
    check("incus create", create.output().unwrap());
    let instance = Instance { bed, remote_name };
    for (dev, source, path, ro) in [
        ("inx-store", "/nix/store".to_string(), "/nix/store", true),
        (
            "inx-profiles",
            profiles.display().to_string(),
            "/nix/var/nix/profiles",
            false,
        ),
    ] {
        let mut add = bed.incus();
        add.args([
            "config",
            "device",
            "add",
            &instance.remote_name,
            dev,
            "disk",
        ]);
        add.arg(format!("source={source}"));
        add.arg(format!("path={path}"));
        add.arg("shift=true");
        if ro {
            add.arg("readonly=true");
        }
        check("incus config device add", add.output().unwrap());
    }
    check(
        "incus start",
        bed.incus()
            .args(["start", &instance.remote_name])
            .output()
            .unwrap(),
    );
    if let Some(t) = target {
        let location = check(
            "incus list",
            bed.incus()
                .args(["list", &instance.remote_name, "-f", "csv", "-c", "L"])
                .output()
                .unwrap(),
        );
        assert_eq!(location.trim(), t, "the instance is not on {t}");
    }
    // The system's activation writes this file inside the container.
    let cat = format!("{system}/sw/bin/cat");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = bed
            .incus()
            .args(["exec", &instance.remote_name, "--", &cat])
            .arg("/var/lib/inx-test/activations")
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        if o.status.success() && out.contains("activate ") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the container on {remote} did not activate its system: {out} {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_system_built_here_reaches_host3_store_only_by_nix_copy() {
    let Some(bed) = Bed::get("a_system_built_here_reaches_host3_store_only_by_nix_copy") else {
        return;
    };
    let system = build_system(&unique("copy"));
    assert!(!bed.has_path(3, &system), "host3 already has {system}");
    bed.copy_to(3, &system);
    assert!(
        bed.has_path(3, &system),
        "host3 lacks {system} after nix copy"
    );
    assert!(!bed.has_path(4, &system), "host4 got {system} too");
}

#[test]
fn a_container_on_cluster_member3_boots_a_system_from_host3_store() {
    let Some(bed) = Bed::get("a_container_on_cluster_member3_boots_a_system_from_host3_store")
    else {
        return;
    };
    let name = unique("m3");
    let system = build_system(&name);
    bed.copy_to(3, &system);
    boot_on(&bed, 3, "h2", Some("member3"), &system, &name);
}

#[test]
fn a_container_on_remote_host4_boots_a_system_from_host4_store() {
    let Some(bed) = Bed::get("a_container_on_remote_host4_boots_a_system_from_host4_store") else {
        return;
    };
    let name = unique("h4");
    let system = build_system(&name);
    bed.copy_to(4, &system);
    boot_on(&bed, 4, "h4", None, &system, &name);
}

#[test]
fn down_leaves_no_process_mount_or_dir_of_the_bed() {
    let Some(bed) = Bed::get("down_leaves_no_process_mount_or_dir_of_the_bed") else {
        return;
    };
    // A running container on host4 gives `down` LXC monitors and container processes to stop.
    let name = unique("down");
    let system = build_system(&name);
    bed.copy_to(4, &system);
    let profiles = bed.root.join(format!("host4/profiles/{name}"));
    std::fs::create_dir_all(&profiles).unwrap();
    std::os::unix::fs::symlink(&system, profiles.join("system")).unwrap();
    let remote_name = format!("h4:{name}");
    check(
        "incus create",
        bed.incus()
            .args(["--project", "default", "create", "--empty", &remote_name])
            .args([
                "-c",
                "raw.lxc=lxc.init.cmd = /nix/var/nix/profiles/system/init",
            ])
            .output()
            .unwrap(),
    );
    for (dev, source, path) in [
        ("inx-store", "/nix/store".to_string(), "/nix/store"),
        (
            "inx-profiles",
            profiles.display().to_string(),
            "/nix/var/nix/profiles",
        ),
    ] {
        check(
            "incus config device add",
            bed.incus()
                .args(["config", "device", "add", &remote_name, dev, "disk"])
                .arg(format!("source={source}"))
                .arg(format!("path={path}"))
                .arg("shift=true")
                .output()
                .unwrap(),
        );
    }
    check(
        "incus start",
        bed.incus().args(["start", &remote_name]).output().unwrap(),
    );

    let script = repo().join("scripts/hosts.sh");
    let run = |arg: &str| {
        check(
            &format!("hosts.sh {arg}"),
            Command::new(&script)
                .arg(arg)
                .env("INX_HOSTS_ROOT", &bed.root)
                .output()
                .unwrap(),
        )
    };
    run("down");
    assert!(
        !bed.root.exists(),
        "{} is still there after down",
        bed.root.display()
    );
    let needle = format!(" {}/", bed.root.display());
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mounts.contains(&needle),
        "a mount of the bed is left after down"
    );
    let mut held = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(text) = std::fs::read_to_string(entry.path().join("mountinfo")) {
            if text.contains(&needle) {
                held.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    // Bring the bed back for the other tests (they take the same lock) before asserting.
    let back = Command::new(&script)
        .arg("up")
        .env("INX_HOSTS_ROOT", &bed.root)
        .output()
        .unwrap();
    assert!(
        held.is_empty(),
        "processes still see the bed after down: {held:?}"
    );
    check("hosts.sh up after down", back);
}
