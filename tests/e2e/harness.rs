//! The end-to-end bed: a throw-away user flake (inx's own flake and lib copied in, nixpkgs
//! replaced by an empty flake, systems made by tests/fixtures/synthetic-system.nix from
//! Debian's static busybox), the real inx binary, real Nix and real Incus.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const PROFILES: &str = "/nix/var/nix/profiles/inx";
pub const ROOTS: &str = "/nix/var/nix/gcroots/inx";

/// End-to-end tests share one Incus, one store and inx's host lock: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// What stops this machine from running the end-to-end tests, if anything.
fn host_problem() -> Option<String> {
    if std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
        != 0
    {
        return Some("not running as root (inx writes /nix/var/nix/profiles/inx)".into());
    }
    for tool in ["nix", "nix-store", "nix-env", "incus"] {
        if which::which(tool).is_err() {
            return Some(format!("`{tool}` is not installed"));
        }
    }
    if !Path::new("/nix/var/nix/daemon-socket/socket").exists() {
        return Some("nix-daemon is not running (no /nix/var/nix/daemon-socket/socket)".into());
    }
    if !Path::new("/bin/busybox").exists() {
        return Some(
            "/bin/busybox (Debian's busybox-static) is missing: the fixture systems need it".into(),
        );
    }
    match Command::new("incus")
        .args(["info"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
    {
        Ok(o) if o.status.success() => None,
        Ok(o) => Some(format!(
            "the Incus daemon does not answer: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Some(format!("cannot run incus: {e}")),
    }
}

/// Takes the host for one test, or says loudly why the test is skipped. In CI a host that
/// cannot run the tests fails the run instead.
pub fn host(test: &str) -> Option<MutexGuard<'static, ()>> {
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    match host_problem() {
        None => Some(guard),
        Some(why) => {
            skip(test, &why);
            None
        }
    }
}

#[path = "skips.rs"]
pub mod skips;

/// Skips an end-to-end test that this host cannot run (in CI: fails it); see skips.rs.
pub fn skip(test: &str, why: &str) {
    skips::record("end-to-end", test, test, why);
}

pub struct Fixture {
    dir: tempfile::TempDir,
    prefix: String,
    created: std::cell::RefCell<Vec<String>>,
}

const USER_FLAKE: &str = r#"{
  inputs.inx.url = "path:@INX@";
  inputs.nixpkgs.url = "path:@EMPTY@";
  inputs.inx.inputs.nixpkgs.follows = "nixpkgs";

  outputs = { self, inx, ... }:
    let
      busybox = builtins.path { path = ./bb; name = "busybox-static"; };
      sysWith = version: extraActivation:
        import ./synthetic-system.nix { inherit busybox version extraActivation; };
      sys = version: sysWith version "";
      broken = derivation {
        name = "inx-e2e-broken";
        system = "x86_64-linux";
        builder = "${busybox}/bin/sh";
        args = [ "-c" "echo failing on purpose >&2; exit 3" ];
      };
@LETS@
    in
    {
      inxContainers = {
@CONTAINERS@
      };
@OUTPUTS@
    };
}
"#;

impl Fixture {
    /// `prefix` keeps this test's instance names apart from every other test's.
    pub fn new(prefix: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("inx-e2e-")
            .tempdir()
            .expect("temp dir");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let inx = dir.path().join("inx");
        std::fs::create_dir_all(&inx).unwrap();
        std::fs::copy(repo.join("flake.nix"), inx.join("flake.nix")).unwrap();
        copy_dir(&repo.join("lib"), &inx.join("lib"));
        let empty = dir.path().join("empty");
        std::fs::create_dir_all(&empty).unwrap();
        std::fs::write(empty.join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
        let user = dir.path().join("user");
        std::fs::create_dir_all(user.join("bb/bin")).unwrap();
        std::fs::copy("/bin/busybox", user.join("bb/bin/busybox")).unwrap();
        std::os::unix::fs::symlink("busybox", user.join("bb/bin/sh")).unwrap();
        std::fs::copy(
            repo.join("tests/fixtures/synthetic-system.nix"),
            user.join("synthetic-system.nix"),
        )
        .unwrap();
        let fx = Fixture {
            dir,
            prefix: prefix.to_string(),
            created: Default::default(),
        };
        fx.declare(&[]);
        fx
    }

    /// This test's full instance name for `short`; the instance and its profile are removed
    /// when the fixture is dropped. INX_TEST_INSTANCE_PREFIX, when set, goes after `e2e-`: a
    /// bed whose LXC shares the cgroup2 tree with the host's Incus (scripts/incus7.sh: LXC 7
    /// puts `lxc.payload.NAME` at its root) must not use the names the host's tests use.
    pub fn name(&self, short: &str) -> String {
        let bed = std::env::var("INX_TEST_INSTANCE_PREFIX")
            .map(|p| format!("{p}-"))
            .unwrap_or_default();
        let name = format!("e2e-{bed}{}-{short}", self.prefix);
        cleanup(&name);
        self.created.borrow_mut().push(name.clone());
        name
    }

    pub fn user_dir(&self) -> PathBuf {
        self.dir.path().join("user")
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Rewrites the user flake with these `name = nix expression;` containers.
    pub fn declare(&self, containers: &[(&str, &str)]) {
        let body: String = containers
            .iter()
            .map(|(n, e)| format!("        {n} = {e};\n"))
            .collect();
        self.write_flake(&body);
    }

    /// The user flake with a raw body inside `inxContainers = { ... }`.
    pub fn write_flake(&self, body: &str) {
        self.write_flake_parts("", body, "");
    }

    /// The user flake with extra `let` bindings (beside `busybox`, `sys`, `sysWith` and
    /// `broken`), `inxContainers`' body, and extra outputs.
    pub fn write_flake_parts(&self, lets: &str, containers: &str, outputs: &str) {
        let text = USER_FLAKE
            .replace("@INX@", &self.dir.path().join("inx").display().to_string())
            .replace(
                "@EMPTY@",
                &self.dir.path().join("empty").display().to_string(),
            )
            .replace("@LETS@", lets)
            .replace("@CONTAINERS@", containers)
            .replace("@OUTPUTS@", outputs);
        std::fs::write(self.user_dir().join("flake.nix"), text).unwrap();
    }

    /// Runs the real inx with `--flake` set to the user flake.
    pub fn inx(&self, args: &[&str]) -> Run {
        self.inx_with(args, |_| {})
    }

    pub fn inx_with(&self, args: &[&str], tweak: impl Fn(&mut Command)) -> Run {
        // Another inx on this host (not a test's: they run one at a time) holds the host
        // lock: wait for it rather than fail, as a user would.
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let run = self.inx_no_wait_with(args, &tweak);
            if run.code != 9 || Instant::now() > deadline {
                return run;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Runs inx once, even when another inx holds the host lock (for the test of the lock).
    pub fn inx_no_wait(&self, args: &[&str]) -> Run {
        self.inx_no_wait_with(args, |_| {})
    }

    fn inx_no_wait_with(&self, args: &[&str], tweak: impl Fn(&mut Command)) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_inx"));
        cmd.arg("--flake")
            .arg(self.user_dir())
            .args(args)
            .stdin(Stdio::null());
        tweak(&mut cmd);
        Run::of(cmd.output().expect("run inx"), args)
    }

    /// Runs the real inx as `user` (a member of incus-admin): its own uid, gid and groups
    /// (`setpriv --init-groups`), its HOME, and a copy of the binary anyone may run (the
    /// checkout may sit in a folder only root can enter). Waits for the host lock as `inx` does.
    pub fn inx_as(&self, user: &str, args: &[&str]) -> Run {
        let bin = self.path().join("bin/inx");
        if !bin.exists() {
            std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
            std::fs::copy(env!("CARGO_BIN_EXE_inx"), &bin).unwrap();
        }
        let home = format!("/home/{user}");
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let mut cmd = Command::new("setpriv");
            cmd.args(["--reuid", user, "--regid", user, "--init-groups", "--"])
                .arg(&bin)
                .arg("--flake")
                .arg(self.user_dir())
                .args(args)
                .env("HOME", &home)
                .env("USER", user)
                .current_dir(&home)
                .stdin(Stdio::null());
            let run = Run::of(cmd.output().expect("run setpriv"), args);
            if run.code != 9 || Instant::now() > deadline {
                return run;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// `inx up` (with `args`) that must succeed.
    pub fn up(&self, args: &[&str]) -> Run {
        let mut all = vec!["up"];
        all.extend(args);
        self.inx(&all).ok()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for name in self.created.borrow().iter() {
            cleanup(name);
        }
    }
}

fn cleanup(name: &str) {
    let _ = Command::new("incus")
        .args(["delete", "--force", name])
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status();
    let _ = std::fs::remove_dir_all(Path::new(PROFILES).join(name));
    let _ = std::fs::remove_dir_all(Path::new(ROOTS).join(name));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    what: String,
}

impl Run {
    fn of(out: Output, args: &[&str]) -> Self {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            what: format!("inx {}", args.join(" ")),
        }
    }

    pub fn ok(self) -> Self {
        self.code(0)
    }

    /// Asserts the exit code, showing what inx said when it differs.
    pub fn code(self, expected: i32) -> Self {
        assert_eq!(
            self.code, expected,
            "`{}` exited {} (expected {expected})\nstdout:\n{}\nstderr:\n{}",
            self.what, self.code, self.stdout, self.stderr
        );
        self
    }

    pub fn stderr_has(self, needle: &str) -> Self {
        assert!(
            self.stderr.contains(needle),
            "`{}` stderr lacks {needle:?}:\n{}",
            self.what,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{}", self.what, self.stdout))
    }

    /// The commands inx reported running (`-v`).
    pub fn traced(&self) -> Vec<String> {
        self.stderr
            .lines()
            .filter_map(|l| l.strip_prefix("+ "))
            .map(String::from)
            .collect()
    }
}

/// The instance as `incus list` shows it, or `None`.
pub fn instance(name: &str) -> Option<serde_json::Value> {
    let out = Command::new("incus")
        .args(["list", "--format", "json"])
        .output()
        .expect("incus list");
    assert!(
        out.status.success(),
        "incus list failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.into_iter().find(|i| i["name"] == name)
}

pub fn status(name: &str) -> String {
    instance(name)
        .map(|i| i["status"].as_str().unwrap().to_string())
        .unwrap_or_else(|| "absent".into())
}

pub fn pid(name: &str) -> i64 {
    instance(name).expect("instance exists")["state"]["pid"]
        .as_i64()
        .unwrap()
}

pub fn config(name: &str, key: &str) -> Option<String> {
    instance(name).expect("instance exists")["config"][key]
        .as_str()
        .map(String::from)
}

/// Runs a program of the container's system (by absolute path: `incus exec` has no NixOS PATH).
pub fn sh(name: &str, script: &str) -> Output {
    Command::new("incus")
        .args([
            "exec",
            name,
            "--env",
            "PATH=/nix/var/nix/profiles/system/sw/bin",
            "--",
        ])
        .args(["/nix/var/nix/profiles/system/sw/bin/sh", "-c", script])
        .output()
        .expect("incus exec")
}

pub fn sh_out(name: &str, script: &str) -> String {
    let out = sh(name, script);
    assert!(
        out.status.success(),
        "in {name}: `{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Waits until the container's init has activated `system` (it links /run/current-system).
pub fn wait_active(name: &str, system: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = sh(name, "readlink /run/current-system");
        if String::from_utf8_lossy(&now.stdout).trim() == system {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} did not activate {system} within 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// (generation, system) of a container's host profile.
pub fn profile(name: &str) -> Option<(u32, String)> {
    let dir = Path::new(PROFILES).join(name);
    let gen_link = std::fs::read_link(dir.join("system")).ok()?;
    let generation = gen_link
        .to_str()?
        .strip_prefix("system-")?
        .strip_suffix("-link")?
        .parse()
        .ok()?;
    let system = std::fs::read_link(dir.join(&gen_link)).ok()?;
    Some((generation, system.display().to_string()))
}

/// The row of `name` in the JSON of `inx list` or `inx status`.
pub fn row<'a>(list: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    list["containers"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == name))
        .unwrap_or_else(|| panic!("no row for {name} in {list:#}"))
}

/// Runs `cmd` with `input` on its stdin, as a shell heredoc would; its output.
pub fn output_with_input(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `incus ARGS`, with the client config in `conf` when given (a test's own, so that `incus
/// project switch` there touches nothing else on the host).
pub fn incus_with(conf: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = Command::new("incus");
    if let Some(conf) = conf {
        cmd.env("INCUS_CONF", conf);
    }
    cmd.args(args).stdin(Stdio::null()).output().unwrap()
}

/// An Incus project for a test (made if missing, with the default project's profiles and
/// images), without the instance `leftover` that an earlier, failed run may have left.
pub fn test_project(project: &str, leftover: &str, conf: Option<&Path>) {
    incus_with(conf, &["--project", project, "delete", "--force", leftover]);
    if !incus_with(conf, &["project", "show", project])
        .status
        .success()
    {
        let made = incus_with(
            conf,
            &[
                "project",
                "create",
                project,
                "-c",
                "features.profiles=false",
                "-c",
                "features.images=false",
            ],
        );
        assert!(made.status.success(), "{made:?}");
    }
}

/// Writes an executable shell script (a wrapper a test puts first on PATH).
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `program` as PATH finds it.
pub fn which(program: &str) -> PathBuf {
    std::env::var("PATH")
        .unwrap()
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| panic!("{program} on PATH"))
}

/// A second `up` of these containers finds every one up to date (a run converged).
pub fn up_again_changes_nothing(fx: &Fixture, names: &[String]) {
    let again = fx.up(&[]);
    assert_eq!(
        again.stderr.matches("up to date").count(),
        names.len(),
        "{}",
        again.stderr
    );
}

/// Where throw-away runs keep their profiles and locks.
pub const RUNS: &str = "/nix/var/nix/profiles/inx/.runs";

/// Instances and `.runs` entries whose names start with `prefix`.
pub fn leftovers(prefix: &str) -> Vec<String> {
    let out = Command::new("incus")
        .args(["list", "--format", "csv", "--columns", "n"])
        .output()
        .unwrap();
    let mut found: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|n| n.starts_with(prefix))
        .map(|n| format!("instance {n}"))
        .collect();
    for entry in std::fs::read_dir(RUNS).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(prefix) {
            found.push(format!("{RUNS}/{name}"));
        }
    }
    found
}
