//! `inx list`: declared and managed containers, as a table and as rows.

use super::sandbox::*;
use serde_json::{json, Value};

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
    // Names and placements only: `.host` of each manifest, never its toplevel.
    assert!(
        eval.ends_with("[--apply] [builtins.mapAttrs (_: c: (c.inxManifest or { }).host or null)]"),
        "list evaluates placements only: {eval}"
    );
}

#[test]
fn list_shows_a_container_without_its_host_profile_as_unprofiled() {
    for status in ["Running", "Stopped"] {
        let sb = Sandbox::new();
        sb.respond("nix", "eval", r#"{"web":null}"#, "", 0);
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
