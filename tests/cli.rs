//! The inx binary against recording stand-ins for `nix`, `nix-store`, `nix-env` and `incus`.
//!
//! Every test runs the real binary in a sandbox: PATH holds only the stand-ins (one shell
//! script, tests/cli/stand-in.sh, symlinked under each name) and a directory with just the
//! utilities that script needs, so no real nix or incus can be reached. The stand-ins record
//! each call in calls.log and answer from response files the test writes; each test checks the
//! exit code and what inx did, and did not, run.

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

const STAND_IN: &str = include_str!("cli/stand-in.sh");
const TOOLS: [&str; 5] = [
    "nix",
    "nix-store",
    "nix-env",
    "incus",
    "nix-collect-garbage",
];
/// What the stand-in script runs besides shell builtins.
const UTILITIES: [&str; 3] = ["sh", "cat", "rm"];

const HASH: &str = "0123456789abcdfghijklmnpqrsvwxyz";
const DRV_HASH: &str = "zyxwvsrqpnmlkjihgfdcba9876543210";
const SOCKET_DIR: &str = "/nix/var/nix/daemon-socket";

struct Sandbox {
    _tmp: tempfile::TempDir,
    /// The sandbox directory, canonical (so it matches what inx prints).
    root: PathBuf,
    /// The temporary directory as created, in case it differs from `root`.
    raw: PathBuf,
}

impl Sandbox {
    /// All four stand-ins on PATH.
    fn new() -> Self {
        Self::with_tools(&TOOLS)
    }

