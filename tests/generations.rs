//! End to end: generations, rollback and diff, against real Nix profiles and real Incus.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

#[path = "e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{host, pid, profile, sh, sh_out, wait_active, Fixture};

macro_rules! host {
    ($test:expr) => {
        match host($test) {
            Some(guard) => guard,
            None => return,
        }
    };
}

/// The rows of `inx --json generations NAME` as (number, current, running, booted).
fn gens(fx: &Fixture, name: &str) -> Vec<(u64, bool, bool, bool)> {
    let out = fx.inx(&["--json", "generations", name]).ok().json();
    out["generations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["number"].as_u64().unwrap(),
                g["current"].as_bool().unwrap(),
                g["running"].as_bool().unwrap(),
                g["booted"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn rollback_switches_back_and_generations_show_it() {
    let _host = host!("rollback");
    let fx = Fixture::new("gen");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, v1) = profile(&web).unwrap();
    wait_active(&web, &v1);
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"2\"; }")]);

    // diff: what up would change, in Nix's words, and nothing changed by asking.
    let diff = fx.inx(&["diff", &web]).ok();
    assert!(
        diff.stdout.contains("inx-synthetic-system: 1 → 2"),
        "diff:\n{}",
        diff.stdout
    );
    // The same as JSON, each line of Nix's parsed.
    let json = fx.inx(&["--json", "diff", &web]).ok().json();
    let container = &json["containers"][0];
    assert_eq!(container["status"], "changed", "{json:#}");
    assert_eq!(container["from_system"], v1.as_str(), "{json:#}");
    let changes = container["changes"].as_array().unwrap();
    assert!(
        changes.iter().all(|c| c["package"].is_string()),
        "a line inx did not parse: {json:#}"
    );
    let system = changes
        .iter()
        .find(|c| c["package"] == "inx-synthetic-system")
        .unwrap_or_else(|| panic!("{json:#}"));
    assert_eq!(
        system["versions"],
        serde_json::json!({ "from": ["1"], "to": ["2"] })
    );
    assert_eq!(profile(&web).unwrap().0, 1, "diff changed the profile");

    fx.up(&[]);
    let (_, v2) = profile(&web).unwrap();
    wait_active(&web, &v2);
    let init = pid(&web);
    assert_eq!(
        fx.inx(&["diff", &web]).ok().stdout.trim(),
        format!("{web}: no change")
    );
    let json = fx.inx(&["--json", "diff", &web]).ok().json();
    assert_eq!(json["containers"][0]["status"], "unchanged", "{json:#}");
    assert_eq!(json["containers"][0]["to_system"], v2.as_str(), "{json:#}");
    // Booted 1, switched to 2 in place.
    assert_eq!(
        gens(&fx, &web),
        [(1, false, false, true), (2, true, true, false)]
    );
    let table = fx.inx(&["generations", &web]).ok().stdout;
    assert!(
        table.lines().nth(2).unwrap().ends_with("current,running"),
        "{table}"
    );

    // Back to 1, in place: same init, the old system's switch ran, generation 1 is current.
    fx.inx(&["rollback", &web])
        .ok()
        .stderr_has("switch to generation 1 in place");
    assert_eq!(pid(&web), init);
    assert_eq!(sh_out(&web, "readlink /run/current-system"), v1);
    assert_eq!(
        sh_out(&web, "tail -n 1 /var/lib/inx-test/switches"),
        "switch 1"
    );
    assert_eq!(profile(&web).unwrap(), (1, v1.clone()));
    assert_eq!(
        gens(&fx, &web),
        [(1, true, true, true), (2, false, false, false)]
    );
    assert_eq!(
        harness::config(&web, "user.inx.system").as_deref(),
        Some(v1.as_str())
    );
    fx.inx(&["rollback", &web])
        .code(3)
        .stderr_has("nothing to roll back to");

    // A stopped container boots the generation it is rolled to.
    fx.inx(&["stop", &web]).ok();
    fx.inx(&["rollback", &web, "--to", "2"])
        .ok()
        .stderr_has("boots generation 2 at its next start");
    // Recorded as deployed, so `list` does not call it drifted.
    assert_eq!(
        harness::config(&web, "user.inx.system").as_deref(),
        Some(v2.as_str())
    );
    fx.inx(&["start", &web]).ok();
    let list = fx.inx(&["--json", "list"]).ok().json();
    assert_eq!(harness::row(&list, &web)["drifted"], false);
    wait_active(&web, &v2);
    assert_eq!(
        gens(&fx, &web),
        [(1, false, false, false), (2, true, true, true)]
    );

    // Asking for what is not there changes nothing.
    fx.inx(&["rollback", &web, "--to", "7"])
        .code(3)
        .stderr_has("its generations: 1, 2");
    fx.inx(&["generations", "e2e-gen-none"])
        .code(3)
        .stderr_has("no generations");
    assert_eq!(profile(&web).unwrap(), (2, v2));
}

#[test]
fn a_system_set_inside_shows_as_drifted_and_up_switches_back() {
    let _host = host!("drift");
    let fx = Fixture::new("drift");
    let web = fx.name("web");
    // The system a `nixos-rebuild switch` inside would make: built here, then declared away.
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"9\"; }")]);
    fx.inx(&["diff", &web]).ok();
    let eval = std::process::Command::new("nix")
        .args(["eval", "--raw"])
        .arg(format!(
            "{}#inxContainers.{web}.inxManifest.toplevel",
            fx.user_dir().display()
        ))
        .output()
        .unwrap();
    assert!(eval.status.success(), "{eval:?}");
    let v9 = String::from_utf8(eval.stdout).unwrap();
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    fx.up(&[]);
    let (_, v1) = profile(&web).unwrap();
    wait_active(&web, &v1);

    // What a rebuild inside does: a new generation in the bound profile, then a switch.
    sh(&web, "echo rebuilt inside >/root/kept");
    let set = std::process::Command::new("nix-env")
        .args([
            "-p",
            &format!("{}/{web}/system", harness::PROFILES),
            "--set",
            &v9,
        ])
        .output()
        .unwrap();
    assert!(set.status.success(), "{set:?}");
    sh(
        &web,
        "/nix/var/nix/profiles/system/bin/switch-to-configuration switch",
    );
    wait_active(&web, &v9);
    let list = fx.inx(&["--json", "list"]).ok().json();
    let row = harness::row(&list, &web);
    assert_eq!(row["state"], "drifted", "{row}");
    assert_eq!(row["drifted"], true, "{row}");
    assert!(fx.inx(&["list"]).ok().stdout.contains("drifted"));

    // The next up deploys the flake's system again, in place, and keeps the container's files.
    let init = pid(&web);
    fx.up(&[]);
    wait_active(&web, &v1);
    assert_eq!(pid(&web), init);
    assert_eq!(profile(&web).unwrap(), (3, v1.clone()));
    assert_eq!(sh_out(&web, "cat /root/kept"), "rebuilt inside");
    let list = fx.inx(&["--json", "list"]).ok().json();
    let row = harness::row(&list, &web);
    assert_eq!(
        (row["state"].as_str(), row["drifted"].as_bool()),
        (Some("running"), Some(false)),
        "{row}"
    );
}
