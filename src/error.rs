//! One error type for the whole CLI. Every failure carries a kind whose exit code is part of
//! inx's interface (docs/exit-codes.md lists them), a message, and where it helps a hint.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A step (an incus or nix command) failed while changing things.
    Failed,
    /// Bad input: an invalid or unknown name, a refused confirmation.
    Input,
    /// The flake could not be read or evaluated (missing flake or attribute, Nix error).
    Eval,
    /// Building a system failed.
    Build,
    /// A required program (nix, incus, ...) is not installed.
    ToolMissing,
    /// The Incus daemon is not running or refuses us.
    Incus,
    /// An instance with that name exists but inx does not manage it.
    Unmanaged,
    /// Another inx holds the lock.
    Locked,
    /// The manifest schema version is not one this inx understands.
    Schema,
    /// The container declares no image outputs (of the kind asked for).
    NoImage,
    /// The command needs root and runs as another user.
    NeedsRoot,
    /// Another host's store cannot be reached over ssh (nothing was changed).
    Unreachable,
    /// Ctrl-C or SIGTERM: running steps ended, no new one started.
    Interrupted,
}

impl Kind {
    pub fn exit_code(self) -> i32 {
        match self {
            Kind::Failed => 1,
            Kind::Input => 3,
            Kind::Eval => 4,
            Kind::Build => 5,
            Kind::ToolMissing => 6,
            Kind::Incus => 7,
            Kind::Unmanaged => 8,
            Kind::Locked => 9,
            Kind::Schema => 10,
            Kind::NoImage => 11,
            Kind::NeedsRoot => 12,
            Kind::Unreachable => 13,
            Kind::Interrupted => 130,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: Kind,
    pub message: String,
    pub hint: Option<String>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    pub fn input(message: impl Into<String>) -> Self {
        Error::new(Kind::Input, message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
