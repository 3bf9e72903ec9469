//! The commands on existing instances (`start`, `stop`, `exec`, `destroy`): the calls they
//! make, what they refuse, and how a failed step is reported.

use super::sandbox::*;
use predicates::prelude::*;
use serde_json::{json, Value};
use std::fs;

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

#[test]
fn start_without_names_is_a_usage_error() {
    let sb = Sandbox::new();
    sb.run(&["start"])
        .code(2)
        .stderr(predicate::str::contains("Usage"));
    assert!(sb.calls().is_empty());
}

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
            "incus [--project] [default] [stop] [web] [--timeout] [90]",
            "incus [--project] [default] [delete] [--force] [web]"
        ]
    );
    assert!(!profile.exists(), "the profile directory is removed");
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
        plan["steps"][0]["halt"]["clean"]["args"],
        json!(["--project", "default", "stop", "web", "--timeout", "90"])
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

#[test]
fn dry_run_of_run_prints_an_ephemeral_instance_its_command_and_its_removal() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let assert = sb
        .run(&["--dry-run", "run", "web", "--", "uname", "-a"])
        .code(0);
    let stdout = stdout_of(&assert);
    for expected in [
        "create --empty --ephemeral web-run-",
        "exec web-run-",
        "-- uname -a",
        "delete --force web-run-",
        "rm -rf ",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in:\n{stdout}");
    }
    assert_nothing_changed(&sb);
}
