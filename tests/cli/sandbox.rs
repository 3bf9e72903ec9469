//! The sandbox every CLI test runs inx in, and what the tests share.
//!
//! `Sandbox` makes a temporary directory whose PATH holds only the stand-ins (one shell script,
//! tests/cli/stand-in.sh, symlinked under each tool's name) and the few utilities that script
//! needs. A test tells a stand-in how to answer (`respond` and the `*_answers` helpers), runs
//! the real binary (`run`, `command`, `std_command`), and reads back the calls made
//! (`calls`, `call_verbs`, `stdin_of`) and snapshot settings that hide the sandbox's path
//! (`settings`). Beside it: the answers several tests give (`one_container`, `instance`,
//! `unmanaged_web`, `image_outputs`, `list_sandbox`, `profile_web`), readers of a run's output
//! (`stdout_of`, `stderr_of`, `document` for `--json`), and the checks they share
//! (`assert_nothing_changed`, `up_order`, `sorted`, `host_has_nix_daemon`).

use assert_cmd::Command;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const STAND_IN: &str = include_str!("stand-in.sh");
const TOOLS: [&str; 5] = [
    "nix",
    "nix-store",
    "nix-env",
    "incus",
    "nix-collect-garbage",
];
/// What the stand-in script runs besides shell builtins.
const UTILITIES: [&str; 3] = ["sh", "cat", "rm"];

pub const HASH: &str = "0123456789abcdfghijklmnpqrsvwxyz";
pub const DRV_HASH: &str = "zyxwvsrqpnmlkjihgfdcba9876543210";
pub const SOCKET_DIR: &str = "/nix/var/nix/daemon-socket";

pub struct Sandbox {
    _tmp: tempfile::TempDir,
    /// The sandbox directory, canonical (so it matches what inx prints).
    pub root: PathBuf,
    /// The temporary directory as created, in case it differs from `root`.
    raw: PathBuf,
}

impl Sandbox {
    /// All four stand-ins on PATH.
    pub fn new() -> Self {
        Self::with_tools(&TOOLS)
    }

    /// Only the named stand-ins on PATH.
    pub fn with_tools(tools: &[&str]) -> Self {
        let tmp = tempfile::tempdir().expect("temp dir");
        let raw = tmp.path().to_path_buf();
        let root = raw.canonicalize().expect("canonical temp dir");
        for d in [
            "bin",
            "sys",
            "responses",
            "stdin",
            "home",
            "profiles",
            "work",
            "state/gcroots/auto",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        let sh = find_program("sh");
        let body = STAND_IN.replacen("#!/bin/sh", &format!("#!{}", sh.display()), 1);
        let script = root.join("stand-in.sh");
        fs::write(
            &script,
            body.replace("@SANDBOX@", root.to_str().expect("utf-8 temp dir")),
        )
        .unwrap();
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
        for tool in tools {
            symlink(&script, root.join("bin").join(tool)).unwrap();
        }
        for utility in UTILITIES {
            symlink(find_program(utility), root.join("sys").join(utility)).unwrap();
        }
        let sandbox = Sandbox {
            _tmp: tmp,
            root,
            raw,
        };
        // The client's current project, as a fresh Incus client has it.
        sandbox.respond("incus", "project", "default\n", "", 0);
        sandbox
    }

    pub fn profiles(&self) -> PathBuf {
        self.root.join("profiles")
    }

    /// How the stand-in for `prog` answers `verb`.
    pub fn respond(&self, prog: &str, verb: &str, out: &str, err: &str, code: i32) {
        let base = self.root.join("responses").join(format!("{prog}-{verb}"));
        fs::write(base.with_extension("out"), out).unwrap();
        fs::write(base.with_extension("err"), err).unwrap();
        fs::write(base.with_extension("code"), format!("{code}\n")).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::from_std(self.std_command(args));
        // An empty, closed stdin: not a terminal, and stand-ins reading it see EOF.
        cmd.write_stdin("").timeout(Duration::from_secs(60));
        cmd
    }

    /// The binary with the sandbox's environment, its streams left to the caller.
    pub fn std_command(&self, args: &[&str]) -> std::process::Command {
        let path = std::env::join_paths([self.root.join("bin"), self.root.join("sys")]).unwrap();
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("inx"));
        cmd.args(args)
            .current_dir(self.root.join("work"))
            .env("PATH", path)
            .env("HOME", self.root.join("home"))
            .env("INX_PROFILES_DIR", self.profiles())
            // Nix's own variable: GC roots go under the sandbox, never the host's.
            .env("NIX_STATE_DIR", self.root.join("state"))
            // Help is wrapped to the terminal, or to COLUMNS when there is none.
            .env("COLUMNS", "100")
            .env_remove("CI");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.command(args).assert()
    }