    /// Only the named stand-ins on PATH.
    fn with_tools(tools: &[&str]) -> Self {
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

    fn profiles(&self) -> PathBuf {
        self.root.join("profiles")
    }

    /// How the stand-in for `prog` answers `verb`.
    fn respond(&self, prog: &str, verb: &str, out: &str, err: &str, code: i32) {
        let base = self.root.join("responses").join(format!("{prog}-{verb}"));
        fs::write(base.with_extension("out"), out).unwrap();
        fs::write(base.with_extension("err"), err).unwrap();
        fs::write(base.with_extension("code"), format!("{code}\n")).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::from_std(self.std_command(args));
        // An empty, closed stdin: not a terminal, and stand-ins reading it see EOF.
        cmd.write_stdin("").timeout(Duration::from_secs(60));
        cmd
    }

    /// The binary with the sandbox's environment, its streams left to the caller.
    fn std_command(&self, args: &[&str]) -> std::process::Command {
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

    fn run(&self, args: &[&str]) -> assert_cmd::assert::Assert {
        self.command(args).assert()
    }

    /// One line per stand-in call, in order: `prog [arg] [arg] ...`.
    fn calls(&self) -> Vec<String> {
        match fs::read_to_string(self.root.join("calls.log")) {
            Ok(log) => log.lines().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }

    /// Each call as `prog verb`, the verb found as the stand-in finds it (`incus list`,
    /// `nix-store realise`, `nix-env set`).
    fn call_verbs(&self) -> Vec<String> {
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
    fn stdin_of(&self, prog: &str, verb: &str) -> Option<String> {
        fs::read_to_string(self.root.join("stdin").join(format!("{prog}-{verb}"))).ok()
    }

    /// Snapshot settings that replace the sandbox path with `[TMP]`.
    fn settings(&self) -> insta::Settings {
        let mut settings = insta::Settings::clone_current();
        for p in [&self.root, &self.raw] {
            settings.add_filter(&regex_escape(p.to_str().unwrap()), "[TMP]");
        }
        // Each inx roots its builds in a folder named by its process id.
        settings.add_filter(r"/\.builds/\d+/", "/.builds/[PID]/");
        settings
    }

    // -- answers that several tests share --

    fn eval_answers(&self, manifests: Value) {
        self.respond("nix", "eval", &manifests.to_string(), "", 0);
    }

    fn list_answers(&self, instances: Value) {
        self.respond("incus", "list", &instances.to_string(), "", 0);
    }

    fn server_answers_idmap(&self) {
        self.respond(
            "incus",
            "query",
            r#"{"environment":{"kernel_features":{"idmapped_mounts":"true"}}}"#,
            "",
            0,
        );
    }

    /// One declared container `web`, not built, no instance, an idmapping server.
    fn fresh_web(&self) {
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

fn toplevel() -> String {
    format!("/nix/store/{HASH}-nixos-system-web")
}

fn one_container(schema: u64) -> Value {
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
fn instance(name: &str, status: &str, managed: bool) -> Value {
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

fn unmanaged_web() -> Value {
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
/// nix-daemon; where it does not, the tests that get that far expect the refusal instead.
fn host_has_nix_daemon() -> bool {
    Path::new(SOCKET_DIR).is_dir()
}

fn stderr_of(assert: &assert_cmd::assert::Assert) -> String {
    String::from_utf8_lossy(&assert.get_output().stderr).into_owned()
}

fn stdout_of(assert: &assert_cmd::assert::Assert) -> String {
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

fn assert_nothing_changed(sb: &Sandbox) {
    for call in sb.call_verbs() {
        assert!(
            !MUTATING.contains(&call.as_str()),
            "unexpected mutating call {call}; all calls: {:#?}",
            sb.calls()
        );
    }
}

// 1
#[test]
fn up_builds_profiles_creates_and_starts_a_new_container() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let assert = sb.run(&["up"]);
    if !host_has_nix_daemon() {
        // No /nix/var/nix/daemon-socket: inx refuses before building anything.
        assert
            .code(6)
            .stderr(predicate::str::contains("daemon-socket does not exist"));
        assert_eq!(
            up_order(sb.call_verbs()),
            ["incus project", "incus list", "incus query", "nix eval"]
        );
        return;
    }
    let assert = assert.code(0);
    assert_eq!(
        up_order(sb.call_verbs()),
        [
            "incus project",
            "incus list",
            "incus query",
            "nix eval",
            "nix-store realise",
            "nix-env set",
            "incus create",
            "incus start"
        ],
        "stderr: {}",
        stderr_of(&assert)
    );
    sb.settings().bind(|| {
        insta::assert_snapshot!("up_calls", up_order(sb.calls()).join("\n"));
    });
    assert!(sb.profiles().join("web").is_dir(), "profile dir created");
    let builds: Vec<_> = fs::read_dir(sb.profiles().join(".builds"))
        .expect("up made its build roots folder")
        .collect();
    assert!(
        builds.is_empty(),
        "the build roots go when up ends: {builds:?}"
    );

    let input = sb
        .stdin_of("incus", "create")
        .expect("create got the config on stdin");
    let spec: Value = serde_json::from_str(&input).expect("create input is JSON");
    assert_eq!(
        spec["config"]["raw.lxc"],
        "lxc.init.cmd = /nix/var/nix/profiles/system/init"
    );
    assert_eq!(spec["config"]["user.inx.schema"], "1");
    assert_eq!(spec["config"]["user.inx.system"], toplevel());
    let store = &spec["devices"]["inx-store"];
    assert_eq!(store["source"], "/nix/store");
    assert_eq!(store["readonly"], "true");
    assert_eq!(store["shift"], "true");
    assert_eq!(
        spec["devices"]["inx-profiles"]["source"],
        sb.profiles().join("web").to_str().unwrap()
    );
    assert_eq!(
        spec["devices"]["inx-profiles"]["path"],
        "/nix/var/nix/profiles"
    );
    assert_eq!(spec["devices"]["inx-daemon"]["source"], SOCKET_DIR);
    sb.settings().bind(|| {
        insta::assert_snapshot!("up_create_input", input);
    });
}

// 2
#[test]
fn dry_run_up_prints_the_plan_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let assert = sb.run(&["--dry-run", "up"]).code(0);
    let stdout = stdout_of(&assert);
    sb.settings().bind(|| {
        insta::assert_snapshot!("dry_run_up_plan", stdout);
    });
    assert_eq!(
        up_order(sb.call_verbs()),
        ["incus project", "incus list", "incus query", "nix eval"]
    );
    assert_nothing_changed(&sb);
    assert!(
        !sb.profiles().join("web").exists(),
        "a dry run creates no profile directory"
    );
}

#[test]
fn dry_run_up_with_json_prints_the_plan_steps_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let assert = sb.run(&["--dry-run", "--json", "up"]).code(0);
    let plan: Value = serde_json::from_slice(&assert.get_output().stdout).expect("JSON plan");
    let whats: Vec<&str> = plan["steps"]
        .as_array()
        .expect("a steps array")
        .iter()
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["build", "profile", "profile", "create", "start"]);
    assert_eq!(
        up_order(sb.call_verbs()),
        ["incus project", "incus list", "incus query", "nix eval"]
    );
}

#[test]
fn up_makes_the_profile_directory_only_where_it_is_missing() {
    let sb = Sandbox::new();
    sb.eval_answers(one_container(1));
    sb.list_answers(json!([instance("web", "Stopped", true)]));
    sb.server_answers_idmap();
    let plan = |sb: &Sandbox| -> Vec<Value> {
        let assert = sb.run(&["--dry-run", "--json", "up"]).code(0);
        let plan: Value = serde_json::from_slice(&assert.get_output().stdout).expect("JSON plan");
        plan["steps"].as_array().expect("a steps array").clone()
    };
    let made = |steps: &[Value]| {
        steps
            .iter()
            .filter(|s| s.get("create_dir").is_some())
            .count()
    };
    // The profile directory holds an older system: the profile is set, no directory made.
    let dir = sb.profiles().join("web");
    fs::create_dir_all(&dir).unwrap();
    symlink(
        format!("/nix/store/{DRV_HASH}-nixos-system-web"),
        dir.join("system-1-link"),
    )
    .unwrap();
    symlink("system-1-link", dir.join("system")).unwrap();
    let steps = plan(&sb);
    assert_eq!(made(&steps), 0, "{steps:#?}");
    assert!(steps.iter().any(|s| s["what"] == "profile"), "{steps:#?}");
    // Someone removed the directory: it is made again.
    fs::remove_dir_all(&dir).unwrap();
    let steps = plan(&sb);
    assert_eq!(made(&steps), 1, "{steps:#?}");
    assert_nothing_changed(&sb);
}

#[test]
fn a_server_that_cannot_idmap_mounts_gets_a_warning_and_unshifted_binds() {
    // A server that says no, and one too old to say.
    for answer in [
        r#"{"environment":{"kernel_features":{"idmapped_mounts":"false"}}}"#,
        r#"{"environment":{}}"#,
    ] {
        let sb = Sandbox::new();
        sb.eval_answers(one_container(1));
        sb.list_answers(json!([]));
        sb.respond("incus", "query", answer, "", 0);
        let no_shift = |input: &str| {
            let spec: Value = serde_json::from_str(input).expect("create input is JSON");
            for device in ["inx-store", "inx-profiles", "inx-daemon"] {
                let d = &spec["devices"][device];
                assert_eq!(d["type"], "disk", "{answer}: {device}: {spec}");
                assert!(d.get("shift").is_none(), "{answer}: {device}: {spec}");
            }
        };
        let warned = |assert: &assert_cmd::assert::Assert| {
            let stderr = stderr_of(assert);
            assert!(
                stderr.contains("warning: this Incus server cannot idmap mounts"),
                "{answer}: {stderr}"
            );
        };

        let assert = sb.run(&["--dry-run", "--json", "up"]).code(0);
        warned(&assert);
        let plan: Value = serde_json::from_slice(&assert.get_output().stdout).expect("JSON plan");
        let create = plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["what"] == "create")
            .expect("a create step");
        no_shift(create["run"]["stdin"].as_str().expect("create input"));
        assert_nothing_changed(&sb);

        if !host_has_nix_daemon() {
            // See up_builds_profiles_creates_and_starts_a_new_container.
            continue;
        }
        let assert = sb.run(&["up"]).code(0);
        warned(&assert);
        no_shift(
            &sb.stdin_of("incus", "create")
                .expect("create got its input"),
        );
    }
}

// 3
#[test]
fn missing_inx_containers_output_is_an_eval_error() {
    let sb = Sandbox::new();
    sb.respond(
        "nix",
        "eval",
        "",
        "error: flake 'path:/x' does not provide attribute 'packages.x86_64-linux.inxContainers', 'legacyPackages.x86_64-linux.inxContainers' or 'inxContainers'\n",
        1,
    );
    sb.run(&["up"])
        .code(4)
        .stderr(predicate::str::contains("has no inxContainers output"));
    // Only the gathering ran: the evaluation and, beside it, the two queries.
    assert_eq!(
        up_order(sb.call_verbs()),
        ["incus project", "incus list", "incus query", "nix eval"]
    );
}

#[test]
fn a_throw_during_evaluation_is_an_eval_error() {
    let sb = Sandbox::new();
    sb.respond(
        "nix",
        "eval",
        "{\"missing\":[",
        "error: boom\n(use '--show-trace' to show detailed location information)\n",
        1,
    );
    sb.run(&["up"])
        .code(4)
        .stderr(predicate::str::contains("boom"));
    // Only the gathering ran: the evaluation and, beside it, the two queries.
    assert_eq!(
        up_order(sb.call_verbs()),
        ["incus project", "incus list", "incus query", "nix eval"]
    );
}

// 4
#[test]
fn unknown_manifest_schema_stops_before_any_change() {
    let sb = Sandbox::new();
    sb.eval_answers(one_container(99));
    sb.list_answers(json!([]));
    sb.run(&["up"])
        .code(10)
        .stderr(predicate::str::contains("schema version 99"));
    // Only the gathering ran: the evaluation and, beside it, the two queries.
    assert_eq!(
        up_order(sb.call_verbs()),
        ["incus project", "incus list", "incus query", "nix eval"]
    );
}

// 5
#[test]
fn up_refuses_an_unmanaged_instance_of_the_same_name() {
    let sb = Sandbox::new();
    sb.eval_answers(one_container(1));
    sb.list_answers(unmanaged_web());
    sb.server_answers_idmap();
    sb.run(&["up"])
        .code(8)
        .stderr(predicate::str::contains("inx does not manage it"));
    assert_eq!(
        up_order(sb.call_verbs()),
        ["incus project", "incus list", "incus query", "nix eval"]
    );
    assert!(!sb.profiles().join("web").exists());
}

#[test]
fn other_commands_leave_an_unmanaged_instance_alone() {
    for args in [
        &["stop", "web"][..],
        &["exec", "web", "--", "true"],
        &["destroy", "--force", "web"],
    ] {
        let sb = Sandbox::new();
        sb.list_answers(unmanaged_web());
        sb.run(args).code(8);
        assert_eq!(
            sb.call_verbs(),
            ["incus project", "incus list"],
            "inx {args:?}"
        );
    }
}

// 6
#[test]
fn an_invalid_name_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    sb.run(&["up", "Bad_Name"])
        .code(3)
        .stderr(predicate::str::contains(
            "invalid container name \"Bad_Name\"",
        ));
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
}

#[test]
fn start_without_names_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.run(&["start"])
        .code(2)
        .stderr(predicate::str::contains("Usage"));
    assert!(sb.calls().is_empty());
}

// 7
#[test]
fn incus_daemon_down_is_exit_7_with_a_hint() {
    let sb = Sandbox::new();
    sb.respond("nix", "eval", r#"["web"]"#, "", 0);
    sb.respond(
        "incus",
        "list",
        "",
        "Error: The incus daemon doesn't appear to be started (socket path: /var/lib/incus/unix.socket)\n",
        1,
    );
    sb.run(&["list"])
        .code(7)
        .stderr(predicate::str::contains("not running"));
    // list evaluates and lists at the same time: the two calls come in either order.
    assert_eq!(
        sorted(sb.call_verbs()),
        ["incus list", "incus project", "nix eval"]
    );
}

#[test]
fn incus_refusing_access_is_exit_7() {
    let sb = Sandbox::new();
    sb.respond("nix", "eval", r#"["web"]"#, "", 0);
    sb.respond(
        "incus",
        "list",
        "",
        "Error: You don't have the needed permissions to talk to the incus daemon (socket path: /var/lib/incus/unix.socket)\n",
        1,
    );
    sb.run(&["list"])
        .code(7)
        .stderr(predicate::str::contains("incus-admin"));
}

// 8
#[test]
fn missing_incus_is_exit_6() {
    let sb = Sandbox::with_tools(&["nix", "nix-store", "nix-env"]);
    sb.run(&["start", "web"])
        .code(6)
        .stderr(predicate::str::contains("`incus` is not installed"));
    assert!(sb.calls().is_empty());
}

#[test]
fn missing_nix_is_exit_6() {
    let sb = Sandbox::with_tools(&["nix-store", "nix-env", "incus"]);
    sb.run(&["up"])
        .code(6)
        .stderr(predicate::str::contains("`nix` is not installed"));
    // The queries beside the evaluation ran; nothing was changed.
    assert_eq!(
        up_order(sb.call_verbs()),
        ["incus project", "incus list", "incus query"]
    );
}

// 9
#[test]
fn a_failed_build_changes_nothing() {
    let sb = Sandbox::new();
    sb.fresh_web();
    sb.respond("nix-store", "realise", "", "error: builder failed\n", 100);
    let assert = sb.run(&["up"]);
    if !host_has_nix_daemon() {
        // See up_builds_profiles_creates_and_starts_a_new_container.
        assert.code(6);
        assert_nothing_changed(&sb);
        return;
    }
    assert
        .code(5)
        .stderr(predicate::str::contains("exit code 100"));
    assert_eq!(
        up_order(sb.call_verbs()),
        [
            "incus project",
            "incus list",
            "incus query",
            "nix eval",
            "nix-store realise"
        ]
    );
}

// 10
#[test]
fn exec_passes_the_command_and_its_exit_code_through() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    sb.respond("incus", "exec", "", "", 7);
    sb.run(&["exec", "web", "--", "sh", "-c", "exit 7"]).code(7);
    assert_eq!(
        sb.calls(),
        [
            "incus [project] [get-current]",
            "incus [--project] [default] [list] [--format] [json]",
            "incus [--project] [default] [exec] [web] [--env] [PATH=/run/wrappers/bin:/nix/var/nix/profiles/default/bin:/run/current-system/sw/bin] [--] [sh] [-c] [exit 7]",
        ]
    );
}

#[test]
fn exec_in_a_stopped_container_is_refused() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Stopped", true)]));
    sb.run(&["exec", "web", "--", "true"])
        .code(3)
        .stderr(predicate::str::contains("web is not running"));
    assert_eq!(sb.call_verbs(), ["incus project", "incus list"]);
}

// 11
#[test]
fn destroy_without_a_terminal_needs_force() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    let profile = sb.profiles().join("web");
    fs::create_dir_all(&profile).unwrap();
    fs::write(profile.join("keep"), "x").unwrap();
    sb.run(&["destroy", "web"])
        .code(3)
        .stderr(predicate::str::contains("--force"));
    assert_eq!(sb.call_verbs(), ["incus project", "incus list"]);
    assert!(profile.join("keep").exists(), "the profile is kept");
}

#[test]
fn destroy_with_force_deletes_the_instance_and_its_profile() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    let profile = sb.profiles().join("web");
    fs::create_dir_all(&profile).unwrap();
    fs::write(profile.join("keep"), "x").unwrap();
    sb.run(&["destroy", "--force", "web"]).code(0);
    assert_eq!(
        sb.calls(),
        [
            "incus [project] [get-current]",
            "incus [--project] [default] [list] [--format] [json]",
            "incus [--project] [default] [delete] [--force] [web]"
        ]
    );
    assert!(!profile.exists(), "the profile directory is removed");
}

// 12
#[test]
fn a_held_lock_stops_up_before_anything_runs() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let lock = fs::File::create(sb.profiles().join(".lock")).unwrap();
    lock.try_lock().expect("the test takes the lock");
    sb.run(&["up"])
        .code(9)
        .stderr(predicate::str::contains("another inx"));
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
    drop(lock);
}

