//! `inx image build` and `inx image import` against the local Incus: the files and the
//! fingerprint, a no-op second import, a launch, and an alias that moves only once the new
//! image is in.

use super::bed::*;
use std::path::Path;
use std::process::Command;

fn sha256_of(files: &[&Path]) -> String {
    let mut cmd = String::from("cat");
    for f in files {
        cmd.push(' ');
        cmd.push_str(&f.display().to_string());
    }
    let out = Command::new("sh")
        .args(["-c", &format!("{cmd} | sha256sum")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// `inx image build` prints the files and the fingerprint Incus computes; `import` puts the
/// image on the server, a second import is a no-op; a container launched from it boots
/// without the shared store.
#[test]
fn build_import_twice_and_launch() {
    let _host = host!("build_import_twice_and_launch", false);
    let mut bed = Bed::new("img-import");
    let (meta, root, fp) = bed.build("web");
    assert!(meta.to_string_lossy().ends_with(".tar.xz") && meta.is_file());
    assert!(root.to_string_lossy().ends_with(".squashfs") && root.is_file());
    assert_eq!(fp, sha256_of(&[&meta, &root]));
    // The files are handed over with links that are GC roots, as `nix build`'s result is.
    let links = bed.dir("result-image-web");
    let roots = must("nix-store", &["--gc", "--print-roots"], &[]);
    for (link, file) in [("metadata", &meta), ("rootfs", &root)] {
        let at = links.join(link);
        let target = std::fs::read_link(&at).unwrap();
        assert!(
            file.starts_with(&target),
            "{} -> {}",
            at.display(),
            target.display()
        );
        assert!(
            roots.contains(&format!("{} -> {}", at.display(), target.display())),
            "{} is a GC root:\n{roots}",
            at.display()
        );
    }
    bed.image("incus", &fp);

    let first = bed
        .inx(&["image", "import", "web", "--alias", "img-import-web"])
        .ok();
    assert_eq!(first.stdout.trim(), fp);
    let images = server_images("incus", "", &[]);
    let ours = with_fingerprint(&images, &fp);
    assert_eq!(ours.len(), 1);
    assert_eq!(aliases_of(ours[0]), ["img-import-web"]);
    assert_eq!(ours[0]["public"], false);

    let again = bed
        .inx(&["image", "import", "web", "--alias", "img-import-web"])
        .ok()
        .stderr_has("nothing to do");
    assert_eq!(again.stdout.trim(), fp);
    assert!(
        !again.stderr.contains("import the container image"),
        "{}",
        again.stderr
    );
    let images = server_images("incus", "", &[]);
    assert_eq!(
        with_fingerprint(&images, &fp).len(),
        1,
        "one image after two imports"
    );

    // A dry run of a change prints it and changes nothing.
    let dry = bed
        .inx(&[
            "--dry-run",
            "image",
            "import",
            "web",
            "--alias",
            "img-import-web",
            "--public",
        ])
        .ok();
    assert!(
        dry.stdout.contains("incus query -X PATCH"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        with_fingerprint(&server_images("incus", "", &[]), &fp)[0]["public"],
        false
    );

    let c = bed.instance("incus", "img-import-c");
    must("incus", &["launch", "img-import-web", &c], &[]);
    assert_boots_from_image("incus", &c, &bed.system("v1"));
}

/// A new build takes the alias over only once it is on the server: when its import fails,
/// the alias stays on the image that had it; when it succeeds, the alias moves to it and the
/// old image stays, without the alias.
#[test]
fn the_alias_moves_only_once_the_new_image_is_in() {
    let _host = host!("the_alias_moves_only_once_the_new_image_is_in", false);
    let mut bed = Bed::new("img-move");
    let (_, _, old) = bed.build("web");
    let (_, _, new) = bed.build("web2");
    let (_, _, junk) = bed.build("junk");
    for fp in [&old, &new, &junk] {
        bed.image("incus", fp);
    }
    bed.inx(&["image", "import", "web", "--alias", "img-move-web"])
        .ok();

    bed.inx(&["image", "import", "junk", "--alias", "img-move-web"])
        .code(1)
        .stderr_has("incus image import");
    let images = server_images("incus", "", &[]);
    assert!(with_fingerprint(&images, &junk).is_empty());
    assert_eq!(
        aliases_of(with_fingerprint(&images, &old)[0]),
        ["img-move-web"],
        "a failed import leaves the alias where it was"
    );

    bed.inx(&["image", "import", "web2", "--alias", "img-move-web"])
        .ok()
        .stderr_has("move alias img-move-web");
    let images = server_images("incus", "", &[]);
    assert_eq!(
        aliases_of(with_fingerprint(&images, &new)[0]),
        ["img-move-web"]
    );
    assert!(
        aliases_of(with_fingerprint(&images, &old)[0]).is_empty(),
        "the old image stays, without the alias"
    );
}
