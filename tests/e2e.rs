//! End-to-end: the real inx binary against real Nix and real Incus, on a host that README's
//! test command provisions. Each test says what it proves.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

/// The host lock for an end-to-end test, or return from it (skipped; in CI: failed). Defined
/// before the modules below so that they use it too.
macro_rules! host {
    ($test:expr) => {
        match host($test) {
            Some(guard) => guard,
            None => return,
        }
    };
}

#[path = "e2e/cutoff.rs"]
mod cutoff;
#[path = "e2e/hangs.rs"]
mod hangs;
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/host_init.rs"]
mod host_init;
#[path = "e2e/nixos_containers.rs"]
mod nixos_containers;
#[path = "e2e/reach.rs"]
mod reach;
#[path = "e2e/runs.rs"]
mod runs;
#[path = "e2e/safety.rs"]
mod safety;
#[path = "e2e/snapshots.rs"]
mod snapshots;
#[path = "e2e/terminal.rs"]
mod terminal;
#[path = "e2e/users.rs"]
mod users;

use harness::*;
use std::path::Path;

/// `up` creates an empty instance that boots the system straight from the shared store, with
/// the store read-only inside, the host profile as a GC root, and the inx marker; a second
/// `up` runs one evaluation and one listing and changes nothing.
#[test]
fn up_boots_from_the_shared_store_and_a_second_up_changes_nothing() {
    let _host = host!("up_boots");
    let fx = Fixture::new("boot");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);

    fx.up(&[]).stderr_has("create the instance");
    assert_eq!(status(&web), "Running");
    let (generation, system) = profile(&web).expect("a host profile");
    assert_eq!(generation, 1);
    assert!(
        system.starts_with("/nix/store/") && system.ends_with("-inx-synthetic-system-1"),
        "{system}"
    );
    assert_eq!(config(&web, "user.inx.schema").as_deref(), Some("1"));
    assert_eq!(
        config(&web, "user.inx.system").as_deref(),
        Some(system.as_str())
    );
    wait_active(&web, &system);
    assert_eq!(
        sh_out(&web, "cat /var/lib/inx-test/activations"),
        "activate 1"
    );

    // The shared store: the host's paths, owned by root (shifted), not writable.
    assert!(sh_out(&web, "ls /nix/store").contains(system.trim_start_matches("/nix/store/")));
    assert_eq!(sh_out(&web, "stat -c %u /nix/store"), "0");
    let write = sh(&web, "touch /nix/store/inx-e2e-probe");
    assert!(!write.status.success());
    assert!(
        String::from_utf8_lossy(&write.stderr).contains("Read-only"),
        "{write:?}"
    );
    assert!(!Path::new("/nix/store/inx-e2e-probe").exists());

    let before = pid(&web);
    let again = fx.up(&["-v"]).stderr_has("up to date");
    let traced = again.traced();
    // The client's project (a local read), then the evaluation with the listing and the
    // server query beside it; nothing else.
    assert_eq!(
        traced.len(),
        4,
        "an unchanged up runs one evaluation, one listing and two small queries: {traced:#?}"
    );
    assert!(
        traced[0].starts_with("incus project get-current"),
        "{traced:?}"
    );
    assert!(
        traced[1].starts_with("nix ") && traced[1].contains(" eval "),
        "{traced:?}"
    );
    assert!(
        traced[2].starts_with("incus --project default list"),
        "{traced:?}"
    );
    assert!(traced[3].starts_with("incus query /1.0"), "{traced:?}");
    assert_eq!(pid(&web), before, "no restart");
    assert_eq!(profile(&web).unwrap().0, 1, "no new generation");
    assert_eq!(
        sh_out(&web, "cat /var/lib/inx-test/activations"),
        "activate 1"
    );
}

/// A new system is switched in place: same init, files in the root filesystem kept,
/// switch-to-configuration ran, a new profile generation.
#[test]
fn a_changed_system_is_switched_in_place() {
    let _host = host!("switch");
    let fx = Fixture::new("switch");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, v1) = profile(&web).unwrap();
    wait_active(&web, &v1);
    sh_out(&web, "echo kept > /root/keep");
    let init = pid(&web);

    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"2\"; }")]);
    fx.up(&[]).stderr_has("in place");
    let (generation, v2) = profile(&web).unwrap();
    assert_eq!(generation, 2);
    assert_ne!(v1, v2);
    assert_eq!(pid(&web), init, "switched without a restart");
    assert_eq!(sh_out(&web, "readlink /run/current-system"), v2);
    assert_eq!(sh_out(&web, "cat /var/lib/inx-test/switches"), "switch 2");
    assert_eq!(sh_out(&web, "cat /root/keep"), "kept");
    assert_eq!(
        config(&web, "user.inx.system").as_deref(),
        Some(v2.as_str())
    );
    let list = fx.inx(&["--json", "list"]).ok().json();
    assert_eq!(row(&list, &web)["state"], "running");
    assert_eq!(row(&list, &web)["generation"], 2);
}