// 13
/// Gives `web` a host profile (generation 1) that points at `toplevel()`.
fn profile_web(sb: &Sandbox) {
    let dir = sb.profiles().join("web");
    fs::create_dir_all(&dir).unwrap();
    symlink(toplevel(), dir.join("system-1-link")).unwrap();
    symlink("system-1-link", dir.join("system")).unwrap();
}

fn list_sandbox() -> Sandbox {
    let sb = Sandbox::new();
    profile_web(&sb);
    sb.respond("nix", "eval", r#"["web","db"]"#, "", 0);
    let mut other = instance("other", "Running", false);
    other["state"] = json!({ "pid": 1 });
    sb.list_answers(json!([
        instance("web", "Running", true),
        instance("old", "Stopped", true),
        other
    ]));
    sb
}

#[test]
fn list_json_shows_declared_and_managed_containers() {
    let sb = list_sandbox();
    let doc = document(&sb.run(&["list", "--json"]).code(0));
    let rows = doc["containers"]
        .as_array()
        .expect("an array of containers");
    let summary: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        summary,
        [("db", "missing"), ("old", "orphaned"), ("web", "running")]
    );
    let web = &rows[2];
    assert_eq!(web["declared"], true);
    assert_eq!(web["managed"], true);
    assert_eq!(web["status"], "Running");
    assert_eq!(web["running_system"], toplevel());
    assert_eq!(web["profile_system"], toplevel());
    assert_eq!(web["generation"], 1);
    assert_eq!(rows[0]["status"], Value::Null);
    assert_eq!(rows[1]["declared"], false);
    // list evaluates and lists at the same time: the two calls come in either order.
    assert_eq!(
        sorted(sb.call_verbs()),
        ["incus list", "incus project", "nix eval"]
    );
    let calls = sb.calls();
    let eval = calls.iter().find(|c| c.starts_with("nix ")).unwrap();
    assert!(
        eval.ends_with("[--apply] [builtins.attrNames]"),
        "list evaluates names only: {eval}"
    );
}

