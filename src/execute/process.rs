//! The one module that starts processes. Everything else builds `Cmd` values (argv as data,
//! crate::cmd) and hands them here, so what inx runs can be printed, recorded and tested
//! without running it.

use crate::cmd::{Cmd, Output};
use crate::error::{Error, Kind, Result};
use std::path::PathBuf;

/// How a command whose output the user watches is wired (the others are captured).
#[derive(Clone, Copy)]
enum Mode {
    /// Capture stdout, relay stderr live: builds, whose logs the user wants to see.
    ShowStderr,
    /// Relay both live, stdout onto stderr.
    ShowAll,
}

/// Everything that runs a process: `Runner` runs them; unit tests hand in a `Recorder`
/// (execute/recorder.rs) that answers from a script and keeps what it was asked, so gathering,
/// executing and the commands between them are tested without running anything.
pub trait Run: Send + Sync {
    /// A query: its output captured (see `Runner::capture`).
    fn capture(&self, cmd: &Cmd) -> Result<Output>;
    /// Independent queries at the same time, each result as `capture` gives it.
    fn capture_many(&self, cmds: &[&Cmd]) -> Vec<Result<Output>>;
    /// A build, its log relayed.
    fn show_stderr(&self, cmd: &Cmd) -> Result<Output>;
    /// A step that changes something, never cut off (see `Runner::change`).
    fn change(&self, cmd: &Cmd) -> Result<Output>;
    /// A change whose wait an interruption ends (see `Runner::change_or_abandon`).
    fn change_or_abandon(&self, cmd: &Cmd) -> Result<Output>;
    /// A command whose whole report the user watches (see `Runner::show_all`).
    fn show_all(&self, cmd: &Cmd) -> Result<Output>;
    /// A session that holds something while other steps run (see `Runner::hold`).
    fn hold(&self, cmd: &Cmd, ready: &str) -> Result<std::result::Result<Held, Output>>;
    /// A command with the terminal attached (exec, shell); the exit code to pass on.
    fn interactive(&self, cmd: &Cmd) -> Result<i32>;
    /// A long-lived command, each line of its stdout handed to `each` as it comes.
    fn stream_lines(&self, cmd: &Cmd, each: &mut dyn FnMut(&str)) -> Result<Output>;
    /// A progress line (not with -q).
    fn progress(&self, line: std::fmt::Arguments);
    /// Whether a progress bar is drawn while plans are carried out (see `progress`).
    fn bars(&self) -> bool {
        false
    }
}

impl dyn Run + '_ {
    /// `capture_many` for a fixed number of queries.
    pub fn capture_all<const N: usize>(&self, cmds: [&Cmd; N]) -> [Result<Output>; N] {
        let mut outs = self.capture_many(&cmds).into_iter();
        std::array::from_fn(|_| outs.next().expect("one result per query"))
    }

    /// Two independent queries at the same time (an evaluation and an instance listing take
    /// about as long as each other).
    pub fn capture_both(&self, a: &Cmd, b: &Cmd) -> (Result<Output>, Result<Output>) {
        let [first, second] = self.capture_all([a, b]);
        (first, second)
    }
}