/// A switch that fails leaves the container running its old system, shown as outdated; the
/// next `up` finishes the job.
#[test]
fn a_failed_switch_shows_outdated_and_the_next_up_finishes() {
    let _host = host!("outdated");
    let fx = Fixture::new("outdated");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, v1) = profile(&web).unwrap();
    wait_active(&web, &v1);
    let init = pid(&web);

    fx.declare(&[(
        &web,
        "inx.lib.mkContainer { toplevel = sysWith \"2\" \"false\"; }",
    )]);
    let failed = fx
        .inx(&["up"])
        .code(1)
        .stderr_has("switch-to-configuration");
    let reports = failed.stderr.matches("` failed (exit code").count();
    assert_eq!(reports, 1, "reported once:\n{}", failed.stderr);
    assert_eq!(pid(&web), init, "a failed switch does not restart");
    assert_eq!(
        config(&web, "user.inx.system").as_deref(),
        Some(v1.as_str()),
        "the record stays at what runs"
    );
    let list = fx.inx(&["--json", "status", &web]).ok().json();
    assert_eq!(row(&list, &web)["state"], "outdated");

    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"3\"; }")]);
    fx.up(&[]);
    let (generation, v3) = profile(&web).unwrap();
    assert_eq!(generation, 3);
    assert_eq!(sh_out(&web, "readlink /run/current-system"), v3);
    assert_eq!(pid(&web), init);
    let list = fx.inx(&["--json", "list"]).ok().json();
    assert_eq!(row(&list, &web)["state"], "running");
}

/// stop, start, restart; a stopped container is started by `up`; list reports missing,
/// stopped, running and orphaned.
#[test]
fn stop_start_restart_act_only_when_needed_and_list_reports_each_state() {
    let _host = host!("lifecycle");
    let fx = Fixture::new("life");
    let (a, b) = (fx.name("a"), fx.name("b"));
    let decl_a = "inx.lib.mkContainer { toplevel = sys \"1\"; }";
    fx.declare(&[(&a, decl_a), (&b, decl_a)]);
    fx.up(&[&a]);
    let list = fx.inx(&["--json", "list"]).ok().json();
    assert_eq!(row(&list, &a)["state"], "running");
    assert_eq!(row(&list, &b)["state"], "missing");
    let text = fx.inx(&["list"]).ok().stdout;
    assert!(
        text.starts_with("NAME") && text.contains(&a) && text.contains("missing"),
        "{text}"
    );

    fx.inx(&["stop", &a]).ok();
    assert_eq!(status(&a), "Stopped");
    assert_eq!(
        row(&fx.inx(&["--json", "list"]).ok().json(), &a)["state"],
        "stopped"
    );
    fx.inx(&["stop", &a]).ok().stderr_has("already stopped");
    fx.inx(&["start", &a]).ok();
    assert_eq!(status(&a), "Running");
    let (_, system) = profile(&a).unwrap();
    wait_active(&a, &system);
    let first = pid(&a);
    fx.inx(&["restart", &a]).ok();
    assert_ne!(pid(&a), first, "restart restarts");
    wait_active(&a, &system);
    assert_eq!(
        sh_out(&a, "cat /var/lib/inx-test/activations | wc -l"),
        "3",
        "one activation per boot"
    );

    // An up after a stop (or after an interrupted up) starts it again.
    fx.inx(&["stop", &a]).ok();
    fx.up(&[&a]).stderr_has("start");
    assert_eq!(status(&a), "Running");

    fx.declare(&[(&b, decl_a)]);
    assert_eq!(
        row(&fx.inx(&["--json", "list"]).ok().json(), &a)["state"],
        "orphaned"
    );
}

