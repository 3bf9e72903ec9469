//! `inx image export`, and importing its folder by hand.

use super::bed::*;
use std::process::Command;

/// `export` writes the files and a text on importing them; importing them by hand with
/// `incus image import` gives the same image, which boots. Missing parent folders are made. A
/// folder that is taken or cannot be written is refused, and nothing is left behind.
#[test]
fn export_and_import_by_hand() {
    let _host = host!("export_and_import_by_hand", false);
    let mut bed = Bed::new("img-export");
    let (_, _, fp) = bed.build("web");
    bed.image("incus", &fp);
    let out = bed.dir("img-export-out");
    let run = bed
        .inx(&["image", "export", "web", out.to_str().unwrap()])
        .ok();
    assert_eq!(run.stdout.trim(), out.display().to_string());
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "IMPORT.txt",
            "SHA256SUMS",
            "metadata.tar.xz",
            "rootfs.squashfs"
        ]
    );
    let text = std::fs::read_to_string(out.join("IMPORT.txt")).unwrap();
    assert!(
        text.contains("incus image import metadata.tar.xz rootfs.squashfs"),
        "{text}"
    );
    assert!(
        text.contains("lxc image import metadata.tar.xz rootfs.squashfs"),
        "{text}"
    );
    assert!(text.contains(&fp), "{text}");
    let sums = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(sums.status.success(), "{sums:?}");

    // By hand, in the folder, as IMPORT.txt says.
    let by_hand = Command::new("incus")
        .args([
            "image",
            "import",
            "metadata.tar.xz",
            "rootfs.squashfs",
            "--alias",
            "img-export-web",
        ])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(by_hand.status.success(), "{by_hand:?}");
    assert!(
        String::from_utf8_lossy(&by_hand.stdout).contains(&fp),
        "{by_hand:?}"
    );
    let images = server_images("incus", "", &[]);
    assert_eq!(
        with_fingerprint(&images, &fp).len(),
        1,
        "imported by hand with the same fingerprint"
    );
    let c = bed.instance("incus", "img-export-c");
    must("incus", &["launch", "img-export-web", &c], &[]);
    assert_boots_from_image("incus", &c, &bed.system("v1"));

    // Into folders that do not exist yet: they are made, as `mkdir -p` does.
    let nested = bed.dir("img-export-new/a/out");
    bed.inx(&["image", "export", "web", nested.to_str().unwrap()])
        .ok();
    assert!(nested.join("rootfs.squashfs").is_file());
    assert!(nested.join("IMPORT.txt").is_file());

    // Taken: a folder with files in it is not written over.
    bed.inx(&["image", "export", "web", out.to_str().unwrap()])
        .code(3)
        .stderr_has("not empty");
    // Cannot be written: a read-only file system (root ignores permissions, not this).
    let ro = bed.dir("img-export-ro");
    std::fs::create_dir_all(&ro).unwrap();
    must(
        "mount",
        &[
            "-t",
            "tmpfs",
            "-o",
            "ro,size=1m",
            "img-export-ro",
            ro.to_str().unwrap(),
        ],
        &[],
    );
    let ro_unmount = ro.clone();
    bed.undo.push(Box::new(move || {
        let _ = Command::new("umount").arg(&ro_unmount).status();
    }));
    bed.inx(&["image", "export", "web", ro.join("out").to_str().unwrap()])
        .code(1)
        .stderr_has("Read-only file system")
        .stderr_has("nothing was written");
    assert_eq!(
        std::fs::read_dir(&ro).unwrap().count(),
        0,
        "nothing half-written"
    );
}
