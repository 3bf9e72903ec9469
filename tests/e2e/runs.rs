//! Throw-away containers: `inx run NAME [-- CMD]` boots a fresh ephemeral instance of a
//! declared container's system beside it, passes the exit code through, and leaves nothing
//! behind: no instance, no profile, no lock, also after a kill (the next changing inx removes
//! them).

use super::harness::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn a_run_boots_the_declared_system_passes_its_exit_code_and_leaves_nothing() {
    let _host = host!("runs");
    let fx = Fixture::new("runs");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    let runs = format!("{web}-run-");

    // The declared container need not exist.
    let ran = fx
        .inx(&[
            "run",
            &web,
            "--",
            "/run/current-system/sw/bin/cat",
            "/run/current-system/nixos-version",
        ])
        .ok();
    assert_eq!(ran.stdout.trim(), "1");
    assert!(
        instance(&web).is_none(),
        "the declared container is not made"
    );
    assert_eq!(leftovers(&runs), Vec::<String>::new());

    fx.inx(&[
        "run",
        &web,
        "--",
        "/run/current-system/sw/bin/sh",
        "-c",
        "exit 7",
    ])
    .code(7);
    assert_eq!(leftovers(&runs), Vec::<String>::new());

    // Two at once, beside the running declared container, which they leave alone.
    fx.up(&[]);
    let init = pid(&web);
    let inx = env!("CARGO_BIN_EXE_inx");
    let flake = fx.user_dir();
    let spawn = || {
        Command::new(inx)
            .args(["--flake"])
            .arg(&flake)
            .args([
                "run",
                &web,
                "--",
                "/run/current-system/sw/bin/sh",
                "-c",
                "sleep 2; hostname",
            ])
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    for out in [&a, &b] {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout)
            .trim()
            .starts_with(&runs));
    }
    assert_ne!(a.stdout, b.stdout, "each run has a name of its own");
    assert_eq!(pid(&web), init, "the declared container keeps running");
    assert_eq!(leftovers(&runs), Vec::<String>::new());
}

#[test]
fn a_killed_run_is_removed_by_the_next_changing_inx() {
    let _host = host!("runs_killed");
    let fx = Fixture::new("runskill");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    let runs = format!("{web}-run-");
    let mut child = Command::new(env!("CARGO_BIN_EXE_inx"))
        .args(["--flake"])
        .arg(fx.user_dir())
        .args(["run", &web, "--", "/run/current-system/sw/bin/sleep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Until its instance runs.
    let deadline = Instant::now() + Duration::from_secs(60);
    let run = loop {
        let running: Vec<String> = leftovers(&runs)
            .into_iter()
            .filter_map(|l| l.strip_prefix("instance ").map(str::to_string))
            .collect();
        if let Some(name) = running.first().filter(|n| status(n) == "Running") {
            break name.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the run did not start: {:?}",
            leftovers(&runs)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(instance(&run).is_some(), "a killed inx leaves its run");
    assert!(Path::new(RUNS).join(&run).exists());

    fx.up(&[]).stderr_has("gone");
    assert_eq!(leftovers(&runs), Vec::<String>::new());
}

/// A run killed before Incus made its instance leaves only its folder and lock: the next
/// changing inx removes them without an error (there is no instance to delete), and does
/// not try again and again.
#[test]
fn a_run_killed_before_its_instance_existed_is_removed_without_an_error() {
    let _host = host!("runs_killed_before_create");
    let fx = Fixture::new("runsearly");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    // As a killed `inx run` leaves it: the folder and a lock nobody holds, no instance.
    let run = format!("{web}-run-999999");
    std::fs::create_dir_all(Path::new(RUNS).join(&run)).unwrap();
    std::fs::write(Path::new(RUNS).join(format!("{run}.lock")), "").unwrap();
    assert!(instance(&run).is_none());
    let first = fx.up(&[]);
    assert!(
        !first.stderr.contains("error"),
        "the sweep failed:\n{}",
        first.stderr
    );
    assert!(!Path::new(RUNS).join(&run).exists(), "{}", first.stderr);
    assert!(!fx.up(&[]).stderr.contains(&run), "swept once, not again");
}

#[test]
fn ctrl_c_ends_the_runs_command_and_the_run_is_removed() {
    use std::os::unix::process::CommandExt;
    let _host = host!("runs_ctrl_c");
    let fx = Fixture::new("runsint");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    let runs = format!("{web}-run-");
    // In a process group of its own, as a shell starts a job; the group gets the SIGINT, as
    // from a terminal.
    let child = Command::new(env!("CARGO_BIN_EXE_inx"))
        .args(["--flake"])
        .arg(fx.user_dir())
        .args(["run", &web, "--", "/run/current-system/sw/bin/sleep", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !leftovers(&runs)
        .iter()
        .filter_map(|l| l.strip_prefix("instance "))
        .any(|n| status(n) == "Running")
    {
        assert!(Instant::now() < deadline, "the run did not start");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Give `incus exec` a moment to attach before the signal.
    std::thread::sleep(Duration::from_secs(1));
    let signalled = Instant::now();
    let group = format!("-{}", child.id());
    // `--`: without it procps' kill does not read a negative number as a process group.
    assert!(Command::new("kill")
        .args(["-INT", "--", &group])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(30),
        "Ctrl-C did not end the command in the run"
    );
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(leftovers(&runs), Vec::<String>::new());
}
