//! `--json`: one JSON document on stdout, an object whose first key is `schema` (docs/json.md).

use super::sandbox::*;
use serde_json::{json, Value};
use std::fs;
use std::os::unix::fs::symlink;
use std::time::Duration;

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
fn exec_shell_run_and_completions_refuse_json() {
    let sb = Sandbox::new();
    for args in [
        &["--json", "exec", "web", "--", "true"][..],
        &["--json", "--dry-run", "shell", "web"],
        &["--json", "run", "web", "--", "true"],
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
