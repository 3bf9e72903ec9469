//! `inx image simplestreams`: a tree served over HTTPS on 127.0.0.1 that Incus reads.

use super::bed::*;
use std::path::Path;
use std::process::{Command, Stdio};

fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The versions of the product `key` in a tree's images.json.
fn versions(tree: &Path, key: &str) -> Vec<String> {
    let images = read_json(&tree.join("streams/v1/images.json"));
    images["products"][key]["versions"]
        .as_object()
        .map(|v| v.keys().cloned().collect())
        .unwrap_or_default()
}

/// `simplestreams` writes a tree that an HTTPS server on 127.0.0.1 serves: Incus adds it as
/// a simplestreams remote, lists it and launches from it (downloading the files). A second
/// build is a second version, the first stays; the same build again changes nothing; a second
/// image is a second product.
#[test]
fn simplestreams_tree_served_on_loopback() {
    let _host = host!("simplestreams_tree_served_on_loopback", false);
    let mut bed = Bed::new("img-ss");
    let tree = bed.dir("img-ss-tree");
    let (_, _, fp1) = bed.build("web");
    let (_, _, fp2) = bed.build("web2");
    bed.image("incus", &fp1);
    bed.image("incus", &fp2);
    // Launching must download from the tree, so the server may not have the image already.
    for fp in [&fp1, &fp2] {
        let _ = Command::new("incus")
            .args(["image", "delete", fp])
            .stderr(Stdio::null())
            .status();
    }

    let v1 = bed
        .inx(&[
            "image",
            "simplestreams",
            "web",
            tree.to_str().unwrap(),
            "--alias",
            "img-ss-web",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(
        v1.len() >= 15 && v1[..8].chars().all(|c| c.is_ascii_digit()),
        "version {v1:?} starts with a date"
    );
    let product = "nixos:img-ss-web:x86_64";
    assert_eq!(versions(&tree, product), std::slice::from_ref(&v1));

    let server = StaticServer::start(&bed.dir("img-ss-www"), bed.dir("img-ss-server.log"));
    let conf = bed.dir("img-ss-incus-conf");
    std::fs::create_dir_all(&conf).unwrap();
    let env = [("INCUS_CONF", conf.as_path())];
    must(
        "incus",
        &[
            "remote",
            "add",
            "img-ss",
            &server.url(&tree),
            "--protocol",
            "simplestreams",
        ],
        &env,
    );
    let listed = server_images("incus", "img-ss:", &env);
    assert_eq!(with_fingerprint(&listed, &fp1).len(), 1, "{listed:#?}");
    let c = bed.instance("incus", "img-ss-c");
    must("incus", &["launch", "img-ss:img-ss-web", &c], &env);
    assert_boots_from_image("incus", &c, &bed.system("v1"));
    assert!(
        server.fetched().contains(&format!("{v1}/root.squashfs")),
        "{}",
        server.fetched()
    );

    // The same build again: nothing changes.
    let images_before = std::fs::read(tree.join("streams/v1/images.json")).unwrap();
    bed.inx(&[
        "image",
        "simplestreams",
        "web",
        tree.to_str().unwrap(),
        "--alias",
        "img-ss-web",
    ])
    .ok()
    .stderr_has("nothing to do");
    assert_eq!(
        std::fs::read(tree.join("streams/v1/images.json")).unwrap(),
        images_before
    );

    // A second build under the same alias: a second version; the first stays, files and all.
    let v2 = bed
        .inx(&[
            "image",
            "simplestreams",
            "web2",
            tree.to_str().unwrap(),
            "--alias",
            "img-ss-web",
        ])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert_ne!(v1, v2);
    let mut both = vec![v1.clone(), v2.clone()];
    both.sort();
    let mut have = versions(&tree, product);
    have.sort();
    assert_eq!(have, both);
    assert!(tree
        .join(format!("images/img-ss-web/x86_64/{v1}/root.squashfs"))
        .is_file());
    // A build that is there already is not added again, under any alias.
    bed.inx(&[
        "image",
        "simplestreams",
        "web",
        tree.to_str().unwrap(),
        "--alias",
        "img-ss-other",
    ])
    .ok()
    .stderr_has("nothing to do");
    // A second image is a second product; the first stays.
    let (_, _, fp3) = bed.build("web3");
    bed.inx(&[
        "image",
        "simplestreams",
        "web3",
        tree.to_str().unwrap(),
        "--alias",
        "img-ss-other",
    ])
    .ok();
    let index = read_json(&tree.join("streams/v1/index.json"));
    assert_eq!(
        index["index"]["images"]["products"],
        serde_json::json!([product, "nixos:img-ss-other:x86_64"])
    );
    assert_eq!(versions(&tree, product).len(), 2);

    // A client that has not cached the tree sees all builds, and the alias is the newer one.
    let conf2 = bed.dir("img-ss-incus-conf2");
    std::fs::create_dir_all(&conf2).unwrap();
    let env2 = [("INCUS_CONF", conf2.as_path())];
    must(
        "incus",
        &[
            "remote",
            "add",
            "img-ss",
            &server.url(&tree),
            "--protocol",
            "simplestreams",
        ],
        &env2,
    );
    let listed = server_images("incus", "img-ss:", &env2);
    assert_eq!(with_fingerprint(&listed, &fp1).len(), 1);
    assert_eq!(with_fingerprint(&listed, &fp2).len(), 1);
    assert_eq!(with_fingerprint(&listed, &fp3).len(), 1);
    let alias = must(
        "incus",
        &["image", "alias", "list", "img-ss:", "--format", "json"],
        &env2,
    );
    let alias: Vec<serde_json::Value> = serde_json::from_str(&alias).unwrap();
    let target = alias
        .iter()
        .find(|a| a["name"] == "img-ss-web")
        .expect("alias listed");
    assert_eq!(target["target"], fp2.as_str());

    // The generated JSON, with what differs per run filtered.
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"[0-9a-f]{64}", "[sha256]");
    settings.add_filter(r"\d{8}_\d{6}(_\d+)?", "[version]");
    settings.add_filter(r#""size": \d+"#, r#""size": [size]"#);
    settings.bind(|| {
        insta::assert_json_snapshot!(
            "simplestreams_images_json",
            read_json(&tree.join("streams/v1/images.json"))
        );
        insta::assert_json_snapshot!("simplestreams_index_json", index);
    });
}