/// A running container whose host profile someone removed is listed as `unprofiled`, with a
/// note on stderr, instead of as `running` with no generation. The next `up` makes the
/// profile again and binds it into the container in place of the removed one, without a
/// restart, so that a switch from it works again.
#[test]
fn a_removed_host_profile_is_listed_as_unprofiled_and_up_makes_and_binds_it_again() {
    let _host = host!("unprofiled");
    let fx = Fixture::new("unprof");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, v1) = profile(&web).unwrap();
    wait_active(&web, &v1);
    let init = pid(&web);

    std::fs::remove_dir_all(Path::new(PROFILES).join(&web)).unwrap();
    let listed = fx
        .inx(&["--json", "list"])
        .ok()
        .stderr_has(&format!("{web} has no host profile"));
    let list = listed.json();
    let r = row(&list, &web);
    assert_eq!(r["state"], "unprofiled", "{r}");
    assert_eq!(r["status"], "Running");
    assert_eq!(r["generation"], serde_json::Value::Null);

    fx.up(&[]).stderr_has("bind the new profile directory");
    assert_eq!(profile(&web), Some((1, v1.clone())), "the profile is back");
    let after = fx.inx(&["--json", "list"]).ok();
    assert!(
        !after.stderr.contains("no host profile"),
        "{}",
        after.stderr
    );
    assert_eq!(row(&after.json(), &web)["state"], "running");
    assert_eq!(pid(&web), init, "no restart");
    // `sh` runs the container's shell through its profile: it is there inside again.
    assert_eq!(
        sh_out(&web, "readlink /nix/var/nix/profiles/system-1-link"),
        v1
    );
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"2\"; }")]);
    fx.up(&[]).stderr_has("in place");
    let (_, v2) = profile(&web).unwrap();
    assert_eq!(sh_out(&web, "readlink /run/current-system"), v2);
    assert_eq!(pid(&web), init);
}

/// destroy needs confirmation, then removes the instance and its host profile and nothing else.
#[test]
fn destroy_removes_the_instance_and_its_profile_only() {
    let _host = host!("destroy");
    let fx = Fixture::new("destroy");
    let (a, b) = (fx.name("a"), fx.name("b"));
    let decl = "inx.lib.mkContainer { toplevel = sys \"1\"; }";
    fx.declare(&[(&a, decl), (&b, decl)]);
    fx.up(&[]);
    let b_pid = pid(&b);

    fx.inx(&["destroy", &a]).code(3).stderr_has("--force");
    assert_eq!(status(&a), "Running", "refused without --force");
    let plan = fx.inx(&["--dry-run", "destroy", "--force", &a]).ok().stdout;
    assert!(
        plan.contains(&format!("incus --project default delete --force {a}")),
        "{plan}"
    );
    assert_eq!(status(&a), "Running", "a dry run deletes nothing");

    fx.inx(&["destroy", "--force", &a]).ok();
    assert_eq!(status(&a), "absent");
    assert!(
        !Path::new(PROFILES).join(&a).exists(),
        "the host profile is gone"
    );
    assert_eq!(pid(&b), b_pid, "the other container is untouched");
    assert!(profile(&b).is_some());
    fx.inx(&["destroy", "--force", &a]).code(3);
    assert_eq!(
        row(&fx.inx(&["--json", "list"]).ok().json(), &a)["state"],
        "missing"
    );
}