    /// One line per stand-in call, in order: `prog [arg] [arg] ...`.
    pub fn calls(&self) -> Vec<String> {
        match fs::read_to_string(self.root.join("calls.log")) {
            Ok(log) => log.lines().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Each call as `prog verb`, the verb found as the stand-in finds it (`incus list`,
    /// `nix-store realise`, `nix-env set`).
    pub fn call_verbs(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|line| {
                let mut words = line.split(" [");
                let prog = words.next().unwrap();
                let skip = [
                    "--project]",
                    "--extra-experimental-features]",
                    "--add-root]",
                    "--profile]",
                ];
                let mut verb = "";
                while let Some(w) = words.next() {
                    if skip.contains(&w) {
                        words.next();
                        continue;
                    }
                    verb = w.trim_end_matches(']').trim_start_matches("--");
                    break;
                }
                format!("{prog} {verb}")
            })
            .collect()
    }

    /// What a call of `prog verb` got on stdin.
    pub fn stdin_of(&self, prog: &str, verb: &str) -> Option<String> {
        fs::read_to_string(self.root.join("stdin").join(format!("{prog}-{verb}"))).ok()
    }

    /// Snapshot settings that replace the sandbox path with `[TMP]`.
    pub fn settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        for p in [&self.root, &self.raw] {
            settings.add_filter(&regex_escape(p.to_str().unwrap()), "[TMP]");
        }
        // Each inx roots its builds in a folder named by its process id.
        settings.add_filter(r"/\.builds/\d+/", "/.builds/[PID]/");
        settings
    }

    // -- answers that several tests share --

    pub fn eval_answers(&self, manifests: Value) {
        self.respond("nix", "eval", &manifests.to_string(), "", 0);
    }

    pub fn list_answers(&self, instances: Value) {
        self.respond("incus", "list", &instances.to_string(), "", 0);
    }

    pub fn server_answers_idmap(&self) {
        self.respond(
            "incus",
            "query",
            r#"{"environment":{"kernel_features":{"idmapped_mounts":"true"}}}"#,
            "",
            0,
        );
    }

    /// One declared container `web`, not built, no instance, an idmapping server.
    pub fn fresh_web(&self) {
        self.eval_answers(one_container(1));
        self.list_answers(json!([]));
        self.server_answers_idmap();
    }
}

fn find_program(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/bin"), PathBuf::from("/usr/bin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH"))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

pub fn toplevel() -> String {
    format!("/nix/store/{HASH}-nixos-system-web")
}

pub fn one_container(schema: u64) -> Value {
    json!({
        "missing": [],
        "containers": {
            "web": {
                "schemaVersion": schema,
                "toplevel": toplevel(),
                "drvPath": format!("/nix/store/{DRV_HASH}-nixos-system-web.drv"),
                "incus": {}
            }
        }
    })
}

/// An `incus list` entry; managed ones carry inx's schema key (and the deployed system).
pub fn instance(name: &str, status: &str, managed: bool) -> Value {
    let config = if managed {
        json!({ "user.inx.schema": "1", "user.inx.system": toplevel() })
    } else {
        json!({})
    };
    // No `state`: with a PID inx would read /proc/<pid>/root/run/current-system on the host
    // running the tests, which is not ours to depend on.
    json!({
        "name": name,
        "status": status,
        "type": "container",
        "config": config,
        "devices": {},
        "profiles": ["default"]
    })
}

pub fn unmanaged_web() -> Value {
    json!([{
        "name": "web",
        "status": "Running",
        "type": "container",
        "config": {},
        "devices": {},
        "profiles": ["default"],
        "state": { "pid": 1 }
    }])
}

/// inx refuses to create or start a container when the host's Nix daemon socket directory is
/// missing (exit 6, before any build). The machine these tests run on normally has a
/// nix-daemon; where it does not, the tests that get that far check the refusal instead and
/// record that their happy path was skipped (in CI: fail), so it shows in the summary.
pub fn host_has_nix_daemon(test: &str) -> bool {
    let has = Path::new(SOCKET_DIR).is_dir();
    if !has {
        crate::skips::record(
            "CLI",
            test,
            &format!("cli: {test} (its happy path)"),
            &format!("this host has no {SOCKET_DIR}, so inx refuses before the steps under test"),
        );
    }
    has
}

pub fn stderr_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

pub fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stdout).into_owned()
}