/// Runs inx with its stdout going into a pipe whose reader reads `lines` lines and then goes
/// away (0: before inx starts, so every write of inx finds the pipe closed).
fn into_closed_pipe(sb: &Sandbox, args: &[&str], lines: usize) -> std::process::Output {
    use std::io::BufRead;
    let (reader, writer) = std::io::pipe().unwrap();
    let mut cmd = sb.std_command(args);
    cmd.stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped());
    let reader = (lines > 0).then_some(reader);
    let child = cmd.spawn().unwrap();
    // The parent's copy of the pipe's write end goes with the command.
    drop(cmd);
    if let Some(reader) = reader {
        let mut reader = std::io::BufReader::new(reader);
        for _ in 0..lines {
            reader.read_line(&mut String::new()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_exit_0() {
    for args in [&["list"][..], &["list", "--json"], &["completions", "bash"]] {
        for lines in [0, 1] {
            let sb = list_sandbox();
            let out = into_closed_pipe(&sb, args, lines);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
                "inx {args:?}, reader gone after {lines} lines: {stderr}"
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "inx {args:?}, reader gone after {lines} lines: {stderr}"
            );
        }
    }
}

#[test]
fn list_shows_a_container_without_its_host_profile_as_unprofiled() {
    for status in ["Running", "Stopped"] {
        let sb = Sandbox::new();
        sb.respond("nix", "eval", r#"["web"]"#, "", 0);
        sb.list_answers(json!([instance("web", status, true)]));
        let assert = sb.run(&["list", "--json"]).code(0);
        let doc: Value = serde_json::from_slice(&assert.get_output().stdout).expect("JSON rows");
        let web = &doc["containers"][0];
        assert_eq!(web["state"], "unprofiled", "{status}: {web}");
        assert_eq!(web["status"], status);
        assert_eq!(web["generation"], Value::Null);
        assert_eq!(web["profile_system"], Value::Null);
        let stderr = stderr_of(&assert);
        assert!(
            stderr.contains("web has no host profile") && stderr.contains("`inx up web`"),
            "{stderr}"
        );
        let table = stdout_of(&sb.run(&["list"]).code(0));
        assert!(table.contains("web   unprofiled  -"), "{table}");
        // With its profile back, it is an ordinary container again.
        profile_web(&sb);
        let assert = sb.run(&["list", "--json"]).code(0);
        let doc: Value = serde_json::from_slice(&assert.get_output().stdout).expect("JSON rows");
        assert_eq!(doc["containers"][0]["state"], status.to_lowercase());
        assert!(!stderr_of(&assert).contains("no host profile"));
    }
}

#[test]
fn list_prints_a_table_of_name_state_generation_and_system() {
    let sb = list_sandbox();
    let assert = sb.run(&["list"]).code(0);
    insta::assert_snapshot!("list_table", stdout_of(&assert));
}

// 14
#[test]
fn completions_for_bash_print_a_script_and_run_nothing() {
    let sb = Sandbox::new();
    sb.run(&["completions", "bash"])
        .code(0)
        .stdout(predicate::str::contains("inx").and(predicate::str::contains("complete")));
    assert!(sb.calls().is_empty());
}

#[test]
fn help_lists_every_command() {
    let sb = Sandbox::new();
    let assert = sb.run(&["--help"]).code(0);
    let help = stdout_of(&assert);
    for command in [
        "up",
        "list",
        "status",
        "start",
        "stop",
        "restart",
        "exec",
        "shell",
        "destroy",
        "image",
        "completions",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "--help lists {command}"
        );
    }
    insta::assert_snapshot!("help", help);
    assert!(sb.calls().is_empty());
}

#[test]
fn quiet_prints_no_progress_lines_but_still_prints_errors() {
    let sb = Sandbox::new();
    sb.list_answers(json!([
        instance("web", "Stopped", true),
        instance("db", "Running", true)
    ]));
    // Without -q: the step and "already running".
    let loud = sb.run(&["start", "web", "db"]).code(0);
    assert!(
        stderr_of(&loud).contains("web: start"),
        "{}",
        stderr_of(&loud)
    );
    assert!(stderr_of(&loud).contains("db: already running"));
    let quiet = sb.run(&["-q", "start", "web", "db"]).code(0);
    assert_eq!(stderr_of(&quiet), "");
    let quiet = sb.run(&["start", "--quiet", "web"]).code(0);
    assert_eq!(stderr_of(&quiet), "");
    assert_eq!(
        sb.call_verbs(),
        [
            "incus project",
            "incus list",
            "incus start",
            "incus project",
            "incus list",
            "incus start",
            "incus project",
            "incus list",
            "incus start"
        ],
        "-q changes what is printed, not what runs"
    );
    sb.respond("incus", "start", "", "Error: inx-cli-start-refused\n", 1);
    sb.run(&["-q", "start", "web"])
        .code(1)
        .stderr(predicate::str::contains("inx-cli-start-refused"));
}

#[test]
fn quiet_with_verbose_is_a_usage_error() {
    let sb = Sandbox::new();
    for args in [
        &["-q", "-v", "list"][..],
        &["-q", "list", "-v"],
        &["list", "--verbose", "--quiet"],
    ] {
        sb.run(args).code(2).stderr(
            predicate::str::contains("cannot be used with")
                .and(predicate::str::contains("'--quiet"))
                .and(predicate::str::contains("'--verbose")),
        );
    }
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
}

#[test]
fn verbose_may_be_repeated() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    for args in [&["-vv", "stop", "web"][..], &["-v", "stop", "web", "-v"]] {
        let assert = sb.run(args).code(0);
        assert!(
            stderr_of(&assert).contains("+ incus --project default stop web"),
            "{}",
            stderr_of(&assert)
        );
    }
}

#[test]
fn backend_is_accepted_only_by_import_and_publish() {
    let sb = Sandbox::with_tools(&["nix", "nix-store", "incus", "lxc"]);
    for args in [
        &["image", "export", "web", "out", "--backend", "lxd"][..],
        &["image", "build", "web", "--backend", "incus"],
        &["image", "simplestreams", "web", "out", "--backend", "lxd"],
        &["image", "--backend", "lxd", "import", "web"],
    ] {
        sb.run(args)
            .code(2)
            .stderr(predicate::str::contains("unexpected argument '--backend'"));
    }
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
    for command in ["import", "publish"] {
        let assert = sb.run(&["image", command, "--help"]).code(0);
        assert!(stdout_of(&assert).contains("--backend <BACKEND>"));
    }
}

#[test]
fn every_image_command_explains_name_and_vm() {
    let sb = Sandbox::new();
    for command in ["build", "import", "publish", "export", "simplestreams"] {
        let assert = sb.run(&["image", command, "--help"]).code(0);
        let help = stdout_of(&assert);
        assert!(
            help.contains("A container declared in the flake's inxContainers"),
            "image {command}: {help}"
        );
        assert!(
            help.contains(
                "The virtual-machine image (a qcow2 disk) instead of the container image"
            ),
            "image {command}: {help}"
        );
    }
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// `up`'s calls with its gathering in a fixed order: the project (read first), then the
/// evaluation, the listing and the server query, which run at the same time (sorted here).
fn up_order(mut v: Vec<String>) -> Vec<String> {
    let end = v.len().min(4);
    if end > 1 {
        v[1..end].sort();
    }
    v
}

// Regressions: bugs these tests found.

#[test]
fn a_name_given_twice_is_acted_on_once() {
    let sb = Sandbox::new();
    sb.list_answers(json!([
        instance("web", "Stopped", true),
        instance("db", "Stopped", true)
    ]));
    sb.run(&["start", "web", "db", "web"]).code(0);
    // Both are started by one call, in the order given, each once.
    assert_eq!(
        sb.calls(),
        [
            "incus [project] [get-current]",
            "incus [--project] [default] [list] [--format] [json]",
            "incus [--project] [default] [start] [web] [db]",
        ]
    );
}

#[test]
fn a_held_lock_stops_lifecycle_commands_too() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    let lock = fs::File::create(sb.profiles().join(".lock")).unwrap();
    lock.try_lock().expect("the test takes the lock");
    sb.run(&["stop", "web"]).code(9);
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
}

#[test]
fn json_after_a_real_stop_prints_what_was_done() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    let out = sb
        .run(&["--json", "stop", "web"])
        .code(0)
        .get_output()
        .stdout
        .clone();
    let plan: Value = serde_json::from_slice(&out).expect("JSON on stdout");
    assert_eq!(plan["steps"][0]["what"], "stop");
    assert_eq!(
        plan["steps"][0]["run"]["args"],
        json!(["--project", "default", "stop", "web"])
    );
    assert_eq!(
        sb.call_verbs(),
        ["incus project", "incus list", "incus stop"]
    );
}