/// An instance with the same name that inx does not manage is never touched.
#[test]
fn an_unmanaged_instance_is_left_alone() {
    let _host = host!("unmanaged");
    let fx = Fixture::new("foreign");
    let web = fx.name("web");
    let made = std::process::Command::new("incus")
        .args(["create", "--empty", &web, "-c", "user.note=mine"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let before = instance(&web).unwrap()["config"].clone();
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);

    fx.inx(&["up"]).code(8).stderr_has("does not manage");
    fx.inx(&["start", &web]).code(8);
    fx.inx(&["exec", &web, "--", "true"]).code(8);
    fx.inx(&["destroy", "--force", &web]).code(8);
    assert_eq!(
        instance(&web).unwrap()["config"],
        before,
        "config untouched"
    );
    assert_eq!(status(&web), "Stopped");
    assert!(
        !Path::new(PROFILES).join(&web).exists(),
        "no profile made for it"
    );
    assert_eq!(
        row(&fx.inx(&["--json", "list"]).ok().json(), &web)["state"],
        "conflict"
    );
}

/// Each kind of bad input gets its exit code and a clear message, and changes nothing.
#[test]
fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let _host = host!("bad_input");
    let fx = Fixture::new("bad");
    let web = fx.name("web");
    let untouched = || {
        assert_eq!(status(&web), "absent");
        assert!(!Path::new(PROFILES).join(&web).exists());
    };
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);

    fx.inx(&["up", "Bad_Name"])
        .code(3)
        .stderr_has("invalid container name");
    fx.inx(&["up", "e2e-bad-nope"])
        .code(3)
        .stderr_has("not declared");
    fx.inx_with(&["up"], |c| {
        c.args(["--flake", "/nonexistent/inx-e2e"]);
    })
    .code(4);
    untouched();

    std::fs::write(fx.user_dir().join("flake.nix"), "{ outputs = _: { }; }\n").unwrap();
    fx.inx(&["up"])
        .code(4)
        .stderr_has("has no inxContainers output");
    fx.declare(&[(&web, "throw \"inx-e2e-boom\"")]);
    fx.inx(&["up"]).code(4).stderr_has("inx-e2e-boom");
    fx.write_flake(&format!(
        "        {web} = {{ inxManifest = {{ schemaVersion = 99; }}; }};\n"
    ));
    fx.inx(&["up"]).code(10).stderr_has("schema version 99");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = broken; }")]);
    fx.inx(&["up"]).code(5).stderr_has("failing on purpose");
    untouched();

    // Missing tools, a daemon that is down or refuses: only what inx needs is on PATH.
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    let bin = fx.path().join("only-incus");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(which::which("incus").unwrap(), bin.join("incus")).unwrap();
    fx.inx_with(&["up"], |c| {
        c.env("PATH", &bin);
    })
    .code(6)
    .stderr_has("`nix` is not installed");
    let bin = fx.path().join("only-nix");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["nix", "nix-store", "nix-env", "git"] {
        std::os::unix::fs::symlink(which::which(tool).unwrap(), bin.join(tool)).unwrap();
    }
    fx.inx_with(&["up"], |c| {
        c.env("PATH", &bin);
    })
    .code(6)
    .stderr_has("`incus` is not installed");
    fx.inx_with(&["up"], |c| {
        c.env("INCUS_DIR", "/nonexistent/inx-e2e");
    })
    .code(7)
    .stderr_has("not running");
    // A user the daemon refuses (nobody, no incus group).
    // exec takes no host lock, so nobody gets as far as Incus.
    let refused = fx.inx_with(&["exec", &web, "--", "true"], |c| {
        let inx = env!("CARGO_BIN_EXE_inx");
        *c = std::process::Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            inx,
            "exec",
            &web,
            "--",
            "true",
        ])
        .env("HOME", "/tmp")
        .stdin(std::process::Stdio::null());
    });
    refused.code(7).stderr_has("refused");
    untouched();
}

/// --dry-run prints the plan and changes nothing; a plan carried out only in part (an
/// interrupted up) is finished by the next `up`.
#[test]
fn dry_run_changes_nothing_and_an_interrupted_up_is_finished() {
    let _host = host!("dry_run");
    let fx = Fixture::new("dry");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    let plan = fx.inx(&["--dry-run", "up"]).ok().stdout;
    assert!(
        plan.contains(&format!("incus --project default create --empty {web}")),
        "{plan}"
    );
    assert_eq!(status(&web), "absent");
    assert!(!Path::new(PROFILES).join(&web).exists());

    // Carry out the plan by hand up to, not including, the start: as if inx died there.
    let json = fx.inx(&["--dry-run", "--json", "up"]).ok().json();
    for step in json["steps"].as_array().unwrap() {
        if step["what"] == "start" {
            break;
        }
        if let Some(dir) = step["create_dir"].as_str() {
            std::fs::create_dir_all(dir).unwrap();
            continue;
        }
        let run = &step["run"];
        let mut cmd = std::process::Command::new(run["program"].as_str().unwrap());
        cmd.args(
            run["args"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap()),
        );
        let input = run["stdin"].as_str().unwrap_or("");
        let out = harness::output_with_input(&mut cmd, input);
        assert!(out.status.success(), "step {step}");
    }
    assert_eq!(status(&web), "Stopped");
    let rest = fx.inx(&["--dry-run", "--json", "up"]).ok().json();
    let whats: Vec<&str> = rest["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["start"], "only the start is left");
    fx.up(&[]);
    assert_eq!(status(&web), "Running");

    let (_, v1) = profile(&web).unwrap();
    wait_active(&web, &v1);
    let init = pid(&web);
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"2\"; }")]);
    let plan = fx.inx(&["--dry-run", "up"]).ok().stdout;
    assert!(plan.contains("switch-to-configuration switch"), "{plan}");
    assert_eq!(profile(&web).unwrap(), (1, v1.clone()), "profile unchanged");
    assert_eq!(pid(&web), init);
    assert_eq!(sh_out(&web, "readlink /run/current-system"), v1);
}

