//! `inx generations`, `inx rollback` and `inx diff`: what they refuse, and that they change
//! nothing then.

use super::sandbox::*;
use predicates::prelude::*;
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

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
    // Only reads: the client's current project (which project's profiles to look in) and the
    // listing that tells whether the container is on another host.
    assert!(
        sb.call_verbs()
            .iter()
            .all(|c| c == "incus project" || c == "incus list"),
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
