//! `inx image`: argument handling and error paths against stand-ins.

use super::sandbox::*;
use predicates::prelude::*;
use serde_json::json;

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
