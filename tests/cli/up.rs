//! `inx up`: what it gathers, plans and runs for a new container, and what stops it before
//! any change (a bad evaluation, an unknown schema, an instance inx does not manage, a failed
//! build, a held lock).

use super::sandbox::*;
use predicates::prelude::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::symlink;

#[test]
fn up_builds_profiles_creates_and_starts_a_new_container() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let assert = sb.run(&["up"]);
    if !host_has_nix_daemon("up_builds_profiles_creates_and_starts_a_new_container") {
        // No /nix/var/nix/daemon-socket: inx refuses before building anything.
        assert
            .code(6)
            .stderr(predicate::str::contains("daemon-socket does not exist"));
        assert_eq!(up_order(sb.call_verbs()), UP_GATHERING);
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

#[test]
fn dry_run_up_prints_the_plan_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.fresh_web();
    let assert = sb.run(&["--dry-run", "up"]).code(0);
    let stdout = stdout_of(&assert);
    sb.settings().bind(|| {
        insta::assert_snapshot!("dry_run_up_plan", stdout);
    });
    assert_eq!(up_order(sb.call_verbs()), UP_GATHERING);
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
    assert_eq!(up_order(sb.call_verbs()), UP_GATHERING);
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

        if !host_has_nix_daemon(
            "a_server_that_cannot_idmap_mounts_gets_a_warning_and_unshifted_binds",
        ) {
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
    assert_eq!(up_order(sb.call_verbs()), UP_GATHERING);
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
    assert_eq!(up_order(sb.call_verbs()), UP_GATHERING);
}

#[test]
fn unknown_manifest_schema_stops_before_any_change() {
    let sb = Sandbox::new();
    sb.eval_answers(one_container(99));
    sb.list_answers(json!([]));
    sb.run(&["up"])
        .code(10)
        .stderr(predicate::str::contains("schema version 99"));
    // Only the gathering ran: the evaluation and, beside it, the two queries.
    assert_eq!(up_order(sb.call_verbs()), UP_GATHERING);
}

#[test]
fn up_refuses_an_unmanaged_instance_of_the_same_name() {
    let sb = Sandbox::new();
    sb.eval_answers(one_container(1));
    sb.list_answers(unmanaged_web());
    sb.server_answers_idmap();
    sb.run(&["up"])
        .code(8)
        .stderr(predicate::str::contains("inx does not manage it"));
    assert_eq!(up_order(sb.call_verbs()), UP_GATHERING);
    assert!(!sb.profiles().join("web").exists());
}

#[test]
fn a_failed_build_changes_nothing() {
    let sb = Sandbox::new();
    sb.fresh_web();
    sb.respond("nix-store", "realise", "", "error: builder failed\n", 100);
    let assert = sb.run(&["up"]);
    if !host_has_nix_daemon("a_failed_build_changes_nothing") {
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

/// Without --project, the client's current project (`incus project switch`) is read once and
/// used for every incus call and for the profile directory, so a `web` in another project
/// never shares the default project's profile.
#[test]
fn the_clients_current_project_is_used_for_instances_and_profiles() {
    let sb = Sandbox::new();
    sb.fresh_web();
    sb.respond("incus", "project", "lab\n", "", 0);
    let assert = sb.run(&["up"]);
    if !host_has_nix_daemon("the_clients_current_project_is_used_for_instances_and_profiles") {
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
