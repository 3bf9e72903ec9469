//! What holds for every command: names checked first, missing tools, an Incus that is down or
//! refuses, help and completions, `-q` and `-v`, and a stdout whose reader went away.

use super::sandbox::*;
use predicates::prelude::*;
use serde_json::json;

#[test]
fn an_invalid_name_is_refused_before_anything_runs() {
    let sb = Sandbox::new();
    sb.run(&["up", "Bad_Name"])
        .code(3)
        .stderr(predicate::str::contains(
            "invalid container name \"Bad_Name\"",
        ));
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
}

#[test]
fn incus_daemon_down_is_exit_7_with_a_hint() {
    let sb = Sandbox::new();
    sb.respond("nix", "eval", r#"{"web":null}"#, "", 0);
    sb.respond(
        "incus",
        "list",
        "",
        "Error: The incus daemon doesn't appear to be started (socket path: /var/lib/incus/unix.socket)\n",
        1,
    );
    sb.run(&["list"])
        .code(7)
        .stderr(predicate::str::contains("not running"));
    // list evaluates and lists at the same time: the two calls come in either order.
    assert_eq!(
        sorted(sb.call_verbs()),
        ["incus list", "incus project", "nix eval"]
    );
}

#[test]
fn incus_refusing_access_is_exit_7() {
    let sb = Sandbox::new();
    sb.respond("nix", "eval", r#"{"web":null}"#, "", 0);
    sb.respond(
        "incus",
        "list",
        "",
        "Error: You don't have the needed permissions to talk to the incus daemon (socket path: /var/lib/incus/unix.socket)\n",
        1,
    );
    sb.run(&["list"])
        .code(7)
        .stderr(predicate::str::contains("incus-admin"));
}

#[test]
fn missing_incus_is_exit_6() {
    let sb = Sandbox::with_tools(&["nix", "nix-store", "nix-env"]);
    sb.run(&["start", "web"])
        .code(6)
        .stderr(predicate::str::contains("`incus` is not installed"));
    assert!(sb.calls().is_empty());
}

#[test]
fn missing_nix_is_exit_6() {
    let sb = Sandbox::with_tools(&["nix-store", "nix-env", "incus"]);
    sb.run(&["up"])
        .code(6)
        .stderr(predicate::str::contains("`nix` is not installed"));
    // The queries beside the evaluation ran; nothing was changed.
    assert_eq!(
        up_order(sb.call_verbs()),
        ["incus project", "incus list", "incus query"]
    );
}

/// Runs inx with its stdout going into a pipe whose reader reads `lines` lines and then goes
/// away (0: before inx starts, so every write of inx finds the pipe closed).
fn into_closed_pipe(sb: &Sandbox, args: &[&str], lines: usize) -> std::process::Output {
    use std::io::BufRead;
    let (reader, writer) = std::io::pipe().unwrap();
    let mut cmd = sb.std_command(args);
    cmd.stdin(std::process::Stdio::null())
        .stdout(writer)
        .stderr(std::process::Stdio::piped());
    let reader = (lines > 0).then_some(reader);
    let child = cmd.spawn().unwrap();
    // The parent's copy of the pipe's write end goes with the command.
    drop(cmd);
    if let Some(reader) = reader {
        let mut reader = std::io::BufReader::new(reader);
        for _ in 0..lines {
            reader.read_line(&mut String::new()).unwrap();
        }
    }
    child.wait_with_output().unwrap()
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_with_exit_0() {
    for args in [&["list"][..], &["list", "--json"], &["completions", "bash"]] {
        for lines in [0, 1] {
            let sb = list_sandbox();
            let out = into_closed_pipe(&sb, args, lines);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
                "inx {args:?}, reader gone after {lines} lines: {stderr}"
            );
            assert_eq!(
                out.status.code(),
                Some(0),
                "inx {args:?}, reader gone after {lines} lines: {stderr}"
            );
        }
    }
}

#[test]
fn completions_for_bash_print_a_script_and_run_nothing() {
    let sb = Sandbox::new();
    sb.run(&["completions", "bash"])
        .code(0)
        .stdout(predicate::str::contains("inx").and(predicate::str::contains("complete")));
    assert!(sb.calls().is_empty());
}

#[test]
fn help_lists_every_command() {
    let sb = Sandbox::new();
    let assert = sb.run(&["--help"]).code(0);
    let help = stdout_of(&assert);
    for command in [
        "up",
        "list",
        "status",
        "start",
        "stop",
        "restart",
        "exec",
        "shell",
        "destroy",
        "image",
        "completions",
    ] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{command} "))),
            "--help lists {command}"
        );
    }
    insta::assert_snapshot!("help", help);
    assert!(sb.calls().is_empty());
}

#[test]
fn quiet_prints_no_progress_lines_but_still_prints_errors() {
    let sb = Sandbox::new();
    sb.list_answers(json!([
        instance("web", "Stopped", true),
        instance("db", "Running", true)
    ]));
    // Without -q: the step and "already running".
    let loud = sb.run(&["start", "web", "db"]).code(0);
    assert!(
        stderr_of(&loud).contains("web: start"),
        "{}",
        stderr_of(&loud)
    );
    assert!(stderr_of(&loud).contains("db: already running"));
    let quiet = sb.run(&["-q", "start", "web", "db"]).code(0);
    assert_eq!(stderr_of(&quiet), "");
    let quiet = sb.run(&["start", "--quiet", "web"]).code(0);
    assert_eq!(stderr_of(&quiet), "");
    assert_eq!(
        sb.call_verbs(),
        [
            "incus project",
            "incus list",
            "incus start",
            "incus project",
            "incus list",
            "incus start",
            "incus project",
            "incus list",
            "incus start"
        ],
        "-q changes what is printed, not what runs"
    );
    sb.respond("incus", "start", "", "Error: inx-cli-start-refused\n", 1);
    sb.run(&["-q", "start", "web"])
        .code(1)
        .stderr(predicate::str::contains("inx-cli-start-refused"));
}

#[test]
fn quiet_with_verbose_is_a_usage_error() {
    let sb = Sandbox::new();
    for args in [
        &["-q", "-v", "list"][..],
        &["-q", "list", "-v"],
        &["list", "--verbose", "--quiet"],
    ] {
        sb.run(args).code(2).stderr(
            predicate::str::contains("cannot be used with")
                .and(predicate::str::contains("'--quiet"))
                .and(predicate::str::contains("'--verbose")),
        );
    }
    assert!(sb.calls().is_empty(), "calls: {:?}", sb.calls());
}

#[test]
fn verbose_may_be_repeated() {
    let sb = Sandbox::new();
    sb.list_answers(json!([instance("web", "Running", true)]));
    for args in [&["-vv", "stop", "web"][..], &["-v", "stop", "web", "-v"]] {
        let assert = sb.run(args).code(0);
        assert!(
            stderr_of(&assert).contains("+ incus --project default stop web"),
            "{}",
            stderr_of(&assert)
        );
    }
}

/// A first run in a folder without a flake gets exit 4 and a hint at the template, not Nix's
/// bare "could not find a flake.nix file".
#[test]
fn no_flake_here_points_at_the_template_and_the_examples() {
    let sb = Sandbox::new();
    sb.respond(
        "nix",
        "eval",
        "",
        "path '/home/me' does not contain a 'flake.nix', searching up\nerror: could not find a flake.nix file\n",
        1,
    );
    sb.run(&["up"]).code(4).stderr(
        predicate::str::contains("there is no flake here")
            .and(predicate::str::contains("nix flake init -t inx"))
            .and(predicate::str::contains("examples/offline")),
    );
    assert_nothing_changed(&sb);
}
