//! inx without sudo: a member of incus-admin runs `up`, `list`, `exec`, an update in place,
//! `rollback` and `destroy`, on folders prepared as `nixosModules.host` prepares them
//! (lib/modules/inx.tmpfiles, applied with systemd-tmpfiles); the commands that need root say
//! so in one line. The user and the Incus socket's group come from the test host's provisioning.

use super::harness::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

const USER: &str = "inx-e2e-user";

/// Why this host cannot run the test, if it cannot: no such user, or it is not in
/// incus-admin, or the Incus socket is not that group's.
fn unready() -> Option<String> {
    let groups = Command::new("id").args(["-nG", USER]).output().ok()?;
    if !groups.status.success() {
        return Some(format!(
            "there is no user {USER} (scripts/provision-test-host.sh adds it)"
        ));
    }
    if !String::from_utf8_lossy(&groups.stdout)
        .split_whitespace()
        .any(|g| g == "incus-admin")
    {
        return Some(format!("{USER} is not in incus-admin"));
    }
    let socket = Command::new("stat")
        .args(["-c", "%G", "/var/lib/incus/unix.socket"])
        .output()
        .ok()?;
    let group = String::from_utf8_lossy(&socket.stdout).trim().to_string();
    (group != "incus-admin").then(|| {
        format!("Incus's socket belongs to {group:?}, not incus-admin (incusd --group incus-admin)")
    })
}

/// The host for a test that runs inx as the member, or `None` after a recorded skip (in CI a
/// failure) when the host or the member is not ready.
fn member_host(test: &str) -> Option<std::sync::MutexGuard<'static, ()>> {
    let guard = host(test)?;
    match unready() {
        Some(why) => {
            skip(test, &why);
            None
        }
        None => Some(guard),
    }
}

fn owner_group_mode(path: &Path) -> (u32, String, u32) {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let group = Command::new("stat")
        .args(["-c", "%G"])
        .arg(path)
        .output()
        .unwrap();
    (
        meta.uid(),
        String::from_utf8_lossy(&group.stdout).trim().to_string(),
        meta.mode() & 0o7777,
    )
}

#[test]
fn a_member_of_incus_admin_runs_inx_without_root_and_root_only_commands_say_so() {
    let Some(_host) = member_host("users") else {
        return;
    };
    // The folders as the host module makes them (and fixes them, on a host that had them).
    apply_tmpfiles();

    let fx = Fixture::new("users");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    // The flake is the user's own (Nix writes its flake.lock beside it).
    let chown = Command::new("chown")
        .args(["-R", USER])
        .arg(fx.user_dir())
        .status()
        .unwrap();
    assert!(chown.success());
    fx.inx_as(USER, &["up"]).ok();
    let (_, v1) = profile(&web).unwrap();
    wait_active(&web, &v1);
    let uid = Command::new("id").args(["-u", USER]).output().unwrap();
    let uid: u32 = String::from_utf8_lossy(&uid.stdout).trim().parse().unwrap();
    assert_eq!(
        owner_group_mode(&Path::new("/nix/var/nix/profiles/inx").join(&web)),
        (uid, "incus-admin".to_string(), 0o2770),
        "the profile folder is the user's, shared with incus-admin only"
    );

    let list = fx.inx_as(USER, &["--json", "list"]).ok().json();
    assert_eq!(row(&list, &web)["state"], "running");
    let version = fx
        .inx_as(
            USER,
            &[
                "exec",
                &web,
                "--",
                "/run/current-system/sw/bin/cat",
                "/run/current-system/nixos-version",
            ],
        )
        .ok();
    assert_eq!(version.stdout.trim(), "1");

    // An update in place, then a rollback, both as the user.
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"2\"; }")]);
    let init = pid(&web);
    fx.inx_as(USER, &["up"]).ok().stderr_has("in place");
    assert_eq!(pid(&web), init, "switched without a restart");
    assert_eq!(profile(&web).unwrap().0, 2);
    fx.inx_as(USER, &["rollback", &web]).ok();
    let (generation, system) = profile(&web).unwrap();
    assert_eq!(
        (generation, system.as_str()),
        (1, v1.as_str()),
        "back at generation 1"
    );
    assert_eq!(sh_out(&web, "readlink /run/current-system"), v1);

    // What reads every container's files needs root, and says so in one line.
    for args in [&["roots", "sync"][..], &["gc"][..]] {
        let refused = fx.inx_as(USER, args).code(12);
        let errors: Vec<&str> = refused
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "{}", refused.stderr);
        assert!(errors[0].contains("needs root"), "{}", refused.stderr);
    }

    fx.inx_as(USER, &["destroy", "--force", &web]).ok();
    assert!(instance(&web).is_none(), "the instance is gone");
    assert!(
        !Path::new("/nix/var/nix/profiles/inx").join(&web).exists(),
        "the profile is gone"
    );
}