#[test]
fn a_failed_step_is_reported_once() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    sb.respond("incus", "stop", "", "Error: inx-cli-stop-refused\n", 1);
    let out = sb.run(&["stop", "web"]).code(1).get_output().stderr.clone();
    let stderr = String::from_utf8_lossy(&out);
    assert_eq!(
        stderr.matches("inx-cli-stop-refused").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("web failed (see above)"), "{stderr}");
}

/// inx's roots directory in the sandbox.
fn roots(sb: &Sandbox) -> PathBuf {
    sb.root.join("state/gcroots/inx")
}

#[test]
fn gc_syncs_then_hands_its_arguments_to_nix_collect_garbage() {
    let sb = Sandbox::new();
    sb.respond("incus", "list", "[]", "", 0);
    sb.run(&["gc", "--delete-older-than", "7d", "-v"]).code(0);
    assert_eq!(
        sb.calls(),
        [
            "incus [list] [--all-projects] [--format] [json]",
            "nix-collect-garbage [--delete-older-than] [7d] [-v]"
        ]
    );
}

#[test]
fn gc_takes_its_own_max_roots_from_anywhere_before_a_double_dash() {
    let sb = Sandbox::new();
    sb.respond("incus", "list", "[]", "", 0);
    sb.run(&["gc", "--delete-older-than", "7d", "--max-roots", "3"])
        .code(0);
    sb.run(&["gc", "-d", "--", "--max-roots", "3"]).code(0);
    sb.run(&["gc", "--", "--max-roots=3"]).code(0);
    let collections: Vec<String> = sb
        .calls()
        .into_iter()
        .filter(|c| c.starts_with("nix-collect-garbage"))
        .collect();
    assert_eq!(
        collections,
        [
            "nix-collect-garbage [--delete-older-than] [7d]",
            "nix-collect-garbage [-d] [--max-roots] [3]",
            "nix-collect-garbage [--max-roots=3]",
        ]
    );
}

#[test]
fn gc_refuses_a_max_roots_without_a_number_before_anything_runs() {
    let sb = Sandbox::new();
    sb.run(&["gc", "-d", "--max-roots"])
        .code(2)
        .stderr(predicate::str::contains("a value is required"));
    sb.run(&["gc", "-d", "--max-roots", "many"])
        .code(2)
        .stderr(predicate::str::contains("invalid value 'many'"));
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
}

#[test]
fn gc_help_says_max_roots_may_come_anywhere() {
    let sb = Sandbox::new();
    let assert = sb.run(&["gc", "--help"]).code(0);
    let help = stdout_of(&assert);
    assert!(
        help.contains("--max-roots is taken from anywhere among the arguments"),
        "{help}"
    );
    assert!(
        help.contains("nix-collect-garbage, --max-roots too"),
        "{help}"
    );
}

#[test]
fn gc_collects_nothing_when_the_sync_cannot_list_containers() {
    let sb = Sandbox::new();
    sb.respond(
        "incus",
        "list",
        "",
        "Error: The incus daemon doesn't appear to be started (socket path: /var/lib/incus/unix.socket)\n",
        1,
    );
    sb.run(&["gc"])
        .code(7)
        .stderr(predicate::str::contains("daemon"));
    assert_eq!(
        sb.call_verbs(),
        ["incus list"],
        "no collection after a failed sync"
    );
}

#[test]
fn a_failed_collection_is_exit_1() {
    let sb = Sandbox::new();
    sb.respond("incus", "list", "[]", "", 0);
    sb.respond("nix-collect-garbage", "", "", "error: out of luck\n", 2);
    sb.run(&["gc"])
        .code(1)
        .stderr(predicate::str::contains("nix-collect-garbage"));
}

#[test]
fn roots_sync_drops_only_its_own_roots_of_containers_that_are_gone() {
    let sb = Sandbox::new();
    sb.respond("incus", "list", "[]", "", 0);
    let gone = roots(&sb).join("gone");
    fs::create_dir_all(&gone).unwrap();
    let path = format!("/nix/store/{HASH}-built");
    fs::write(
        gone.join("roots.json"),
        json!({ "roots": { "/root/result": path } }).to_string(),
    )
    .unwrap();
    symlink(&path, gone.join("r-00000000000000aa")).unwrap();
    // Not inx's: a root someone else put there stays, and so does the directory.
    let other = roots(&sb).join("kept");
    fs::create_dir_all(&other).unwrap();
    symlink(&path, other.join("made-by-hand")).unwrap();
    let assert = sb.run(&["roots", "sync"]).code(0);
    assert!(
        stderr_of(&assert).contains("gone: 0 new, 1 dropped"),
        "{}",
        stderr_of(&assert)
    );
    assert!(!gone.exists(), "the gone container's roots are removed");
    assert!(fs::symlink_metadata(other.join("made-by-hand")).is_ok());
    assert_eq!(sb.call_verbs(), ["incus list"]);
}

#[test]
fn roots_sync_dry_run_prints_the_plan_and_writes_nothing() {
    let sb = Sandbox::new();
    sb.respond("incus", "list", "[]", "", 0);
    let gone = roots(&sb).join("gone");
    fs::create_dir_all(&gone).unwrap();
    fs::write(
        gone.join("roots.json"),
        json!({ "roots": { "/root/result": format!("/nix/store/{HASH}-built") } }).to_string(),
    )
    .unwrap();
    let assert = sb.run(&["--dry-run", "roots", "sync"]).code(0);
    assert!(gone.join("roots.json").exists());
    // The plan: the gone container's roots removed, as a script.
    let plan = stdout_of(&assert);
    let dir = gone.display();
    assert_eq!(
        plan,
        format!("# gone: 0 new, 1 dropped; would keep 0 builds\nrm -f {dir}/r-* {dir}/roots.json && rmdir {dir}\n")
    );
}

#[test]
fn generations_and_rollback_refuse_what_is_not_there() {
    let sb = Sandbox::new();
    sb.run(&["generations", "Web"]).code(3);
    sb.run(&["generations", "web"])
        .code(3)
        .stderr(predicate::str::contains("no generations"));
    sb.run(&["rollback", "web"])
        .code(3)
        .stderr(predicate::str::contains("inx up web"));
    sb.run(&["rollback", "web", "--to", "x"]).code(2);
    // Only the client's current project was read (which project's profiles to look in).
    assert!(
        sb.call_verbs().iter().all(|c| c == "incus project"),
        "calls: {:?}",
        sb.calls()
    );
}

