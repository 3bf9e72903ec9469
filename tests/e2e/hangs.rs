//! A container that ignores the shutdown signal (a hung service, a stuck unmount): every
//! command that stops it returns in bounded time, says how it stopped, and a Ctrl-C frees the
//! terminal at once. The system is the synthetic one with `ignoreShutdown`: its init ignores
//! SIGPWR, SIGTERM and SIGINT, so only a kill stops it.

use super::harness::*;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HUNG: &str = r#"      hung = version:
        import ./synthetic-system.nix { inherit busybox version; ignoreShutdown = true; };
"#;

/// A fixture with a running hung container (and, with `also`, running ordinary ones).
fn running_hung(prefix: &str, also: &[&str]) -> (Fixture, String, Vec<String>) {
    let fx = Fixture::new(prefix);
    let hung = fx.name("hung");
    let others: Vec<String> = also.iter().map(|s| fx.name(s)).collect();
    let mut body =
        format!("        {hung} = inx.lib.mkContainer {{ toplevel = hung \"{prefix}\"; }};\n");
    for o in &others {
        body.push_str(&format!(
            "        {o} = inx.lib.mkContainer {{ toplevel = sys \"{prefix}\"; }};\n"
        ));
    }
    fx.write_flake_parts(HUNG, &body, "");
    fx.up(&[]);
    assert_eq!(status(&hung), "Running");
    (fx, hung, others)
}

/// Runs inx and returns what it said and how long it took.
fn timed(fx: &Fixture, args: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let run = fx.inx(args);
    (run, started.elapsed())
}

#[test]
fn stop_of_a_hung_container_kills_it_after_the_timeout_and_says_so() {
    let _host = host!("stop_hung_timeout");
    let (fx, hung, _) = running_hung("hangstop", &[]);
    let (run, took) = timed(&fx, &["stop", "--timeout", "3", &hung]);
    let run = run
        .ok()
        .stderr_has(&format!(
            "{hung}: not stopped cleanly within 3 s, killing it"
        ))
        .stderr_has(&format!("{hung}: stopped: killed after 3 s"));
    assert_eq!(status(&hung), "Stopped", "{}", run.stderr);
    // Bounded: the clean try's 3 s and the kill, nowhere near Incus's own ten minutes.
    assert!(took < Duration::from_secs(60), "took {took:?}");
}

#[test]
fn stop_force_kills_at_once_and_an_ordinary_container_stops_cleanly() {
    let _host = host!("stop_force");
    let (fx, hung, others) = running_hung("hangforce", &["ok"]);
    let ok = &others[0];
    fx.inx(&["stop", "--force", &hung])
        .ok()
        .stderr_has(&format!("{hung}: stopped: killed (--force)"));
    assert_eq!(status(&hung), "Stopped");
    fx.inx(&["stop", ok])
        .ok()
        .stderr_has(&format!("{ok}: stopped cleanly"));
    assert_eq!(status(ok), "Stopped");
    // --force with --timeout is a usage error, and nothing changes.
    fx.inx(&["up"]).ok();
    fx.inx(&["stop", "--force", "--timeout", "5", ok]).code(2);
    assert_eq!(status(ok), "Running");
}

/// `inx stop hung ok`: the hung container holds up only itself; the ordinary one is stopped
/// (and says so) while the hung one still waits.
#[test]
fn a_hung_container_does_not_hold_up_the_others_of_the_same_command() {
    let _host = host!("hung_does_not_block");
    let (fx, hung, others) = running_hung("hangothers", &["ok"]);
    let ok = &others[0];
    let run = fx.inx(&["stop", "--timeout", "4", &hung, ok]).ok();
    let clean = run
        .stderr
        .find(&format!("{ok}: stopped cleanly"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    let killed = run
        .stderr
        .find(&format!("{hung}: stopped: killed after 4 s"))
        .unwrap_or_else(|| panic!("{}", run.stderr));
    assert!(clean < killed, "{}", run.stderr);
    assert_eq!(
        (status(&hung), status(ok)),
        ("Stopped".into(), "Stopped".into())
    );
}

#[test]
fn restart_of_a_hung_container_kills_and_starts_it() {
    let _host = host!("restart_hung");
    let (fx, hung, _) = running_hung("hangrestart", &[]);
    let before = pid(&hung);
    fx.inx(&["restart", "--timeout", "3", &hung])
        .ok()
        .stderr_has(&format!("{hung}: restarted: killed after 3 s"));
    assert_eq!(status(&hung), "Running");
    assert_ne!(pid(&hung), before, "a new init");
}

/// `up` of a setting that acts only at start stops the container first: a hung one is killed
/// after `up --timeout`, the setting applied and the container started.
#[test]
fn up_of_a_setting_that_needs_a_restart_kills_a_hung_container_after_the_timeout() {
    let _host = host!("up_restart_hung");
    let (fx, hung, _) = running_hung("hangup", &[]);
    let body = format!(
        "        {hung} = inx.lib.mkContainer {{ toplevel = hung \"hangup\"; incus.config.\"limits.kernel.nofile\" = \"4096\"; }};\n"
    );
    fx.write_flake_parts(HUNG, &body, "");
    fx.inx(&["up", "--timeout", "3"])
        .ok()
        .stderr_has(&format!(
            "{hung}: stop: a changed setting takes effect only at start"
        ))
        .stderr_has(&format!("{hung}: stopped: killed after 3 s"));
    assert_eq!(status(&hung), "Running");
    assert_eq!(
        config(&hung, "limits.kernel.nofile").as_deref(),
        Some("4096")
    );
}

/// Ctrl-C while inx waits for a clean shutdown ends inx at once (exit 130); the stop is left
/// to Incus, which kills nothing; `inx stop --force` then stops it.
#[test]
fn ctrl_c_during_a_hung_stop_ends_inx_at_once_and_a_forced_stop_converges() {
    use std::os::unix::process::CommandExt;
    let _host = host!("ctrl_c_hung_stop");
    let (fx, hung, _) = running_hung("hangint", &[]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_inx"))
        .arg("--flake")
        .arg(fx.user_dir())
        .args(["stop", "--timeout", "120", &hung])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start inx");
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains(&format!("{hung}: stop")) {
            break;
        }
        line.clear();
    }
    std::thread::sleep(Duration::from_secs(1));
    let asked = Instant::now();
    let sent = Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap();
    assert!(sent.success());
    reader.read_to_string(&mut seen).unwrap();
    let code = child.wait().unwrap().code();
    assert!(asked.elapsed() < Duration::from_secs(10), "{seen}");
    assert_eq!(code, Some(130), "{seen}");
    assert!(seen.contains("no longer waiting"), "{seen}");
    assert_eq!(status(&hung), "Running", "nothing was killed");
    fx.inx(&["stop", "--force", &hung]).ok();
    assert_eq!(status(&hung), "Stopped");
}

/// `destroy` shuts a running container down first; a hung one is killed after the timeout
/// and everything of it goes.
#[test]
fn destroy_of_a_hung_container_kills_it_after_the_timeout() {
    let _host = host!("destroy_hung");
    let (fx, hung, _) = running_hung("hangdestroy", &[]);
    fx.inx(&["destroy", "--force", "--timeout", "3", &hung])
        .ok()
        .stderr_has(&format!("{hung}: stopped: killed after 3 s"));
    assert_eq!(status(&hung), "absent");
    assert!(profile(&hung).is_none());
}
