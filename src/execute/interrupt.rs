//! Ctrl-C, SIGTERM and SIGHUP (a closed terminal or ssh session). A changing command must
//! never stop halfway through a step (a `switch-to-configuration` cut off inside the guest
//! leaves a half-activated system), so:
//! - children that change things run in process groups of their own, out of the terminal's,
//!   so Ctrl-C reaches only inx;
//! - the first signal lets running steps end and starts no new one: every command unwinds
//!   with `Kind::Interrupted` (exit 130), removing what it staged. A step that only waits (a
//!   clean shutdown, see `Runner::change_or_abandon`) stops waiting at once: Incus carries on
//!   with that stop, and the next run finds the container stopped or still running, and
//!   converges;
//! - a second one ends inx at once; what it started finishes by itself.
//!
//! `exec`, `shell` and `roots watch` do not install this: their children belong to the
//! terminal (or to the service), and the default signal handling is what users expect there.

use crate::error::{Error, Kind, Result};
use crate::output::errln;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
        // Without a handler the default applies: inx dies at once, as before.
        return;
    };
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                errln!("inx: stopped at once; commands already started finish by themselves");
                std::process::exit(Kind::Interrupted.exit_code());
            }
            errln!(
                "inx: interrupted: letting running steps end, no longer waiting for a stop, starting no new step (again to stop at once)"
            );
        }
    });
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Fails once an interruption came: call before starting anything new.
pub fn check() -> Result<()> {
    if interrupted() {
        return Err(Error::new(
            Kind::Interrupted,
            "interrupted: steps that were running ended, no new one started; run the command again to finish",
        ));
    }
    Ok(())
}