#[test]
fn rollback_of_an_unmanaged_instance_is_refused() {
    let sb = Sandbox::new();
    let dir = sb.profiles().join("web");
    fs::create_dir_all(&dir).unwrap();
    symlink(toplevel(), dir.join("system-1-link")).unwrap();
    symlink(toplevel(), dir.join("system-2-link")).unwrap();
    symlink("system-2-link", dir.join("system")).unwrap();
    sb.list_answers(unmanaged_web());
    sb.run(&["rollback", "web"]).code(8);
    assert_nothing_changed(&sb);
    assert_eq!(
        fs::read_link(dir.join("system")).unwrap(),
        Path::new("system-2-link")
    );
}

#[test]
fn diff_of_a_flake_that_fails_is_exit_4_and_builds_nothing() {
    let sb = Sandbox::new();
    sb.respond("nix", "eval", "", "error: attribute 'oops' missing\n", 1);
    sb.run(&["diff"]).code(4);
    assert_eq!(sb.call_verbs(), ["nix eval"]);
}

// -- inx image: argument handling and error paths against stand-ins --

/// Image files in the sandbox, as `nix eval` of the image outputs would name them (already
/// built, so no realise): (metadata, rootfs, the image outputs' JSON).
fn image_outputs(sb: &Sandbox) -> (PathBuf, PathBuf, Value) {
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

#[test]
fn image_arguments_are_checked_before_anything_runs() {
    let sb = Sandbox::with_tools(&["nix", "nix-store", "incus", "lxc"]);
    sb.run(&["image", "publish", "web"]).code(2);
    sb.run(&["image", "import", "web", "--backend", "docker"])
        .code(2);
    sb.run(&["image", "build", "Web"]).code(3);
    sb.run(&["image", "import", "web", "--alias", "../x"])
        .code(3)
        .stderr(predicate::str::contains("invalid image alias"));
    sb.run(&["image", "import", "web", "bad remote:"]).code(3);
    sb.run(&["image", "simplestreams", "web", "out", "--alias", "a//b"])
        .code(3);
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
}

#[test]
fn export_and_simplestreams_make_missing_parent_folders() {
    let sb = Sandbox::new();
    let (_, _, outputs) = image_outputs(&sb);
    sb.respond("nix", "eval", &outputs.to_string(), "", 0);
    sb.run(&["image", "export", "web", "new/a/images"]).code(0);
    let exported = sb.root.join("work/new/a/images");
    for file in [
        "metadata.tar.xz",
        "rootfs.squashfs",
        "SHA256SUMS",
        "IMPORT.txt",
    ] {
        assert!(exported.join(file).is_file(), "{file}");
    }
    sb.run(&["image", "simplestreams", "web", "new2/b/tree"])
        .code(0);
    assert!(sb
        .root
        .join("work/new2/b/tree/streams/v1/images.json")
        .is_file());
    // Still never over files: a folder that is not empty is refused.
    sb.run(&["image", "export", "web", "new/a/images"])
        .code(3)
        .stderr(predicate::str::contains("not empty"));
    assert_eq!(sb.call_verbs(), ["nix eval", "nix eval", "nix eval"]);
}

#[test]
fn a_container_without_image_outputs_is_exit_11() {
    let sb = Sandbox::new();
    sb.respond("nix", "eval", r#"{"declared":true,"images":null}"#, "", 0);
    sb.run(&["image", "build", "web"])
        .code(11)
        .stderr(predicate::str::contains("has no container image outputs"));
    sb.run(&["image", "import", "web", "--vm"])
        .code(11)
        .stderr(predicate::str::contains(
            "has no virtual-machine image outputs",
        ));
    sb.run(&["image", "export", "web", "out"]).code(11);
    assert!(!sb.root.join("work/out").exists());
    assert_eq!(sb.call_verbs(), ["nix eval", "nix eval", "nix eval"]);
    sb.respond("nix", "eval", r#"{"declared":false,"images":null}"#, "", 0);
    sb.run(&["image", "build", "web"])
        .code(3)
        .stderr(predicate::str::contains("not declared"));
}

#[test]
fn import_imports_once_and_a_known_image_is_left_alone() {
    let sb = Sandbox::new();
    let (meta, root, outputs) = image_outputs(&sb);
    sb.respond("nix", "eval", &outputs.to_string(), "", 0);
    sb.respond("incus", "image", "[]", "", 0);
    let fp = sb
        .run(&["image", "import", "web"])
        .code(0)
        .get_output()
        .stdout
        .clone();
    let fp = String::from_utf8(fp).unwrap();
    assert_eq!(fp.trim().len(), 64);
    let calls = sb.calls();
    assert_eq!(
        calls.last().unwrap(),
        &format!(
            "incus [image] [import] [{}] [{}] [--alias] [nixos/web]",
            meta.display(),
            root.display()
        )
    );
    // The server has it (with its alias): nothing runs but the listing.
    let listed = json!([{ "fingerprint": fp.trim(), "public": false, "aliases": [{ "name": "nixos/web" }] }]);
    sb.respond("incus", "image", &listed.to_string(), "", 0);
    let before = sb.calls().len();
    sb.run(&["image", "import", "web"])
        .code(0)
        .stderr(predicate::str::contains("nothing to do"));
    assert_eq!(
        sb.calls()[before..].len(),
        2,
        "eval and listing: {:?}",
        sb.calls()
    );
}

#[test]
fn lxd_backend_drives_lxc_and_stops_early_without_the_remote_or_lxc() {
    let sb = Sandbox::with_tools(&["nix", "nix-store", "lxc"]);
    let (_, _, outputs) = image_outputs(&sb);
    sb.respond("nix", "eval", &outputs.to_string(), "", 0);
    sb.respond("lxc", "image", "[]", "", 0);
    sb.run(&[
        "image",
        "import",
        "web",
        "--backend",
        "lxd",
        "--alias",
        "img-web",
    ])
    .code(0);
    assert!(sb.call_verbs().iter().all(|v| !v.starts_with("incus")));
    assert!(sb
        .calls()
        .last()
        .unwrap()
        .starts_with("lxc [image] [import]"));

    sb.respond(
        "lxc",
        "remote",
        r#"{"local":{"Addr":"unix://","Protocol":"","Public":false}}"#,
        "",
        0,
    );
    let before = sb.calls().len();
    sb.run(&[
        "image",
        "publish",
        "web",
        "--backend",
        "lxd",
        "--remote",
        "img-pub",
    ])
    .code(3)
    .stderr(predicate::str::contains(
        "lxc knows no remote named img-pub",
    ));
    assert_eq!(sb.call_verbs()[before..], ["lxc remote"]);
    // Without LXD's client installed: exit 6 with a hint.
    let bare = Sandbox::with_tools(&["nix"]);
    bare.respond("nix", "eval", &outputs.to_string(), "", 0);
    bare.run(&["image", "import", "web", "--backend", "lxd"])
        .code(6)
        .stderr(predicate::str::contains("install LXD"));
}

#[test]
fn publish_needs_a_trusted_https_server() {
    let sb = Sandbox::new();
    sb.respond(
        "incus",
        "remote",
        r#"{"pub":{"Addr":"https://127.0.0.1:8443","Protocol":"incus","Public":true},
            "ss":{"Addr":"https://127.0.0.1:9443","Protocol":"simplestreams","Public":true},
            "local":{"Addr":"unix://","Protocol":"incus","Public":false}}"#,
        "",
        0,
    );
    sb.run(&["image", "publish", "web", "--remote", "pub"])
        .code(3)
        .stderr(predicate::str::contains("added with --public"));
    sb.run(&["image", "publish", "web", "--remote", "ss"])
        .code(3)
        .stderr(predicate::str::contains("read-only simplestreams"));
    sb.run(&["image", "publish", "web", "--remote", "local"])
        .code(3)
        .stderr(predicate::str::contains("not reached over HTTPS"));
    assert!(
        sb.call_verbs().iter().all(|v| v == "incus remote"),
        "{:?}",
        sb.calls()
    );
}

#[test]
fn a_refusing_server_is_exit_7() {
    let sb = Sandbox::new();
    let (_, _, outputs) = image_outputs(&sb);
    sb.respond("nix", "eval", &outputs.to_string(), "", 0);
    sb.respond("incus", "image", "", "Error: not authorized\n", 1);
    sb.run(&["image", "import", "web"])
        .code(7)
        .stderr(predicate::str::contains("refused"));
}

#[test]
fn roots_watch_makes_gcroots_auto_on_a_host_that_has_none_yet() {
    let sb = Sandbox::new();
    let auto = sb.root.join("state/gcroots/auto");
    fs::remove_dir(&auto).unwrap();
    sb.respond("incus", "list", "[]", "", 0);
    // The watcher runs until stopped: the timeout ends it once it has started watching.
    let out = sb
        .command(&["roots", "watch"])
        .timeout(Duration::from_secs(3))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("roots: watching {}", auto.display())),
        "{stderr}"
    );
    assert!(auto.is_dir(), "{stderr}");
}

