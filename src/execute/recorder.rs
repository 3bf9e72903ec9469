//! The `Run` double of unit tests: it runs nothing, answers every command from a script
//! (success with empty output unless told otherwise) and keeps what it was asked and how, so
//! a test can drive gathering, a plan's execution or a whole command and read back the calls.

use crate::cmd::{Cmd, Output};
use crate::error::Result;
use crate::execute::process::{Held, Run};
use std::sync::Mutex;

/// One scripted answer: for calls of `program` whose arguments hold all of `words`.
struct Reply {
    program: String,
    words: Vec<String>,
    /// Only when the first argument is `words[0]` (the older, stricter match).
    first: bool,
    code: i32,
    stdout: String,
    stderr: String,
}

#[derive(Default)]
pub struct Recorder {
    replies: Vec<Reply>,
    pub calls: Mutex<Vec<(&'static str, Cmd)>>,
}

impl Recorder {
    /// `program` with `first_arg` first fails with `code`.
    pub fn fail(self, program: &str, first_arg: &str, code: i32) -> Self {
        self.fail_with(program, first_arg, code, "refused\n")
    }

    /// As `fail`, saying `stderr`.
    pub fn fail_with(mut self, program: &str, first_arg: &str, code: i32, stderr: &str) -> Self {
        self.replies.push(Reply {
            program: program.into(),
            words: vec![first_arg.into()],
            first: true,
            code,
            stdout: String::new(),
            stderr: stderr.into(),
        });
        self
    }

    /// As `fail`, for any call of `program` with `word` among its arguments.
    pub fn fail_on_arg(self, program: &str, word: &str, code: i32) -> Self {
        self.reply(program, &[word], code, "", "refused\n")
    }

    /// A call of `program` whose arguments hold every one of `words` succeeds printing
    /// `stdout`.
    pub fn prints(self, program: &str, words: &[&str], stdout: &str) -> Self {
        self.reply(program, words, 0, stdout, "")
    }

    /// A call of `program` whose arguments hold every one of `words` ends with `code`,
    /// printing `stdout` and `stderr`. The first reply that fits a call answers it.
    pub fn reply(
        mut self,
        program: &str,
        words: &[&str],
        code: i32,
        stdout: &str,
        stderr: &str,
    ) -> Self {
        self.replies.push(Reply {
            program: program.into(),
            words: words.iter().map(|w| w.to_string()).collect(),
            first: false,
            code,
            stdout: stdout.into(),
            stderr: stderr.into(),
        });
        self
    }

    /// Each call as `how: the command line`.
    pub fn lines(&self) -> Vec<String> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .map(|(how, c)| format!("{how}: {}", c.to_shell()))
            .collect()
    }

    fn answer(&self, how: &'static str, cmd: &Cmd) -> Result<Output> {
        self.calls.lock().unwrap().push((how, cmd.clone()));
        let fits = |r: &&Reply| {
            r.program == cmd.program
                && if r.first {
                    cmd.args.first() == r.words.first()
                } else {
                    r.words.iter().all(|w| cmd.args.contains(w))
                }
        };
        Ok(match self.replies.iter().find(fits) {
            Some(r) => Output {
                code: Some(r.code),
                stdout: r.stdout.clone(),
                stderr: r.stderr.clone(),
            },
            None => Output {
                code: Some(0),
                stdout: String::new(),
                stderr: String::new(),
            },
        })
    }
}

impl Run for Recorder {
    fn capture(&self, cmd: &Cmd) -> Result<Output> {
        self.answer("capture", cmd)
    }
    fn capture_many(&self, cmds: &[&Cmd]) -> Vec<Result<Output>> {
        cmds.iter().map(|c| self.answer("capture", c)).collect()
    }
    fn show_stderr(&self, cmd: &Cmd) -> Result<Output> {
        self.answer("show_stderr", cmd)
    }
    fn change(&self, cmd: &Cmd) -> Result<Output> {
        self.answer("change", cmd)
    }
    fn change_or_abandon(&self, cmd: &Cmd) -> Result<Output> {
        self.answer("change_or_abandon", cmd)
    }
    fn show_all(&self, cmd: &Cmd) -> Result<Output> {
        self.answer("show_all", cmd)
    }
    fn hold(&self, cmd: &Cmd, _: &str) -> Result<std::result::Result<Held, Output>> {
        let out = self.answer("hold", cmd)?;
        Ok(if out.success() {
            Ok(Held::default())
        } else {
            Err(out)
        })
    }
    fn interactive(&self, cmd: &Cmd) -> Result<i32> {
        Ok(self.answer("interactive", cmd)?.code.unwrap_or(1))
    }
    fn stream_lines(&self, cmd: &Cmd, each: &mut dyn FnMut(&str)) -> Result<Output> {
        let out = self.answer("stream_lines", cmd)?;
        out.stdout.lines().for_each(each);
        Ok(Output {
            stdout: String::new(),
            ..out
        })
    }
    fn progress(&self, _: std::fmt::Arguments) {}
}
