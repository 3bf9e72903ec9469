//! The bench bed: the end-to-end fixture (a throw-away user flake with synthetic systems) with
//! N containers named `bench-NNN`, the real inx binary, and the raw commands a user would type
//! instead. For the comparison with images it also has `bench-peer-1` and `-2`, launched from
//! an image aliased `bench-peer`, and big store paths (payloads of realistic closure sizes).
//! Every instance, image and big store path it makes is deleted again, also when a scenario
//! panics.

use super::harness::{output_with_input, Fixture, Run};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const PREFIX: &str = "bench-";

/// The bench's own root for host profiles (inx's `INX_PROFILES_DIR`): still under
/// /nix/var/nix/profiles, so a GC root, but with its own host lock, so the bench and anyone
/// else's inx on the same host do not turn each other away (exit 9) mid-run.
pub const PROFILES: &str = "/nix/var/nix/profiles/inx-bench";

/// The instances launched from an image (the stock way), and that image's alias.
pub const PEERS: [&str; 2] = ["bench-peer-1", "bench-peer-2"];
pub const PEER_ALIAS: &str = "bench-peer";

pub struct Bed {
    pub fx: Fixture,
    /// Every name this bed may have created, for the final clean-up.
    used: RefCell<BTreeSet<String>>,
    /// Big store paths this bed built (see `build_big`), deleted again by `release_big`.
    big: RefCell<Vec<String>>,
}

/// One step of an inx plan, as `inx --dry-run --json up` prints it.
#[derive(Debug, Clone)]
pub struct Step {
    pub what: String,
    pub container: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone)]
pub enum Action {
    Run {
        program: String,
        args: Vec<String>,
        stdin: Option<String>,
    },
    CreateDir(PathBuf),
}

pub fn names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("{PREFIX}{i:03}")).collect()
}

impl Bed {
    /// Refuses to start when an instance with one of the bench's names exists: the bench
    /// deletes what it creates, and must never take someone else's instance for its own.
    pub fn new(max: usize) -> Self {
        let mut mine: BTreeSet<String> = names(max).into_iter().collect();
        mine.extend(PEERS.iter().map(|p| p.to_string()));
        let clash: Vec<String> = existing()
            .into_iter()
            .filter(|n| mine.contains(n))
            .collect();
        assert!(
            clash.is_empty(),
            "instances named like the bench's already exist: {}. Remove them (for example \
             `incus delete --force {}`) and run the bench again.",
            clash.join(", "),
            clash.join(" ")
        );
        assert!(
            !alias_exists(PEER_ALIAS),
            "an image alias named like the bench's already exists: {PEER_ALIAS}. Remove it (for \
             example `incus image delete {PEER_ALIAS}`) and run the bench again."
        );
        let fx = Fixture::new("bench");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        for file in ["synthetic-image.nix", "synthetic-payload.nix"] {
            std::fs::copy(
                repo.join("tests/fixtures").join(file),
                fx.user_dir().join(file),
            )
            .unwrap();
        }
        Bed {
            fx,
            used: RefCell::default(),
            big: RefCell::default(),
        }
    }

    pub fn flake(&self) -> PathBuf {
        self.fx.user_dir()
    }