/// Without --project, the client's current project (`incus project switch`) is read once and
/// used for every incus call and for the profile directory, so a `web` in another project
/// never shares the default project's profile.
#[test]
fn the_clients_current_project_is_used_for_instances_and_profiles() {
    let sb = Sandbox::new();
    sb.fresh_web();
    sb.respond("incus", "project", "lab\n", "", 0);
    let assert = sb.run(&["up"]);
    if !host_has_nix_daemon() {
        assert.code(6);
        return;
    }
    assert.code(0);
    let calls = sb.calls();
    assert_eq!(
        calls
            .iter()
            .filter(|c| c.starts_with("incus [project] [get-current]"))
            .count(),
        1,
        "read once: {calls:#?}"
    );
    // `query /1.0` asks about the server, which has no project.
    for call in calls.iter().filter(|c| {
        c.starts_with("incus ") && !c.contains("get-current") && !c.contains("[query] [/1.0]")
    }) {
        assert!(
            call.starts_with("incus [--project] [lab] "),
            "every incus call names the project: {call}"
        );
    }
    assert!(sb.profiles().join(".projects/lab/web").is_dir());
    assert!(!sb.profiles().join("web").exists());
}

// -- --json: one JSON document on stdout, an object whose first key is `schema` (docs/json.md) --

/// Everything a run printed on stdout, as one JSON document; its schema checked.
fn document(assert: &assert_cmd::assert::Assert) -> Value {
    let stdout = stdout_of(assert);
    let doc: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}):\n{stdout}"));
    let first = doc.as_object().and_then(|o| o.keys().next().cloned());
    assert_eq!(first.as_deref(), Some("schema"), "{stdout}");
    assert_eq!(doc["schema"], 1, "{stdout}");
    doc
}

#[test]
fn json_of_list_and_status() {
    let sb = list_sandbox();
    let list = document(&sb.run(&["list", "--json"]).code(0));
    insta::assert_json_snapshot!("json_list", list);
    let status = document(&sb.run(&["status", "--json", "web"]).code(0));
    assert_eq!(status["containers"], json!([list["containers"][2]]));
}

#[test]
fn json_of_plans_for_a_dry_run_and_after_the_steps_ran() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let up = document(&sb.run(&["--dry-run", "--json", "up"]).code(0));
    sb.settings().bind(|| {
        insta::assert_json_snapshot!("json_plan_up_dry_run", up);
    });

    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    let profile = sb.profiles().join("web");
    fs::create_dir_all(&profile).unwrap();
    fs::create_dir_all(roots(&sb).join("web")).unwrap();
    let destroy = document(&sb.run(&["--dry-run", "--json", "destroy", "web"]).code(0));
    sb.settings().bind(|| {
        insta::assert_json_snapshot!("json_plan_destroy_dry_run", destroy);
    });
    let stop = document(&sb.run(&["--json", "stop", "web"]).code(0));
    insta::assert_json_snapshot!("json_plan_stop_done", stop);
    assert_eq!(
        sb.call_verbs(),
        [
            "incus project",
            "incus list",
            "incus project",
            "incus list",
            "incus stop"
        ]
    );
}

#[test]
fn up_json_of_a_flake_without_containers_is_an_empty_plan() {
    let sb = Sandbox::new();
    sb.eval_answers(json!({ "missing": [], "containers": {} }));
    for args in [&["--json", "up"][..], &["--dry-run", "--json", "up"]] {
        let assert = sb.run(args).code(0);
        assert!(
            stderr_of(&assert).contains("declares no containers"),
            "{}",
            stderr_of(&assert)
        );
        let plan = document(&assert);
        assert_eq!(
            plan,
            json!({ "schema": 1, "steps": [], "unchanged": [], "notes": [] })
        );
    }
}

#[test]
fn exec_shell_and_completions_refuse_json() {
    let sb = Sandbox::new();
    for args in [
        &["--json", "exec", "web", "--", "true"][..],
        &["--json", "--dry-run", "shell", "web"],
        &["--json", "completions", "bash"],
    ] {
        let assert = sb.run(args).code(2);
        assert!(stdout_of(&assert).is_empty(), "inx {args:?}");
        assert!(
            stderr_of(&assert).contains("have no JSON output"),
            "inx {args:?}: {}",
            stderr_of(&assert)
        );
    }
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
}

#[test]
fn json_of_roots_sync_and_gc() {
    let sb = Sandbox::new();
    sb.respond("incus", "list", "[]", "", 0);
    let gone = roots(&sb).join("gone");
    fs::create_dir_all(&gone).unwrap();
    let path = format!("/nix/store/{HASH}-built");
    fs::write(
        gone.join("roots.json"),
        json!({ "roots": { "/root/result": path } }).to_string(),
    )
    .unwrap();
    symlink(&path, gone.join("r-00000000000000aa")).unwrap();
    let synced = document(&sb.run(&["--json", "roots", "sync"]).code(0));
    insta::assert_json_snapshot!("json_roots_sync", synced);

    // gc: the collection's own report goes to stderr, so stdout stays one document.
    let args = ["--json", "gc", "--delete-older-than", "7d"];
    let dry = document(&sb.run(&[&["--dry-run"][..], &args].concat()).code(0));
    assert!(!sb
        .call_verbs()
        .contains(&"nix-collect-garbage delete-older-than".to_string()));
    sb.respond(
        "nix-collect-garbage",
        "delete-older-than",
        "3 store paths deleted\n",
        "",
        0,
    );
    let assert = sb.run(&args).code(0);
    assert!(
        stderr_of(&assert).contains("3 store paths deleted"),
        "{}",
        stderr_of(&assert)
    );
    let gc = document(&assert);
    assert_eq!(gc, dry, "a dry run prints what the run does");
    insta::assert_json_snapshot!("json_gc", gc);
}

