//! How a hold on another host speaks (see `SshDest::hold`, which writes the session's script):
//! what it prints once it holds that host, and what it prints when another inx does. The
//! executor waits for the one and reads the other.

use crate::cmd::{Cmd, Output};
use crate::error::{Error, Kind};

/// What `hold` prints once it holds the host's lock and roots.
pub const HELD: &str = "inx-held";

/// What `hold` prints (then exits 9) when another inx holds the host's lock.
pub const LOCKED: &str = "inx-locked";

/// The host lock there: the same file as that host's own inx takes (`Profiles::lock_file`),
/// so an inx there and one here do not change its profiles at once either.
pub const LOCK_FILE: &str = "/nix/var/nix/profiles/inx/.lock";

/// Why a `hold` session (`cmd`) ended before it held its host.
pub fn hold_failed(cmd: &Cmd, out: &Output) -> Error {
    if out.code == Some(9) && out.stdout.lines().any(|l| l == LOCKED) {
        // `hold` puts the login right before `--`.
        let login = cmd
            .args
            .iter()
            .position(|a| a == "--")
            .and_then(|i| i.checked_sub(1))
            .map_or("the host", |i| cmd.args[i].as_str());
        return Error::new(
            Kind::Locked,
            format!("another inx is changing containers on {login} (it holds {LOCK_FILE} there)"),
        )
        .with_hint("wait for it to finish and run this again");
    }
    crate::cmd::failure(Kind::Failed, cmd, out)
}