    /// Declares these containers, each with its own system, `version` telling generations apart.
    pub fn declare(&self, names: &[String], version: &str) {
        self.used.borrow_mut().extend(names.iter().cloned());
        let exprs: Vec<(String, String)> = names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    format!("inx.lib.mkContainer {{ toplevel = sys \"{version}-{n}\"; }}"),
                )
            })
            .collect();
        let pairs: Vec<(&str, &str)> = exprs
            .iter()
            .map(|(n, e)| (n.as_str(), e.as_str()))
            .collect();
        self.fx.declare(&pairs);
    }

    /// Declares containers by raw `(name, expression)` pairs, with extra `let` bindings and
    /// outputs (see `Fixture::write_flake_parts`).
    pub fn declare_parts(&self, lets: &str, containers: &[(String, String)], outputs: &str) {
        self.used
            .borrow_mut()
            .extend(containers.iter().map(|(n, _)| n.clone()));
        let body: String = containers
            .iter()
            .map(|(n, e)| format!("        {n} = {e};\n"))
            .collect();
        self.fx.write_flake_parts(lets, &body, outputs);
    }

    /// Builds these installables (untimed unless the caller times it) with result links that
    /// `release_big` removes. The caller notes with `note_big` which outputs are the bench's own
    /// to delete (not, say, a metadata tarball that other tests build too).
    pub fn build_big(&self, installables: &[String]) -> Vec<String> {
        let dir = self.fx.path().join("big");
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join(format!(
            "result-{}",
            std::fs::read_dir(&dir).unwrap().count()
        ));
        let out = checked(
            Command::new("nix")
                .args(NIX_FEATURES)
                .args(["build", "--json", "--out-link"])
                .arg(&link)
                .args(installables),
        );
        build_outputs(&out.stdout)
    }

    /// Notes store paths that only the bench makes (held by `build_big` links) for
    /// `release_big` to delete.
    pub fn note_big(&self, paths: &[String]) {
        let mut big = self.big.borrow_mut();
        for p in paths {
            if !big.contains(p) {
                big.push(p.clone());
            }
        }
    }

    /// Removes the result links of `build_big` and deletes the big paths from the store (those
    /// still alive, say held by someone else's root, stay and are named on stderr).
    pub fn release_big(&self) {
        let _ = std::fs::remove_dir_all(self.fx.path().join("big"));
        let paths: Vec<String> = self.big.borrow_mut().drain(..).collect();
        if paths.is_empty() {
            return;
        }
        let out = Command::new("nix-store")
            .arg("--delete")
            .args(&paths)
            .stdin(Stdio::null())
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!(
                "bench: could not delete {} from the store: {}",
                paths.join(" "),
                out.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())
                    .unwrap_or_else(|e| e.to_string())
            );
        }
    }

    /// Deletes the image aliased `PEER_ALIAS`, if there is one; untimed.
    pub fn drop_image(&self) {
        if alias_exists(PEER_ALIAS) {
            checked(Command::new("incus").args(["image", "delete", PEER_ALIAS]));
        }
    }

    /// Notes instances made outside inx's plan (the image side) for the final clean-up.
    pub fn note_instances(&self, names: &[&str]) {
        self.used
            .borrow_mut()
            .extend(names.iter().map(|n| n.to_string()));
    }

    /// Builds the declared systems, untimed, so that neither side builds while timed. Result
    /// links in the fixture keep them from a GC that someone else runs meanwhile.
    pub fn build(&self, names: &[String]) -> Vec<String> {
        let roots = self.fx.path().join("roots");
        std::fs::create_dir_all(&roots).unwrap();
        let link = roots.join(format!(
            "build-{}",
            std::fs::read_dir(&roots).unwrap().count()
        ));
        let out = checked(
            Command::new("nix")
                .args(NIX_FEATURES)
                .args(["build", "--json", "--out-link"])
                .arg(&link)
                .args(self.toplevels(names)),
        );
        build_outputs(&out.stdout)
    }

    /// `FLAKE#inxContainers.NAME.toplevel` for each name: what a user builds by hand.
    pub fn toplevels(&self, names: &[String]) -> Vec<String> {
        let flake = self.flake().display().to_string();
        names
            .iter()
            .map(|n| format!("{flake}#inxContainers.{n}.toplevel"))
            .collect()
    }

    /// The real inx on the bench's flake.
    pub fn inx(&self, args: &[&str]) -> Run {
        self.fx.inx_with(args, |c| {
            c.env("INX_PROFILES_DIR", PROFILES);
        })
    }

    /// What a user runs to see that nothing changed: `nix build` of the systems (it
    /// evaluates; they are built) and one `incus list`.
    pub fn evaluate_and_list(&self, names: &[String]) {
        checked(
            Command::new("nix")
                .args(NIX_FEATURES)
                .args(["build", "--no-link", "--json"])
                .args(self.toplevels(names)),
        );
        checked(Command::new("incus").args(["list", "--format", "json"]));
    }

    /// The real inx on the bench's flake as a command to spawn (to watch it as it runs).
    pub fn inx_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_inx"));
        cmd.arg("--flake")
            .arg(self.flake())
            .args(args)
            .env("INX_PROFILES_DIR", PROFILES)
            .stdin(Stdio::null());
        cmd
    }

    /// The real inx with another PATH (for the counting shims).
    pub fn inx_env(&self, args: &[&str], path: &str) -> Run {
        self.fx.inx_with(args, |c| {
            c.env("INX_PROFILES_DIR", PROFILES).env("PATH", path);
        })
    }

    /// What `inx up NAMES` would do, without doing it.
    pub fn plan(&self, names: &[String]) -> Vec<Step> {
        let mut args = vec!["--dry-run", "--json", "up"];
        args.extend(names.iter().map(String::as_str));
        let plan = self.inx(&args).ok().json();
        plan["steps"]
            .as_array()
            .expect("a plan has steps")
            .iter()
            .map(parse_step)
            .collect()
    }

    /// Deletes these instances (one incus call) and their host profiles; untimed.
    pub fn clear(&self, names: &[String]) {
        clear(names);
    }

    /// Counting stand-ins: `nix`, `nix-env`, `nix-store` and `incus` that log each call and
    /// then run the real program. Returns the PATH to give inx and the log file.
    pub fn shims(&self) -> (String, PathBuf) {
        let dir = self.fx.path().join("shims");
        std::fs::create_dir_all(&dir).unwrap();
        let log = self.fx.path().join("calls.log");
        for tool in ["nix", "nix-env", "nix-store", "incus"] {
            let real = which::which(tool).expect("tool on PATH");
            let script = format!(
                "#!/bin/sh\necho \"{tool} $*\" >>'{}'\nexec '{}' \"$@\"\n",
                log.display(),
                real.display()
            );
            let shim = dir.join(tool);
            std::fs::write(&shim, script).unwrap();
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        (path, log)
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        let used: Vec<String> = self.used.borrow().iter().cloned().collect();
        self.clear(&used);
        if alias_exists(PEER_ALIAS) {
            let _ = Command::new("incus")
                .args(["image", "delete", PEER_ALIAS])
                .stdin(Stdio::null())
                .output();
        }
        self.release_big();
        let _ = std::fs::remove_file(Path::new(PROFILES).join(".lock"));
        let _ = std::fs::remove_dir(PROFILES);
    }
}

