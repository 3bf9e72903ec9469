//! Ctrl-C and SIGTERM. A changing command must never stop halfway through a step (a
//! `switch-to-configuration` cut off inside the guest leaves a half-activated system), so:
//! - children run in process groups of their own, out of the terminal's, so Ctrl-C reaches
//!   only inx;
//! - the first SIGINT or SIGTERM lets running processes end and starts no new one: every
//!   command unwinds with `Kind::Interrupted` (exit 130), removing what it staged;
//! - a second one ends inx at once; what it started finishes by itself.
//!
//! `exec`, `shell` and `roots watch` do not install this: their children belong to the
//! terminal (or to the service), and the default signal handling is what users expect there.

use crate::error::{Error, Kind, Result};
use std::sync::atomic::{AtomicBool, Ordering};

static INSTALLED: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

pub fn install() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        // Without a handler the default applies: inx dies at once, as before.
        return;
    };
    INSTALLED.store(true, Ordering::SeqCst);
    std::thread::spawn(move || {
        for _ in signals.forever() {
            if INTERRUPTED.swap(true, Ordering::SeqCst) {
                eprintln!("inx: stopped at once; commands already started finish by themselves");
                std::process::exit(Kind::Interrupted.exit_code());
            }
            eprintln!(
                "inx: interrupted: letting running steps end, starting no new one (again to stop at once)"
            );
        }
    });
}

/// Whether children should be kept out of the terminal's process group.
pub fn installed() -> bool {
    INSTALLED.load(Ordering::SeqCst)
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
