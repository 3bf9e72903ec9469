//! inx's stdout. Everything inx prints as data (tables, plans, JSON) goes through here, never
//! through `print!`/`println!` (clippy.toml forbids them), because those panic when stdout is
//! gone: `inx list | head -1` closes the pipe after one line.
//!
//! A reader that went away (EPIPE) ends inx at once with exit code 0, as most command-line
//! tools do: whoever stopped reading asked for no more. Any other failure to write (a full
//! disk, a closed descriptor) is an error, exit code 1. inx leaves SIGPIPE ignored, as Rust
//! sets it up: inx writes to its children's stdin too, and a child that exits early must be an
//! error there, not a signal that kills inx.

use crate::error::Kind;
use std::io::Write;

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