/// Deletes these instances (one incus call) and their host profiles; untimed.
pub fn clear(names: &[String]) {
    let wanted: BTreeSet<&String> = names.iter().collect();
    let present: Vec<String> = existing()
        .into_iter()
        .filter(|n| wanted.contains(n))
        .collect();
    if !present.is_empty() {
        checked(
            Command::new("incus")
                .args(["delete", "--force"])
                .args(&present),
        );
    }
    for n in names {
        let _ = std::fs::remove_dir_all(Path::new(PROFILES).join(n));
    }
}

pub const NIX_FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// The names of all instances of the current project.
pub fn existing() -> Vec<String> {
    let out = checked(Command::new("incus").args(["list", "--format", "csv", "--columns", "n"]));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Whether the current project has an image alias of this name.
pub fn alias_exists(alias: &str) -> bool {
    Command::new("incus")
        .args(["query", &format!("/1.0/images/aliases/{alias}")])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The store paths `nix build --json` printed, in order.
pub fn build_outputs(stdout: &[u8]) -> Vec<String> {
    let built: Value = serde_json::from_slice(stdout).expect("nix build --json prints JSON");
    built
        .as_array()
        .expect("a list of builds")
        .iter()
        .map(|b| {
            b["outputs"]["out"]
                .as_str()
                .expect("an out path")
                .to_string()
        })
        .collect()
}

fn parse_step(s: &Value) -> Step {
    let action = if let Some(run) = s.get("run") {
        Action::Run {
            program: run["program"].as_str().unwrap().to_string(),
            args: run["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap().to_string())
                .collect(),
            stdin: run.get("stdin").and_then(Value::as_str).map(String::from),
        }
    } else if let Some(dir) = s.get("create_dir") {
        Action::CreateDir(dir.as_str().unwrap().into())
    } else {
        panic!("a step the bench does not expect: {s}")
    };
    Step {
        what: s["what"].as_str().unwrap().to_string(),
        container: s["container"].as_str().map(String::from),
        action,
    }
}

/// Runs one plan step the way a shell would: the same program, arguments and input.
pub fn run_step(step: &Step) {
    match &step.action {
        Action::CreateDir(dir) => std::fs::create_dir_all(dir).unwrap(),
        Action::Run {
            program,
            args,
            stdin,
        } => {
            let mut cmd = Command::new(program);
            cmd.args(args);
            match stdin {
                Some(input) => {
                    let out = output_with_input(&mut cmd, input);
                    assert_success(&format!("{program} {}", args.join(" ")), &out);
                }
                None => {
                    checked(cmd.stdin(Stdio::null()));
                }
            }
        }
    }
}

/// Runs a command that must succeed and returns its output.
pub fn checked(cmd: &mut Command) -> Output {
    let what = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert_success(&what, &out);
    out
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn timed(f: impl FnOnce()) -> Duration {
    let start = Instant::now();
    f();
    start.elapsed()
}