/// exec runs with the system's PATH and passes the exit code on; shell is a login shell.
#[test]
fn exec_passes_exit_codes_on_shell_runs_commands_and_a_stopped_container_is_refused() {
    let _host = host!("exec");
    let fx = Fixture::new("exec");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, system) = profile(&web).unwrap();
    wait_active(&web, &system);
    let out = fx
        .inx(&["exec", &web, "--", "cat", "/var/lib/inx-test/activations"])
        .ok();
    assert_eq!(out.stdout.trim(), "activate 1");
    fx.inx(&["exec", &web, "--", "sh", "-c", "exit 7"]).code(7);
    let shell = fx.inx_with(&["shell", &web], |c| {
        let mut child_stdin = tempfile::tempfile().unwrap();
        use std::io::{Seek, Write};
        child_stdin
            .write_all(b"echo shell-ok $((6 * 7))\nexit\n")
            .unwrap();
        child_stdin.rewind().unwrap();
        c.stdin(child_stdin);
    });
    let shell = shell.ok();
    assert!(
        shell.stdout.contains("shell-ok 42"),
        "stdout:\n{}\nstderr:\n{}",
        shell.stdout,
        shell.stderr
    );
    fx.inx(&["stop", &web]).ok();
    fx.inx(&["exec", &web, "--", "true"])
        .code(3)
        .stderr_has("not running");
}

/// Right after `up`, before the container's init has linked /run/current-system (here its
/// activation first sleeps 3 s), `exec` and `shell` wait for it instead of failing to find
/// the command.
#[test]
fn exec_and_shell_right_after_up_wait_for_the_system_to_be_activated() {
    let _host = host!("exec_and_shell_right_after_up_wait_for_the_system_to_be_activated");
    let fx = Fixture::new("execwait");
    let web = fx.name("web");
    fx.declare(&[(
        &web,
        "inx.lib.mkContainer { toplevel = sysWith \"1\" \"sleep 3\"; }",
    )]);
    fx.up(&[]);
    let out = fx
        .inx(&["exec", &web, "--", "cat", "/var/lib/inx-test/activations"])
        .ok();
    assert_eq!(out.stdout.trim(), "activate 1");
    fx.inx(&["restart", &web]).ok();
    let shell = fx.inx_with(&["shell", &web], |c| {
        let mut child_stdin = tempfile::tempfile().unwrap();
        use std::io::{Seek, Write};
        child_stdin.write_all(b"echo shell-ok\nexit\n").unwrap();
        child_stdin.rewind().unwrap();
        c.stdin(child_stdin);
    });
    assert!(shell.ok().stdout.contains("shell-ok"));
}

/// Instance settings from the flake: live keys and devices apply without a restart; a key
/// that acts only at start restarts the container, and its files survive.
#[test]
fn incus_settings_apply_live_or_with_a_restart() {
    let _host = host!("settings");
    let fx = Fixture::new("settings");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, system) = profile(&web).unwrap();
    wait_active(&web, &system);
    sh_out(&web, "echo kept > /root/keep");
    let init = pid(&web);

    let data = fx.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("hello"), "from the host").unwrap();
    let live = format!(
        "inx.lib.mkContainer {{ toplevel = sys \"1\"; incus.config.\"user.note\" = \"hello\"; incus.config.\"limits.processes\" = 500; incus.devices.data = {{ type = \"disk\"; source = \"{}\"; path = \"/mnt/data\"; }}; }}",
        data.display()
    );
    fx.declare(&[(&web, &live)]);
    fx.up(&[]);
    assert_eq!(pid(&web), init, "live settings need no restart");
    assert_eq!(config(&web, "user.note").as_deref(), Some("hello"));
    assert_eq!(config(&web, "limits.processes").as_deref(), Some("500"));
    assert_eq!(sh_out(&web, "cat /mnt/data/hello"), "from the host");

    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; incus.config.\"security.syscalls.deny_compat\" = true; }")]);
    fx.up(&[]).stderr_has("stop");
    assert_ne!(pid(&web), init, "restarted for a start-time key");
    assert_eq!(
        config(&web, "security.syscalls.deny_compat").as_deref(),
        Some("true")
    );
    assert_eq!(
        config(&web, "user.note"),
        None,
        "a key no longer declared is removed"
    );
    wait_active(&web, &system);
    assert_eq!(
        sh_out(&web, "cat /root/keep"),
        "kept",
        "the root filesystem survives"
    );
    assert_eq!(
        sh(&web, "test -e /mnt/data/hello").status.code(),
        Some(1),
        "the device is gone"
    );
}

