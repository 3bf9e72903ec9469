//! inx's stdout. Everything inx prints as data (tables, plans, JSON) goes through here, never
//! through `print!`/`println!` (clippy.toml forbids them), because those panic when stdout is
//! gone: `inx list | head -1` closes the pipe after one line.
//!
//! A reader that went away (EPIPE) ends inx at once with exit code 0, as most command-line
//! tools do: whoever stopped reading asked for no more. Any other failure to write (a full
//! disk, a closed descriptor) is an error, exit code 1. inx leaves SIGPIPE ignored, as Rust
//! sets it up: inx writes to its children's stdin too, and a child that exits early must be an
//! error there, not a signal that kills inx.
//!
//! JSON (`--json`) is written by [`json`], which puts every document in one envelope: an object
//! whose first key is `schema` (see docs/json.md).

use crate::error::Kind;
use serde::Serialize;
use std::io::Write;

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

pub(crate) use {out, outln};

/// Writes `text` to stdout and flushes it, so a closed pipe shows here and not at exit.
pub fn write(text: &str) {
    bytes(text.as_bytes());
}

/// Writes `data` to stdout and flushes it; a closed stdout ends inx (see the module's doc).
pub fn bytes(data: &[u8]) {
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout.write_all(data).and_then(|()| stdout.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(Kind::Failed.exit_code());
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
