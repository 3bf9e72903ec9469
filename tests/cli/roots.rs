//! `inx roots sync`, `inx roots watch` and `inx gc` (a sync, then `nix-collect-garbage`).

use super::sandbox::*;
use predicates::prelude::*;
use serde_json::json;
use std::fs;
use std::os::unix::fs::symlink;
use std::time::Duration;

#[test]
fn gc_syncs_then_hands_its_arguments_to_nix_collect_garbage() {
    let sb = Sandbox::new();
    sb.respond("incus", "list", "[]", "", 0);
    sb.run(&["gc", "--delete-older-than", "7d", "-v"]).code(0);
    // The listing and the server's own name (which cluster member it is) are read at the same
    // time; the collection comes last.
    let calls = sb.calls();
    assert_eq!(
        sorted(calls[..2].to_vec()),
        [
            "incus [list] [--all-projects] [--format] [json]",
            "incus [query] [/1.0]",
        ]
    );
    assert_eq!(
        calls[2..],
        ["nix-collect-garbage [--delete-older-than] [7d] [-v]"]
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
        sorted(sb.call_verbs()),
        ["incus list", "incus query"],
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
    assert_eq!(sorted(sb.call_verbs()), ["incus list", "incus query"]);
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