#[test]
fn json_of_generations() {
    let sb = Sandbox::new();
    let dir = sb.profiles().join("web");
    fs::create_dir_all(&dir).unwrap();
    symlink(
        format!("/nix/store/{DRV_HASH}-nixos-system-web"),
        dir.join("system-1-link"),
    )
    .unwrap();
    symlink(toplevel(), dir.join("system-2-link")).unwrap();
    symlink("system-2-link", dir.join("system")).unwrap();
    sb.list_answers(json!([instance("web", "Running", true)]));
    let doc = document(&sb.run(&["--json", "generations", "web"]).code(0));
    let mut settings = sb.settings();
    settings.add_filter(r#""created": \d+"#, r#""created": "[TIME]""#);
    settings.bind(|| {
        insta::assert_json_snapshot!("json_generations", doc);
    });
}

#[test]
fn diff_json_has_each_containers_systems_status_and_parsed_changes() {
    let sb = Sandbox::new();
    let system = |hash: &str, name: &str| format!("/nix/store/{hash}-nixos-system-{name}");
    let manifest =
        |toplevel: String| json!({ "schemaVersion": 1, "toplevel": toplevel, "incus": {} });
    sb.eval_answers(json!({
        "missing": [],
        "containers": {
            "web": manifest(system(HASH, "web")),
            "db": manifest(system(HASH, "db")),
            "cache": manifest(system(HASH, "cache")),
        }
    }));
    // web has an older system, cache the flake's, db none.
    for (name, deployed) in [
        ("web", system(DRV_HASH, "web")),
        ("cache", system(HASH, "cache")),
    ] {
        let dir = sb.profiles().join(name);
        fs::create_dir_all(&dir).unwrap();
        symlink(&deployed, dir.join("system-1-link")).unwrap();
        symlink("system-1-link", dir.join("system")).unwrap();
    }
    // As Nix prints it into a pipe, colours included.
    sb.respond(
        "nix",
        "store",
        "nginx: 1.26.2 → 1.27.3, \u{1b}[31;1m+52.4 KiB\u{1b}[0m\n\
         openssl: 3.3.2 → ∅, \u{1b}[32;1m-6421.0 KiB\u{1b}[0m\n\
         zlib: \u{1b}[31;1m+8.1 KiB\u{1b}[0m\n",
        "",
        0,
    );
    let doc = document(&sb.run(&["--json", "diff"]).code(0));
    insta::assert_json_snapshot!("json_diff", doc);
    let calls = sb.calls();
    let diffs: Vec<&String> = calls
        .iter()
        .filter(|c| c.contains("[diff-closures]"))
        .collect();
    assert_eq!(diffs.len(), 1, "only web changed: {calls:?}");
    // The declared systems are built (as `diff` does), nothing else.
    assert_eq!(
        sb.call_verbs(),
        [
            "nix eval",
            "nix-store realise",
            "incus project",
            "nix store"
        ]
    );
}

#[test]
fn json_of_image_commands() {
    let sb = Sandbox::new();
    let (_, _, outputs) = image_outputs(&sb);
    sb.respond("nix", "eval", &outputs.to_string(), "", 0);
    sb.respond("incus", "image", "[]", "", 0);
    sb.respond(
        "incus",
        "remote",
        r#"{"srv":{"Addr":"https://127.0.0.1:8443","Protocol":"incus","Public":false}}"#,
        "",
        0,
    );
    let run = |args: &[&str]| document(&sb.run(&[&["--json", "image"][..], args].concat()).code(0));
    let build = run(&["build", "web"]);
    let import = run(&["import", "web"]);
    let publish = run(&["publish", "web", "--remote", "srv"]);
    // A dry run prints the document of the real run, and only that.
    let export_dry = run(&["--dry-run", "export", "web", "out"]);
    assert!(!sb.root.join("work/out").exists());
    let export = run(&["export", "web", "out"]);
    assert_eq!(export_dry, export);
    let tree_dry = run(&["--dry-run", "simplestreams", "web", "tree"]);
    assert!(!sb.root.join("work/tree").exists());
    let tree = run(&["simplestreams", "web", "tree"]);
    let again = run(&["simplestreams", "web", "tree"]);
    assert_eq!(tree["added"], true);
    assert_eq!(again["added"], false);
    assert_eq!(again["version"], tree["version"]);
    // The dry run's version is the time it ran, maybe a second before the real one.
    let but_version = |v: &Value| {
        let mut v = v.clone();
        v["version"] = Value::Null;
        v
    };
    assert_eq!(but_version(&tree_dry), but_version(&tree));
    let mut settings = sb.settings();
    settings.add_filter(r"\d{8}_\d{6}", "[VERSION]");
    settings.bind(|| {
        insta::assert_json_snapshot!("json_image_build", build);
        insta::assert_json_snapshot!("json_image_import", import);
        insta::assert_json_snapshot!("json_image_publish", publish);
        insta::assert_json_snapshot!("json_image_export", export);
        insta::assert_json_snapshot!("json_image_simplestreams", tree);
    });
}

#[test]
fn image_dry_run_that_must_build_prints_the_build_plan_as_json() {
    let sb = Sandbox::new();
    let output = |what: &str| {
        json!({
            "drv": format!("/nix/store/{DRV_HASH}-{what}.drv"),
            "path": format!("/nix/store/{HASH}-{what}"),
        })
    };
    let outputs = json!({
        "declared": true,
        "images": {
            "properties": { "os": "nixos", "release": "25.11", "variant": "default",
                            "architecture": "x86_64", "description": "NixOS" },
            "metadata": output("meta"),
            "root": output("root")
        }
    });
    sb.respond("nix", "eval", &outputs.to_string(), "", 0);
    for args in [
        &["build", "web"][..],
        &["import", "web"],
        &["export", "web", "out"],
        &["simplestreams", "web", "tree"],
    ] {
        let run = |json: &[&str]| sb.run(&[&["--dry-run"][..], json, &["image"], args].concat());
        let doc = document(&run(&["--json"]).code(0));
        assert_eq!(doc["steps"][0]["what"], "build", "{doc:#}");
        let then = doc["notes"][0].as_str().unwrap();
        assert!(then.starts_with("then: "), "{doc:#}");
        // The text plan says the same in a comment.
        let text = stdout_of(&run(&[]).code(0));
        assert!(text.contains(&format!("# {then}\n")), "{text}");
        if args[0] == "build" {
            sb.settings().bind(|| {
                insta::assert_json_snapshot!("json_image_build_dry_run", doc);
            });
        }
    }
    assert_nothing_changed(&sb);
}

#[test]
fn roots_watch_json_prints_a_document_per_sync_one_per_line() {
    let sb = Sandbox::new();
    sb.respond("incus", "list", "[]", "", 0);
    // The watcher runs until stopped: the timeout ends it after its first sync.
    let out = sb
        .command(&["--json", "roots", "watch"])
        .timeout(Duration::from_secs(3))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(!lines.is_empty(), "no sync reported: {stdout}");
    for line in lines {
        let doc: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert_eq!(doc, json!({ "schema": 1, "containers": [] }));
    }
}

/// `--dry-run diff` of a system that is not built yet prints the build as a plan, with what
/// would come next, and builds nothing (it used to run the build).
#[test]
fn dry_run_diff_prints_the_build_and_builds_nothing() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let assert = sb.run(&["--dry-run", "diff"]).code(0);
    let out = stdout_of(&assert);
    assert!(
        out.contains("# build 1 system\nnix-store --add-root "),
        "{out}"
    );
    assert!(out.contains("# then: compare each closure"), "{out}");
    assert_eq!(sb.call_verbs(), ["nix eval"], "nothing built");
}
