//! A command as data: a program, its argument vector and what it gets on stdin (`Cmd`), and
//! what it gave back (`Output`). Clients, hosts and plans build these; only
//! `execute::process` runs them. Nothing here runs anything.

use crate::error::{Error, Kind};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cmd {
    pub program: String,
    pub args: Vec<String>,
    pub stdin: Option<String>,
}

impl Cmd {
    pub fn new(program: &str) -> Self {
        Cmd {
            program: program.to_string(),
            args: Vec::new(),
            stdin: None,
        }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn stdin(mut self, input: impl Into<String>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// The command as a line a user can paste into a POSIX shell.
    pub fn to_shell(&self) -> String {
        let words: Vec<String> = std::iter::once(&self.program)
            .chain(&self.args)
            .map(|w| quote(w))
            .collect();
        let line = words.join(" ");
        match &self.stdin {
            None => line,
            Some(input) => {
                let body = input.strip_suffix('\n').unwrap_or(input);
                format!("{line} <<'INX_EOF'\n{body}\nINX_EOF")
            }
        }
    }
}

pub fn quote(word: &str) -> String {
    shlex::try_quote(word)
        .map(|q| q.into_owned())
        .unwrap_or_else(|_| format!("{word:?}"))
}

#[derive(Debug, Clone)]
pub struct Output {
    /// `None` when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

/// A failed command as an error: what ran, how it ended, and the end of what it said.
pub fn failure(kind: Kind, cmd: &Cmd, out: &Output) -> Error {
    let status = match out.code {
        Some(code) => format!("exit code {code}"),
        None => "killed by a signal".to_string(),
    };
    let tail = tail(&out.stderr, 15);
    let line = cmd.to_shell();
    let line = line.lines().next().unwrap_or_default();
    let mut message = format!("`{line}` failed ({status})");
    if !tail.is_empty() {
        message.push_str(":\n");
        message.push_str(&tail);
    }
    Error::new(kind, message)
}

/// The last `n` non-empty lines, indented.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("  {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_rendering_quotes_and_heredocs() {
        let cmd = Cmd::new("incus").args(["config", "set", "web", "raw.lxc=lxc.init.cmd = /x"]);
        assert_eq!(
            cmd.to_shell(),
            "incus config set web 'raw.lxc=lxc.init.cmd = /x'"
        );
        let with_input = Cmd::new("incus")
            .args(["create", "--empty", "web"])
            .stdin("{\"a\":1}\n");
        assert_eq!(
            with_input.to_shell(),
            "incus create --empty web <<'INX_EOF'\n{\"a\":1}\nINX_EOF"
        );
    }

    #[test]
    fn tail_keeps_last_lines() {
        assert_eq!(tail("a\n\nb\nc\n", 2), "  b\n  c");
        assert_eq!(tail("", 3), "");
    }
}
