//! Bad input to `inx image`: a clear error, its exit code, and nothing changed.

use super::bed::*;
use std::path::PathBuf;
use std::process::Command;

/// Bad input gets a clear error and its exit code, and changes nothing.
#[test]
fn bad_input_changes_nothing() {
    let _host = host!("bad_input_changes_nothing", false);
    let bed = Bed::new("img-bad");
    let before = server_images("incus", "", &[]).len();
    // A container without image outputs: exit 11, for every command.
    let tree = bed.dir("img-bad-tree");
    for args in [
        vec!["image", "build", "plain"],
        vec!["image", "import", "plain"],
        vec!["image", "build", "web", "--vm"],
        vec!["image", "export", "plain", tree.to_str().unwrap()],
        vec!["image", "simplestreams", "plain", tree.to_str().unwrap()],
    ] {
        bed.inx(&args).code(11).stderr_has("has no");
    }
    assert!(!tree.exists());
    // Not declared, a bad alias, a missing remote: exit 3.
    bed.inx(&["image", "build", "nosuch"])
        .code(3)
        .stderr_has("not declared");
    bed.inx(&["image", "import", "web", "--alias", "../x"])
        .code(3)
        .stderr_has("invalid image alias");
    bed.inx(&["image", "import", "web", "img-nosuch:"])
        .code(3)
        .stderr_has("no remote named img-nosuch");
    // A folder that is not a tree of ours is left alone.
    std::fs::create_dir_all(tree.join("streams/v1")).unwrap();
    std::fs::write(tree.join("streams/v1/images.json"), "[]").unwrap();
    bed.inx(&["image", "simplestreams", "web", tree.to_str().unwrap()])
        .code(3)
        .stderr_has("not a simplestreams products file");
    assert_eq!(
        std::fs::read_to_string(tree.join("streams/v1/images.json")).unwrap(),
        "[]"
    );
    assert_eq!(std::fs::read_dir(&tree).unwrap().count(), 1);
    // A simplestreams tree that cannot be written: nothing half-written.
    let ro = bed.dir("img-bad-ro");
    std::fs::create_dir_all(&ro).unwrap();
    must(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "ro,size=1m",
            "img-bad-ro",
            ro.to_str().unwrap(),
        ],
        &[],
    );
    let guard = UnmountOnDrop(ro.clone());
    bed.inx(&[
        "image",
        "simplestreams",
        "web",
        ro.join("tree").to_str().unwrap(),
    ])
    .code(1)
    .stderr_has("nothing was written");
    assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 0);
    drop(guard);
    assert_eq!(
        server_images("incus", "", &[]).len(),
        before,
        "no image was added"
    );
}

struct UnmountOnDrop(PathBuf);

impl Drop for UnmountOnDrop {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}
