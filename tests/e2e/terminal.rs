//! What a person at a terminal sees: under a pseudo-terminal (`script` from util-linux),
//! `inx up` draws its progress line, and the exit status is kept; in a pipe it draws none.

use super::harness::*;
use std::process::Command;

#[test]
fn up_on_a_terminal_draws_progress_and_in_a_pipe_draws_none() {
    let _host = host!("terminal");
    let fx = Fixture::new("terminal");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"tty\"; }")]);
    let line = format!(
        "{} --flake {} up",
        env!("CARGO_BIN_EXE_inx"),
        fx.user_dir().display()
    );
    // -e: script exits with the command's status. A terminal that draws (whatever TERM the
    // tests run with).
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .expect("script runs");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    let counted = regex_like_count(&screen);
    assert!(counted, "no [N/M] progress on the terminal:\n{screen:?}");
    assert_eq!(status(&web), "Running");

    // The same `up` in a pipe (nothing to do now, then a restart to have steps): plain lines.
    let piped = fx.inx(&["restart", &web]).ok();
    assert!(!regex_like_count(&piped.stderr), "{}", piped.stderr);

    // A terminal that says it draws nothing (TERM unset or `dumb`): no bar, the step lines.
    let restart = format!(
        "{} --flake {} restart {web}",
        env!("CARGO_BIN_EXE_inx"),
        fx.user_dir().display()
    );
    for term in [None, Some("dumb")] {
        let mut script = Command::new("script");
        script.args(["-qec", &restart, "/dev/null"]);
        match term {
            Some(t) => script.env("TERM", t),
            None => script.env_remove("TERM"),
        };
        let out = script.output().expect("script runs");
        let screen = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "TERM={term:?}: {screen}");
        assert!(
            screen.contains(&format!("{web}: restart")) && !regex_like_count(&screen),
            "TERM={term:?}: the step lines and no counter:\n{screen:?}"
        );
    }
}

/// Whether `text` holds a `[N/M]` counter.
fn regex_like_count(text: &str) -> bool {
    text.split('[').skip(1).any(|part| {
        let Some((inside, _)) = part.split_once(']') else {
            return false;
        };
        let Some((n, m)) = inside.split_once('/') else {
            return false;
        };
        !n.is_empty()
            && !m.is_empty()
            && n.chars().all(|c| c.is_ascii_digit())
            && m.chars().all(|c| c.is_ascii_digit())
    })
}