/// Makes the folders as they are on a host where root ran inx before incus-admin owned them
/// (the group of everything under inx's folders back to root's).
fn as_before_the_group() {
    for dir in ["/nix/var/nix/profiles/inx", "/nix/var/nix/gcroots/inx"] {
        let done = Command::new("chgrp")
            .args(["-hR", "root", dir])
            .status()
            .unwrap();
        assert!(done.success(), "chgrp -hR root {dir}");
    }
}

fn apply_tmpfiles() {
    let rules = Path::new(env!("CARGO_MANIFEST_DIR")).join("lib/modules/inx.tmpfiles");
    let applied = Command::new("systemd-tmpfiles")
        .arg("--create")
        .arg(&rules)
        .output()
        .expect("systemd-tmpfiles runs");
    assert!(
        applied.status.success(),
        "{}",
        String::from_utf8_lossy(&applied.stderr)
    );
}

/// Root used inx first (a container, a throw-away run, a container in another project), all
/// made while the folders were root's group; then the host got the module's tmpfiles lines.
/// A member of incus-admin then updates root's container in place, runs a throw-away
/// container, takes and restores a snapshot, and works in the other project.
#[test]
fn a_member_takes_over_on_a_host_where_root_ran_inx_first() {
    let Some(_host) = member_host("users_after_root") else {
        return;
    };
    let project = "inx-e2e-users";
    let fx = Fixture::new("rootfirst");
    let web = fx.name("web");
    let other = fx.name("proj");
    test_project(project, &other, None);
    as_before_the_group();
    let decl = |v: &str| format!("inx.lib.mkContainer {{ toplevel = sys \"{v}\"; }}");
    fx.declare(&[(&web, &decl("1")), (&other, &decl("1"))]);
    fx.up(&[&web]);
    fx.inx(&["run", &web, "--", "/run/current-system/sw/bin/true"])
        .ok();
    fx.inx(&["--project", project, "up", &other]).ok();
    let group = |p: &Path| owner_group_mode(p).1;
    let runs = Path::new("/nix/var/nix/profiles/inx/.runs");
    assert_eq!(group(runs), "root", "made by root before the group");
    // A user inside the container has a profile of their own in the bound folder (uid 1000,
    // as the shifted mount shows it on the host): it stays theirs.
    let theirs = Path::new(PROFILES).join(&web).join("per-user/alice");
    std::fs::create_dir_all(&theirs).unwrap();
    let chowned = Command::new("chown")
        .args(["-R", "1000:1000"])
        .arg(theirs.parent().unwrap())
        .status()
        .unwrap();
    assert!(chowned.success());

    apply_tmpfiles();
    assert_eq!(group(runs), "incus-admin");
    assert_eq!(group(&Path::new(PROFILES).join(&web)), "incus-admin");
    let (uid, _, _) = owner_group_mode(&theirs);
    let gid = std::fs::metadata(&theirs).unwrap().gid();
    assert_eq!(
        (uid, gid),
        (1000, 1000),
        "a container user's profile kept its owner"
    );
    // A member cannot remove another uid's files (`destroy` as the member would fail on
    // them: see docs/commands.md); this test's stand-in for them goes now.
    std::fs::remove_dir_all(theirs.parent().unwrap()).unwrap();
    let chown = Command::new("chown")
        .args(["-R", USER])
        .arg(fx.user_dir())
        .status()
        .unwrap();
    assert!(chown.success());

    // Root's container, updated in place by the member.
    fx.declare(&[(&web, &decl("2")), (&other, &decl("2"))]);
    fx.inx_as(USER, &["up", &web]).ok().stderr_has("in place");
    assert_eq!(profile(&web).unwrap().0, 2);
    fx.inx_as(
        USER,
        &["run", &web, "--", "/run/current-system/sw/bin/true"],
    )
    .ok();
    fx.inx_as(USER, &["snapshot", &web, "s1"]).ok();
    fx.inx_as(USER, &["restore", &web, "s1"]).ok();
    assert_eq!(status(&web), "Running");
    fx.inx_as(USER, &["--project", project, "up", &other])
        .ok()
        .stderr_has("in place");
    fx.inx_as(USER, &["--project", project, "destroy", "--force", &other])
        .ok();
    fx.inx_as(USER, &["destroy", "--force", &web]).ok();
    assert!(instance(&web).is_none());
}
