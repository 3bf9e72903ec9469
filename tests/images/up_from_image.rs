//! `inx up` of a container made from its image (`fromImage = true` or `--from-image`).

use super::bed::*;
use super::harness;
use std::path::Path;
use std::process::{Command, Stdio};

/// `inx up` makes a container from its image when the flake says `fromImage = true` or with
/// `--from-image`: imported once, created from it, booted without the shared store, and no
/// host profile. A second `up` changes nothing; `destroy` removes it.
#[test]
fn up_from_image() {
    let _host = host!("up_from_image", false);
    let mut bed = Bed::new("img-up");
    let decl = bed.instance("incus", "img-up-decl");
    let flag = bed.instance("incus", "img-up-flag");
    let (_, _, fp1) = bed.build("img-up-decl");
    let (_, _, fp2) = bed.build("img-up-flag");
    bed.image("incus", &fp1);
    bed.image("incus", &fp2);
    for fp in [&fp1, &fp2] {
        let _ = Command::new("incus")
            .args(["image", "delete", fp])
            .stderr(Stdio::null())
            .status();
    }
    for name in [&decl, &flag] {
        let _ = std::fs::remove_dir_all(Path::new(harness::PROFILES).join(name));
    }

    let dry = bed.inx(&["--dry-run", "up", &decl]).ok();
    assert!(
        dry.stdout.contains("incus --project default create"),
        "{}",
        dry.stdout
    );
    assert_eq!(
        harness::status(&decl),
        "absent",
        "a dry run changes nothing"
    );

    bed.inx(&["up", &decl])
        .ok()
        .stderr_has("create the instance from its image");
    bed.inx(&["up", "--from-image", &flag]).ok();
    for (name, fp, system) in [
        (&decl, &fp1, bed.system("v1")),
        (&flag, &fp2, bed.system("v2")),
    ] {
        assert_eq!(
            harness::config(name, "user.inx.image").as_deref(),
            Some(fp.as_str())
        );
        assert!(
            !Path::new(harness::PROFILES).join(name).exists(),
            "no host profile for {name}"
        );
        assert_boots_from_image("incus", name, &system);
    }

    let again = bed.inx(&["-v", "up", &decl]).ok().stderr_has("up to date");
    assert!(
        !again
            .traced()
            .iter()
            .any(|c| c.contains("create") || c.contains("import")),
        "{:?}",
        again.traced()
    );
    // Without --from-image, the container made from its image is not turned into another.
    bed.inx(&["up", &flag])
        .code(3)
        .stderr_has("made from its image");

    let list = bed.inx(&["--json", "list"]).ok().json();
    assert_eq!(harness::row(&list, &decl)["state"], "running");
    bed.inx(&["destroy", "--force", &decl, &flag]).ok();
    assert_eq!(harness::status(&decl), "absent");
    assert_eq!(harness::status(&flag), "absent");
}
