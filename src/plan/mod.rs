//! Plans: the pure middle of gather, plan, execute. Facts in, typed steps out; nothing here
//! runs anything, so every decision is unit- and snapshot-tested.

pub mod image;
mod lifecycle;
mod relocate;
mod remote;
mod rollback;
pub mod run;
mod snapshot;
mod up;

pub use lifecycle::{destroy, lifecycle, Doomed, HostDirs, Lifecycle};
pub use relocate::{relocate, Move};
pub use rollback::rollback;
pub use snapshot::{restore as restore_snapshot, take as take_snapshot};
pub use up::{image_need, up, Facts, Idmap, ImageNeed, ImageSource};
// The steps a plan is made of are the executor's input, so they are its types.
pub use crate::execute::steps::{Action, Halt, Note, Plan, RootsDir, Start, Step, What};

use crate::clients::incus::Client;
use crate::cmd::Cmd;
use crate::containers::instance::{KEY_MANAGED, STOP_TIMEOUT};
use crate::error::{Error, Kind};
use crate::name::ContainerName;

/// How the commands that stop a running container stop it (`--timeout`, `--force`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shutdown {
    /// Seconds a clean shutdown may take before the container is killed.
    pub timeout: u32,
    /// Kill at once, without a clean shutdown.
    pub force: bool,
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown {
            timeout: STOP_TIMEOUT,
            force: false,
        }
    }
}

impl Shutdown {
    pub fn stop(&self, incus: &Client, name: &ContainerName) -> Action {
        Action::Halt(Halt {
            clean: (!self.force).then(|| incus.stop_within(name, self.timeout)),
            kill: incus.kill(name),
            timeout: self.timeout,
        })
    }

    pub fn restart(&self, incus: &Client, name: &ContainerName) -> Action {
        Action::Halt(Halt {
            clean: (!self.force).then(|| incus.restart_within(name, self.timeout)),
            kill: incus.restart_killing(name),
            timeout: self.timeout,
        })
    }
}

pub fn unmanaged_error(name: &str) -> Error {
    Error::new(
        Kind::Unmanaged,
        format!("an instance named {name} exists, but inx does not manage it (it has no {KEY_MANAGED} key); inx leaves it alone"),
    )
    .with_hint("give the container another name in the flake, or remove or rename that instance with incus yourself")
}

/// There is no instance of that name (commands that need one say it alike).
pub fn missing_error(name: &ContainerName) -> Error {
    Error::input(format!("there is no instance named {name}"))
        .with_hint(format!("create it with `inx up {name}`"))
}

/// A step of one container's chain.
fn step(
    container: &ContainerName,
    what: What,
    description: impl Into<String>,
    action: Action,
) -> Step {
    Step {
        container: Some(container.clone()),
        host: None,
        what,
        description: description.into(),
        action,
    }
}

/// The start of `container` through `incus` (see `Start`).
fn start(container: &ContainerName, description: impl Into<String>, incus: &Client) -> Step {
    step(
        container,
        What::Start,
        description,
        Action::Start(Start {
            on: incus.clone(),
            name: container.clone(),
        }),
    )
}

fn run(container: &ContainerName, what: What, description: impl Into<String>, cmd: Cmd) -> Step {
    step(container, what, description, Action::Run(cmd))
}

#[cfg(test)]
mod tests;
