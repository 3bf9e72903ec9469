//! `--backend lxd`: inx with Debian's LXD 5.0 (`lxc`), and LXD's client reading a
//! simplestreams tree.

use super::bed::*;
use std::process::{Command, Stdio};

/// With `--backend lxd`, inx drives Debian's LXD 5.0 (`lxc`): import, a no-op second import,
/// launch. LXD's client also reads the simplestreams tree (its `lxd.tar.xz` entries) and
/// launches from it.
#[test]
fn lxd_import_launch_and_simplestreams() {
    let _host = host!("lxd_import_launch_and_simplestreams", true);
    let mut bed = Bed::new("img-lxd");
    let (_, _, fp) = bed.build("web");
    bed.image("lxc", &fp);
    let _ = Command::new("lxc")
        .args(["image", "delete", &fp])
        .stderr(Stdio::null())
        .status();

    let first = bed
        .inx(&[
            "image",
            "import",
            "web",
            "--backend",
            "lxd",
            "--alias",
            "img-lxd-web",
        ])
        .ok();
    assert_eq!(first.stdout.trim(), fp);
    let images = server_images("lxc", "", &[]);
    assert_eq!(
        aliases_of(with_fingerprint(&images, &fp)[0]),
        ["img-lxd-web"]
    );
    bed.inx(&[
        "image",
        "import",
        "--backend",
        "lxd",
        "web",
        "--alias",
        "img-lxd-web",
    ])
    .ok()
    .stderr_has("local LXD server already has this image");
    assert_eq!(
        with_fingerprint(&server_images("lxc", "", &[]), &fp).len(),
        1
    );
    let c = bed.instance("lxc", "img-lxd-c");
    must("lxc", &["launch", "img-lxd-web", &c], &[]);
    assert_boots_from_image("lxc", &c, &bed.system("v1"));

    // The simplestreams tree, read by LXD's client.
    must("lxc", &["delete", "--force", &c], &[]);
    must("lxc", &["image", "delete", &fp], &[]);
    let tree = bed.dir("img-lxd-tree");
    bed.inx(&[
        "image",
        "simplestreams",
        "web",
        tree.to_str().unwrap(),
        "--alias",
        "img-lxd-ss",
    ])
    .ok();
    let server = StaticServer::start(&bed.dir("img-lxd-www"), bed.dir("img-lxd-server.log"));
    let conf = bed.dir("img-lxd-conf");
    std::fs::create_dir_all(&conf).unwrap();
    let env = [("LXD_CONF", conf.as_path())];
    must(
        "lxc",
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
    assert_eq!(
        with_fingerprint(&server_images("lxc", "img-ss:", &env), &fp).len(),
        1
    );
    let c2 = bed.instance("lxc", "img-lxd-ss-c");
    must("lxc", &["launch", "img-ss:img-lxd-ss", &c2], &env);
    assert_boots_from_image("lxc", &c2, &bed.system("v1"));
    assert!(
        server.fetched().contains("root.squashfs"),
        "{}",
        server.fetched()
    );
}
