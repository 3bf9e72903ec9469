//! `inx image publish` to an Incus server on 127.0.0.1.

use super::bed::*;
use std::process::Command;

/// `publish` puts the image on an Incus server on 127.0.0.1 as a public image; a client that
/// adds the server with `--public` lists it and launches from it. A server that no longer
/// trusts the client refuses, and nothing is added.
#[test]
fn publish_to_a_server_on_loopback() {
    let _host = host!("publish_to_a_server_on_loopback", false);
    let mut bed = Bed::new("img-publish");
    let before = must("incus", &["config", "get", "core.https_address"], &[])
        .trim()
        .to_string();
    if before.is_empty() {
        free_port(INCUS_PORT);
    }
    let address = if before.is_empty() {
        must(
            "incus",
            &[
                "config",
                "set",
                "core.https_address",
                &format!("127.0.0.1:{INCUS_PORT}"),
            ],
            &[],
        );
        bed.undo.push(Box::new(|| {
            let _ = Command::new("incus")
                .args(["config", "unset", "core.https_address"])
                .status();
        }));
        format!("127.0.0.1:{INCUS_PORT}")
    } else {
        before.clone()
    };
    let url = format!("https://{address}");
    // A client of its own: its remotes and certificate stay in this test's folder.
    let conf = bed.dir("img-incus-conf");
    std::fs::create_dir_all(&conf).unwrap();
    let env = [("INCUS_CONF", conf.as_path())];
    let token = must(
        "incus",
        &["config", "trust", "add", "img-publish-client", "--quiet"],
        &[],
    );
    must(
        "incus",
        &[
            "remote",
            "add",
            "img-pub",
            &url,
            "--accept-certificate",
            "--token",
            token.trim(),
        ],
        &env,
    );
    let cert_fp = || -> Option<String> {
        let list: Vec<serde_json::Value> = serde_json::from_str(&must(
            "incus",
            &["config", "trust", "list", "--format", "json"],
            &[],
        ))
        .unwrap();
        list.iter()
            .find(|c| c["name"] == "img-publish-client")
            .map(|c| c["fingerprint"].as_str().unwrap().to_string())
    };
    bed.undo.push(Box::new(move || {
        if let Some(fp) = cert_fp() {
            let _ = Command::new("incus")
                .args(["config", "trust", "remove", &fp])
                .status();
        }
    }));
    must(
        "incus",
        &[
            "remote",
            "add",
            "img-view",
            &url,
            "--accept-certificate",
            "--public",
        ],
        &env,
    );

    let (_, _, fp) = bed.build("web");
    bed.image("incus", &fp);
    let published = bed
        .inx_env(
            &[
                "image",
                "publish",
                "web",
                "--remote",
                "img-pub",
                "--alias",
                "img-publish-web",
            ],
            &env,
        )
        .ok()
        .stderr_has("--public");
    assert_eq!(published.stdout.trim(), fp);
    assert!(
        published
            .stderr
            .contains(&format!("remote add img-pub {url} --public")),
        "{}",
        published.stderr
    );

    // What a client that only adds the server as public sees.
    let seen = server_images("incus", "img-view:", &env);
    let ours = with_fingerprint(&seen, &fp);
    assert_eq!(
        ours.len(),
        1,
        "the public remote lists the image: {seen:#?}"
    );
    assert_eq!(ours[0]["public"], true);
    assert!(aliases_of(ours[0]).contains(&"img-publish-web".to_string()));
    let c = bed.instance("incus", "img-publish-c");
    must("incus", &["launch", "img-view:img-publish-web", &c], &env);
    assert_boots_from_image("incus", &c, &bed.system("v1"));

    // Publishing again changes nothing.
    bed.inx_env(
        &[
            "image",
            "publish",
            "web",
            "--remote",
            "img-pub",
            "--alias",
            "img-publish-web",
        ],
        &env,
    )
    .ok()
    .stderr_has("nothing to do");

    // Bad remotes: unknown, public-only (this client may not write), and one that refuses.
    bed.inx_env(&["image", "publish", "web", "--remote", "img-nosuch"], &env)
        .code(3)
        .stderr_has("knows no remote named img-nosuch");
    bed.inx_env(&["image", "publish", "web", "--remote", "img-view"], &env)
        .code(3)
        .stderr_has("--public");
    let (_, _, fp2) = bed.build("web2");
    bed.image("incus", &fp2);
    let trusted = must(
        "incus",
        &["config", "trust", "list", "--format", "json"],
        &[],
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(&trusted).unwrap();
    let client = list
        .iter()
        .find(|c| c["name"] == "img-publish-client")
        .unwrap();
    must(
        "incus",
        &[
            "config",
            "trust",
            "remove",
            client["fingerprint"].as_str().unwrap(),
        ],
        &[],
    );
    bed.inx_env(
        &[
            "image",
            "publish",
            "web2",
            "--remote",
            "img-pub",
            "--alias",
            "img-publish-web2",
        ],
        &env,
    )
    .code(7)
    .stderr_has("refused");
    let all = server_images("incus", "", &[]);
    assert!(
        with_fingerprint(&all, &fp2).is_empty(),
        "the refused image is not there"
    );
    assert!(
        !all.iter()
            .any(|i| aliases_of(i).contains(&"img-publish-web2".to_string())),
        "no alias was made"
    );
}
