//! Progress on a terminal: while a plan is carried out, a line under the step lines says how
//! many steps of how many are done and what runs now ("[3/10] web: switch ..."), drawn by
//! indicatif. Only where a person watches: stderr is a terminal, no -q, no --json; in a pipe
//! the step lines are all there is, as before. A build's own log (Nix writes it straight to
//! stderr) runs with the bar put aside, so the two never mix; so do error lines.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::sync::Mutex;
use std::time::Duration;

/// The bar being drawn, if any: step lines and errors go above it.
static ACTIVE: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Whether to draw progress at all.
pub fn wanted(stderr_is_terminal: bool, quiet: bool, json: bool) -> bool {
    stderr_is_terminal && !quiet && !json
}

/// A line on stderr: above the bar while one is drawn, else as it is.
pub fn line(text: std::fmt::Arguments) {
    let active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
    match active.as_ref() {
        Some(bar) => bar.println(text.to_string()),
        None => crate::output::err(&format!("{text}\n")),
    }
}

/// The bar of one plan, from its first step to its end (cleared when dropped, also on an
/// error or Ctrl-C).
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// Draws on stderr when `on`; otherwise does nothing at all.
    pub fn start(on: bool, steps: usize) -> Bar {
        if !on {
            return Bar(None);
        }
        // indicatif hides its bar on a terminal whose TERM is unset or `dumb`, and a hidden
        // bar prints no lines either: there the step lines go out plain.
        let target = ProgressDrawTarget::stderr();
        if target.is_hidden() {
            return Bar(None);
        }
        Bar::on(target, steps)
    }

    fn on(target: ProgressDrawTarget, steps: usize) -> Bar {
        let bar = ProgressBar::with_draw_target(Some(steps as u64), target);
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{pos}/{len}] {wide_msg}")
                .expect("a valid template"),
        );
        bar.enable_steady_tick(Duration::from_millis(120));
        *ACTIVE.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
        Bar(Some(bar))
    }

    /// What runs now.
    pub fn now(&self, what: &str) {
        if let Some(bar) = &self.0 {
            bar.set_message(what.to_string());
        }
    }

    /// One more step done (or given up).
    pub fn done(&self) {
        if let Some(bar) = &self.0 {
            bar.inc(1);
        }
    }

    /// Runs `f` with the bar off the screen: for a child that writes to stderr itself.
    pub fn aside<T>(&self, f: impl FnOnce() -> T) -> T {
        match &self.0 {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
            ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).take();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_drawn_only_for_a_person_at_a_terminal() {
        assert!(wanted(true, false, false));
        assert!(!wanted(false, false, false), "a pipe");
        assert!(!wanted(true, true, false), "-q");
        assert!(!wanted(true, false, true), "--json");
    }

    #[test]
    fn the_bar_counts_steps_and_names_the_one_running() {
        let term = indicatif::InMemoryTerm::new(4, 80);
        let bar = Bar::on(ProgressDrawTarget::term_like(Box::new(term.clone())), 3);
        bar.now("web: create the instance");
        bar.done();
        bar.now("web: start");
        bar.0.as_ref().unwrap().tick();
        let screen = term.contents();
        assert!(screen.contains("[1/3] web: start"), "{screen:?}");
        bar.done();
        bar.done();
        drop(bar);
        assert!(ACTIVE.lock().unwrap().is_none(), "no bar is left active");
    }
}