const MUTATING: [&str; 10] = [
    "nix-store realise",
    "nix-env set",
    "incus create",
    "incus start",
    "incus stop",
    "incus restart",
    "incus exec",
    "incus config",
    "incus delete",
    "incus profile",
];

pub fn assert_nothing_changed(sb: &Sandbox) {
    for call in sb.call_verbs() {
        assert!(
            !MUTATING.contains(&call.as_str()),
            "unexpected mutating call {call}; all calls: {:#?}",
            sb.calls()
        );
    }
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// What `up` runs before it plans, in `up_order`: the project read, then the evaluation with
/// the listing and the server query beside it.
pub const UP_GATHERING: [&str; 4] = ["incus project", "incus list", "incus query", "nix eval"];

/// `up`'s calls with its gathering in a fixed order: the project (read first), then the
/// evaluation, the listing and the server query, which run at the same time (sorted here).
pub fn up_order(mut v: Vec<String>) -> Vec<String> {
    let end = v.len().min(4);
    if end > 1 {
        v[1..end].sort();
    }
    v
}

/// Gives `web` a host profile (generation 1) that points at `toplevel()`.
pub fn profile_web(sb: &Sandbox) {
    let dir = sb.profiles().join("web");
    fs::create_dir_all(&dir).unwrap();
    symlink(toplevel(), dir.join("system-1-link")).unwrap();
    symlink("system-1-link", dir.join("system")).unwrap();
}

pub fn list_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    profile_web(&sb);
    sb.respond("nix", "eval", r#"{"web":null,"db":null}"#, "", 0);
    let mut other = instance("other", "Running", false);
    other["state"] = json!({ "pid": 1 });
    sb.list_answers(json!([
        instance("web", "Running", true),
        instance("old", "Stopped", true),
        other
    ]));
    sb
}

/// inx's roots directory in the sandbox.
pub fn roots(sb: &Sandbox) -> PathBuf {
    sb.root.join("state/gcroots/inx")
}

/// Image files in the sandbox, as `nix eval` of the image outputs would name them (already
/// built, so no realise): (metadata, rootfs, the image outputs' JSON).
pub fn image_outputs(sb: &Sandbox) -> (PathBuf, PathBuf, Value) {
    let meta = sb.root.join("work/meta.tar.xz");
    let root = sb.root.join("work/root.squashfs");
    fs::write(&meta, "meta").unwrap();
    fs::write(&root, "root").unwrap();
    let out = json!({
        "declared": true,
        "images": {
            "properties": { "os": "nixos", "release": "25.11", "variant": "default",
                            "architecture": "x86_64", "description": "NixOS" },
            "metadata": { "drv": null, "path": meta.to_str().unwrap() },
            "root": { "drv": null, "path": root.to_str().unwrap() }
        }
    });
    (meta, root, out)
}

/// Everything a run printed on stdout, as one JSON document; its schema checked.
pub fn document(assert: &assert_cmd::assert::Assert) -> Value {
    let stdout = stdout_of(assert);
    let doc: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    let first = doc.as_object().and_then(|o| o.keys().next().cloned());
    assert_eq!(first.as_deref(), Some("schema"), "{stdout}");
    assert_eq!(doc["schema"], 1, "{stdout}");
    doc
}
