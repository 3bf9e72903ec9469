//! inx's stdout. Everything inx prints as data (tables, plans, JSON) goes through here, never
//! through `print!`/`println!` (clippy.toml forbids them), because those panic when stdout is
//! gone: `inx list | head -1` closes the pipe after one line.
//!
//! A reader that went away (EPIPE) ends the output, never the plan: a command half-way through
//! its steps finishes them (or stops cleanly on Ctrl-C), so the next run converges; whoever
//! stopped reading asked for no more text, not for a half-done change. Any other failure to
//! write (a full disk, a closed descriptor) is said once on stderr and makes the exit code 1
//! once the command has ended. The same holds for stderr ([`err`]): progress and errors are lost
//! with their reader, the plan is not. inx leaves SIGPIPE ignored, as Rust sets it up: inx
//! writes to its children's stdin too, and a child that exits early must be an error there, not
//! a signal that kills inx.
//!
//! JSON (`--json`) is written by [`json`], which puts every document in one envelope: an object
//! whose first key is `schema` (see docs/json.md).

use crate::error::Kind;
use serde::Serialize;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// stdout's reader went away: nothing more is written there.
static STDOUT_GONE: AtomicBool = AtomicBool::new(false);
/// Writing to stdout failed otherwise: the command's exit code becomes 1.
static STDOUT_FAILED: AtomicBool = AtomicBool::new(false);

/// The version of inx's JSON output (docs/json.md says what changes it).
pub const SCHEMA: u32 = 1;

/// Writes to stdout, like `print!`.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(&format!($($arg)*))
    };
}

/// Writes a line to stdout, like `println!`.
macro_rules! outln {
    () => {
        $crate::output::write("\n")
    };
    ($($arg:tt)*) => {
        $crate::output::write(&(format!($($arg)*) + "\n"))
    };
}

/// Writes a line to stderr, like `eprintln!`, which panics when stderr is gone
/// (`inx up 2>&1 | head -1`): a closed stderr loses the text, never the plan.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::err(&(format!($($arg)*) + "\n"))
    };
}

pub(crate) use {errln, out, outln};

/// Writes `text` to stderr; a failure (nobody reads any more) is ignored: progress, warnings
/// and errors are for a reader, and the plan goes on without one.
pub fn err(text: &str) {
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

/// Writes `text` to stdout and flushes it, so a closed pipe shows here and not at exit.
pub fn write(text: &str) {
    bytes(text.as_bytes());
}

/// Writes `data` to stdout and flushes it; once stdout is gone, nothing (see the module's doc).
pub fn bytes(data: &[u8]) {
    if STDOUT_GONE.load(Ordering::SeqCst) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(data).and_then(|()| stdout.flush()) {
        STDOUT_GONE.store(true, Ordering::SeqCst);
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            STDOUT_FAILED.store(true, Ordering::SeqCst);
            errln!("error: cannot write to stdout: {e}");
        }
    }
}

/// The exit code of a command that ended with `code`, given what happened to its stdout: a
/// reader that went away changes nothing, a failed write turns success into 1.
pub fn exit_code(code: i32) -> i32 {
    if code == 0 && STDOUT_FAILED.load(Ordering::SeqCst) {
        Kind::Failed.exit_code()
    } else {
        code
    }
}

/// A JSON document: `{"schema": SCHEMA, ...the body's keys}`.
#[derive(Serialize)]
struct Document<'a, T: Serialize> {
    schema: u32,
    #[serde(flatten)]
    body: &'a T,
}

/// The document for `body` (a struct or map: its keys follow `schema`).
pub fn document<T: Serialize>(body: &T) -> serde_json::Value {
    serde_json::to_value(Document {
        schema: SCHEMA,
        body,
    })
    .expect("inx's JSON documents serialise")
}

/// Prints `body` as a JSON document, pretty.
pub fn json<T: Serialize>(body: &T) {
    let text = serde_json::to_string_pretty(&document(body)).expect("JSON serialises");
    outln!("{text}");
}

/// Prints `body` as a JSON document on one line (a stream of documents, one per line).
pub fn json_line<T: Serialize>(body: &T) {
    outln!("{}", document(body));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Body {
        containers: Vec<u32>,
    }

    #[test]
    fn a_document_starts_with_the_schema() {
        let doc = document(&Body {
            containers: vec![1],
        });
        assert_eq!(doc.to_string(), r#"{"schema":1,"containers":[1]}"#);
    }
}