impl Run for Runner {
    fn capture(&self, cmd: &Cmd) -> Result<Output> {
        finish(cmd, self.start(cmd, false)?)
    }
    fn capture_many(&self, cmds: &[&Cmd]) -> Vec<Result<Output>> {
        let started: Vec<_> = cmds.iter().map(|c| (*c, self.start(c, false))).collect();
        started
            .into_iter()
            .map(|(c, handle)| handle.and_then(|h| finish(c, h)))
            .collect()
    }
    fn show_stderr(&self, cmd: &Cmd) -> Result<Output> {
        self.shown(cmd, Mode::ShowStderr)
    }
    fn change(&self, cmd: &Cmd) -> Result<Output> {
        Runner::change(self, cmd)
    }
    fn change_or_abandon(&self, cmd: &Cmd) -> Result<Output> {
        Runner::change_or_abandon(self, cmd)
    }
    fn show_all(&self, cmd: &Cmd) -> Result<Output> {
        self.shown(cmd, Mode::ShowAll)
    }
    fn hold(&self, cmd: &Cmd, ready: &str) -> Result<std::result::Result<Held, Output>> {
        Runner::hold(self, cmd, ready)
    }
    fn interactive(&self, cmd: &Cmd) -> Result<i32> {
        Runner::interactive(self, cmd)
    }
    fn stream_lines(&self, cmd: &Cmd, each: &mut dyn FnMut(&str)) -> Result<Output> {
        Runner::stream_lines(self, cmd, each)
    }
    fn bars(&self) -> bool {
        self.bars
    }
    fn progress(&self, line: std::fmt::Arguments) {
        Runner::progress(self, line)
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Runner {
    /// How often -v was given: from one on, every command is printed as it runs.
    pub verbose: u8,
    /// -q: no progress lines.
    pub quiet: bool,
    /// A progress bar while plans run (a terminal, no -q, no --json).
    pub bars: bool,
}

impl Runner {
    /// A progress line on stderr (a step as it starts, or that something needs no change),
    /// unless -q. Errors and warnings do not come through here: they always print.
    pub fn progress(&self, line: std::fmt::Arguments) {
        if !self.quiet {
            crate::execute::progress::line(line);
        }
    }

    /// A step that changes something (an instance, a profile): Ctrl-C never reaches it, so it
    /// always runs to its end (see `interrupt`).
    pub fn change(&self, cmd: &Cmd) -> Result<Output> {
        finish(cmd, self.start(cmd, true)?)
    }

    /// A change that may wait long (a clean shutdown): run as `change`, but a Ctrl-C, SIGTERM
    /// or SIGHUP stops the wait. The client is killed and `Kind::Interrupted` returned; what it
    /// asked for goes on in the daemon (Incus carries out a stop whose client went away).
    pub fn change_or_abandon(&self, cmd: &Cmd) -> Result<Output> {
        let handle = self.start(cmd, true)?;
        loop {
            if handle.try_wait().map_err(|e| cannot_run(cmd, e))?.is_some() {
                return finish(cmd, handle);
            }
            if crate::execute::interrupt::interrupted() {
                let _ = handle.kill();
                let _ = handle.wait();
                return Err(crate::execute::interrupt::check().expect_err("interrupted"));
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Runs with the terminal attached (exec, shell) and returns the exit code to pass on.
    pub fn interactive(&self, cmd: &Cmd) -> Result<i32> {
        let program = resolve(&cmd.program)?;
        self.trace(cmd);
        let status = duct::cmd(program, &cmd.args)
            .unchecked()
            .run()
            .map_err(|e| Error::new(Kind::Failed, format!("cannot run {}: {e}", cmd.program)))?
            .status;
        Ok(exit_code_of(status))
    }

    /// A command whose stderr (and with `ShowAll` stdout) inx relays as it comes, rather than
    /// handing the child inx's own stderr: a reader that went away (`2>&1 | head -1`) then
    /// costs the text, never the child (which would fail writing its log). With -q nothing is
    /// relayed, and the whole log is shown only if the command fails.
    fn shown(&self, cmd: &Cmd, mode: Mode) -> Result<Output> {
        let (reader, writer) = std::io::pipe().map_err(|e| cannot_run(cmd, e))?;
        let handle = self.start_relayed(cmd, mode, writer)?;
        let quiet = self.quiet;
        let relay = std::thread::spawn(move || relay(reader, !quiet));
        let out = finish(cmd, handle);
        let log = relay.join().unwrap_or_default();
        if quiet && !out.as_ref().is_ok_and(Output::success) {
            crate::output::err(&log);
        }
        out
    }

    /// Runs a long-lived command and hands each line of its stdout to `each` as it comes;
    /// returns how it ended, with its stderr.
    pub fn stream_lines(&self, cmd: &Cmd, each: &mut dyn FnMut(&str)) -> Result<Output> {
        use std::io::BufRead;
        let program = resolve(&cmd.program)?;
        self.trace(cmd);
        let cannot = |e: std::io::Error| {
            Error::new(Kind::Failed, format!("cannot run {}: {e}", cmd.program))
        };
        let reader = duct::cmd(program, &cmd.args)
            .unchecked()
            .stdin_null()
            .stderr_capture()
            .reader()
            .map_err(cannot)?;
        let mut lines = std::io::BufReader::new(&reader);
        let mut line = String::new();
        while lines.read_line(&mut line).map_err(cannot)? > 0 {
            each(line.trim_end());
            line.clear();
        }
        let out = reader
            .try_wait()
            .map_err(cannot)?
            .expect("the output ended, so the process did");
        Ok(Output {
            code: out.status.code(),
            stdout: String::new(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// Starts `cmd` with stdout and stderr captured.
    fn start(&self, cmd: &Cmd, detach: bool) -> Result<duct::Handle> {
        let expr = self.expression(cmd, detach)?;
        expr.stdout_capture()
            .stderr_capture()
            .start()
            .map_err(|e| cannot_run(cmd, e))
    }

    /// Starts `cmd` with its stderr (and with `ShowAll` its stdout) on `log`.
    fn start_relayed(
        &self,
        cmd: &Cmd,
        mode: Mode,
        log: std::io::PipeWriter,
    ) -> Result<duct::Handle> {
        let expr = self.expression(cmd, false)?;
        let expr = match mode {
            Mode::ShowAll => {
                let copy = log.try_clone().map_err(|e| cannot_run(cmd, e))?;
                expr.stdout_file(copy)
            }
            _ => expr.stdout_capture(),
        };
        // The expression holds the pipe's write end until it is dropped here, so the relay
        // sees the end of the log when the child (and whatever inherited it) has exited.
        expr.stderr_file(log)
            .start()
            .map_err(|e| cannot_run(cmd, e))
    }

    fn expression(&self, cmd: &Cmd, detach: bool) -> Result<duct::Expression> {
        crate::execute::interrupt::check()?;
        let program = resolve(&cmd.program)?;
        self.trace(cmd);
        let mut expr = duct::cmd(program, &cmd.args).unchecked();
        if detach {
            // Out of the terminal's process group: Ctrl-C is for inx, which lets this end (or,
            // where inx handles no signals, dies alone, and this still ends by itself).
            expr = expr.before_spawn(|c| {
                std::os::unix::process::CommandExt::process_group(c, 0);
                Ok(())
            });
        }
        Ok(match &cmd.stdin {
            Some(input) => expr.stdin_bytes(input.as_bytes().to_vec()),
            None => expr.stdin_null(),
        })
    }

    /// Starts a session that holds something (another host's lock and roots) for as long as
    /// inx keeps it: it is ready once it prints the line `ready`, and lets go when its stdin
    /// ends, which happens when the `Held` is dropped or inx dies however it dies, so nothing
    /// it holds outlives inx. `Err(output)`: it ended before it was ready. Like a change, it
    /// is out of the terminal's process group: Ctrl-C lets the steps it guards end first.
    pub fn hold(&self, cmd: &Cmd, ready: &str) -> Result<std::result::Result<Held, Output>> {
        use std::io::{BufRead, Read};
        use std::process::Stdio;
        crate::execute::interrupt::check()?;
        let program = resolve(&cmd.program)?;
        self.trace(cmd);
        let mut command = std::process::Command::new(program);
        command
            .args(&cmd.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        let mut child = command.spawn().map_err(|e| cannot_run(cmd, e))?;
        // Read aside, so a chatty session never blocks on a full pipe.
        let mut stderr = child.stderr.take().expect("piped");
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let mut stdout = std::io::BufReader::new(child.stdout.take().expect("piped"));
        let mut said = String::new();
        loop {
            let mut line = String::new();
            match stdout.read_line(&mut line) {
                Ok(n) if n > 0 => {
                    if line.trim_end() == ready {
                        return Ok(Ok(Held {
                            child: Some(child),
                            _stdout: Some(stdout),
                        }));
                    }
                    said.push_str(&line);
                }
                _ => break,
            }
        }
        let status = child.wait().map_err(|e| cannot_run(cmd, e))?;
        Ok(Err(Output {
            code: status.code(),
            stdout: said,
            stderr: stderr.join().unwrap_or_default(),
        }))
    }

    fn trace(&self, cmd: &Cmd) {
        if self.verbose > 0 {
            crate::execute::progress::line(format_args!(
                "+ {}",
                cmd.to_shell().lines().next().unwrap_or_default()
            ));
        }
    }
}

/// Copies what comes through `log` to stderr as it comes (when `show`), ignoring a stderr that
/// is gone, and returns all of it (its last MiB).
fn relay(mut log: std::io::PipeReader, show: bool) -> String {
    use std::io::Read;
    const KEEP: usize = 1 << 20;
    let mut kept: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match log.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                if show {
                    use std::io::Write;
                    let _ = std::io::stderr().lock().write_all(&chunk[..n]);
                }
                kept.extend_from_slice(&chunk[..n]);
                if kept.len() > 2 * KEEP {
                    kept.drain(..kept.len() - KEEP);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&kept).into_owned()
}

/// A session `Runner::hold` started, holding until dropped.
#[derive(Default)]
pub struct Held {
    child: Option<std::process::Child>,
    /// Kept open: a session that writes after it is ready must not die of a closed pipe.
    _stdout: Option<std::io::BufReader<std::process::ChildStdout>>,
}

impl Held {
    /// Whether the session still holds (its process has not ended).
    pub fn holds(&mut self) -> bool {
        match &mut self.child {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => true,
        }
    }
}

impl Drop for Held {
    /// Closes its stdin (the session's signal to let go) and gives it ten seconds to let go
    /// and end; then it is killed, which lets go too (on another host once its sshd sees the
    /// connection close), so a host that stopped answering holds up nothing.
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        drop(child.stdin.take());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn finish(cmd: &Cmd, handle: duct::Handle) -> Result<Output> {
    let out = handle.into_output().map_err(|e| cannot_run(cmd, e))?;
    Ok(Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

fn cannot_run(cmd: &Cmd, e: std::io::Error) -> Error {
    Error::new(Kind::Failed, format!("cannot run {}: {e}", cmd.program))
}

fn exit_code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

fn resolve(program: &str) -> Result<PathBuf> {
    which::which(program).map_err(|_| {
        let hint = match program {
            "incus" => "install Incus (https://linuxcontainers.org/incus/) and start its daemon; on NixOS set virtualisation.incus.enable = true",
            "nix" | "nix-env" | "nix-store" => "install Nix (2.8 or newer) and start nix-daemon",
            "lxc" => "install LXD (its client is `lxc`), or leave out --backend lxd to use Incus",
            _ => "install it or put it on PATH",
        };
        Error::new(Kind::ToolMissing, format!("`{program}` is not installed (not found on PATH)")).with_hint(hint)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runner() -> &'static dyn Run {
        &Runner {
            verbose: 0,
            quiet: false,
            bars: false,
        }
    }

    #[test]
    fn streams_lines_as_they_come() {
        let mut seen = Vec::new();
        let out = Runner::default()
            .stream_lines(
                &Cmd::new("sh").args(["-c", "echo one; echo two; echo bad >&2; exit 4"]),
                &mut |l: &str| seen.push(l.to_string()),
            )
            .unwrap();
        assert_eq!(seen, ["one", "two"]);
        assert_eq!((out.code, out.stderr.as_str()), (Some(4), "bad\n"));
    }

    #[test]
    fn missing_program_is_tool_missing() {
        let e = Runner::default()
            .capture(&Cmd::new("inx-no-such-program-xyz"))
            .unwrap_err();
        assert_eq!(e.kind, Kind::ToolMissing);
    }

    #[test]
    fn both_run_at_once_and_keep_their_own_results() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display();
        // Each waits (up to 5 s) for the other's mark: one after the other, both would fail.
        let meet = |me: &str, other: &str| {
            Cmd::new("sh").args([
                "-c",
                &format!("touch {d}/{me}; i=0; while [ ! -e {d}/{other} ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; echo {me}; [ -e {d}/{other} ]"),
            ])
        };
        let (a, b) = runner().capture_both(&meet("a", "b"), &meet("b", "a"));
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.success() && b.success(), "{a:?} {b:?}");
        assert_eq!((a.stdout.as_str(), b.stdout.as_str()), ("a\n", "b\n"));
        let (missing, ok) =
            runner().capture_both(&Cmd::new("inx-no-such-program-xyz"), &Cmd::new("true"));
        assert_eq!(missing.unwrap_err().kind, Kind::ToolMissing);
        assert!(ok.unwrap().success());
    }

    #[test]
    fn captures_output_and_exit_code() {
        let out = Runner::default()
            .capture(
                &Cmd::new("sh")
                    .args(["-c", "read x; echo out $x; echo err >&2; exit 3"])
                    .stdin("in\n"),
            )
            .unwrap();
        assert_eq!(
            (out.code, out.stdout.as_str(), out.stderr.as_str()),
            (Some(3), "out in\n", "err\n")
        );
    }
}