/// Two inx at once: the second is refused while the first holds the host lock.
#[test]
fn a_second_inx_is_refused_while_the_first_holds_the_host_lock() {
    let _host = host!("lock");
    let fx = Fixture::new("lock");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    std::fs::create_dir_all(PROFILES).unwrap();
    let held = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(Path::new(PROFILES).join(".lock"))
        .unwrap();
    held.try_lock().expect("the lock is free");
    fx.inx_no_wait(&["up"]).code(9).stderr_has("another inx");
    assert_eq!(status(&web), "absent");
    drop(held);
    fx.up(&[]);
    assert_eq!(status(&web), "Running");
}

/// `--project`: the instance lives in that Incus project, its profile in the project's own
/// directory, and the default project sees nothing of it.
#[test]
fn a_project_keeps_its_containers_and_profiles_apart() {
    let _host = host!("project");
    let fx = Fixture::new("project");
    let web = fx.name("web");
    let project = "inx-e2e";
    let incus = |args: &[&str]| incus_with(None, args);
    // A leftover of an earlier, failed run goes first.
    test_project(project, &web, None);
    let dir = Path::new(PROFILES)
        .join(".projects")
        .join(project)
        .join(&web);
    let _ = std::fs::remove_dir_all(&dir);
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);

    fx.inx(&["--project", project, "up"]).ok();
    let listed = incus(&["--project", project, "list", "--format", "json"]);
    let instances: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let instance = instances.iter().find(|i| i["name"] == web.as_str());
    assert_eq!(
        instance.map(|i| &i["status"]),
        Some(&serde_json::json!("Running")),
        "{instances:#?}"
    );
    assert_eq!(status(&web), "absent", "nothing in the default project");
    assert!(
        dir.join("system").exists(),
        "the profile is under .projects/{project}/"
    );
    assert!(!Path::new(PROFILES).join(&web).exists());
    let list = fx
        .inx(&["--project", project, "--json", "list"])
        .ok()
        .json();
    assert_eq!(row(&list, &web)["state"], "running");
    assert_eq!(
        row(&fx.inx(&["--json", "list"]).ok().json(), &web)["state"],
        "missing"
    );

    fx.inx(&["--project", project, "destroy", "--force", &web])
        .ok();
    assert!(!dir.exists());
    let gone = incus(&["--project", project, "list", "--format", "json"]);
    assert!(!String::from_utf8_lossy(&gone.stdout).contains(&web));
    incus(&["project", "delete", project]);
}

/// inx reads the client's remotes as the installed Incus lists them (Incus 6 lists `Addr`,
/// 7.0.1 and later `Addrs` and `LastWorkingAddr`): `image publish` to a read-only image server
/// and to the local server are refused with each one's address, before anything is built.
#[test]
fn the_clients_remotes_are_read_as_this_incus_lists_them() {
    let _host = host!("remotes");
    let fx = Fixture::new("remotes");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    // A client config of the test's own: root's remotes stay as they are. An image server
    // is added without contacting it.
    let conf = fx.path().join("incus-client");
    std::fs::create_dir_all(&conf).unwrap();
    let url = "https://127.0.0.1:9/inx-e2e-streams";
    let added = incus_with(
        Some(&conf),
        &[
            "remote",
            "add",
            "inx-e2e-ss",
            url,
            "--protocol",
            "simplestreams",
        ],
    );
    assert!(added.status.success(), "{added:?}");
    let publish = |remote: &str| {
        fx.inx_with(&["image", "publish", &web, "--remote", remote], |c| {
            c.env("INCUS_CONF", &conf);
        })
    };
    publish("inx-e2e-ss").code(3).stderr_has(&format!(
        "remote inx-e2e-ss is a read-only simplestreams server ({url})"
    ));
    publish("local")
        .code(3)
        .stderr_has("remote local (unix://) is not reached over HTTPS");
}
