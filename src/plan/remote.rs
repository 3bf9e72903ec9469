//! The step that holds another host for the length of that host's steps (a copy to it, its
//! profiles): the executor keeps its ssh session open until they are done.

use super::{Action, Step, What};
use crate::hosts::SshDest;
use crate::name::{ContainerName, StorePath};

/// Holds `dest`: inx's lock there (another inx deploying there at the same time exits 9), and
/// roots there for `systems` from before they are copied until their profiles hold them.
pub fn hold(
    dest: &SshDest,
    host: Option<String>,
    container: Option<&ContainerName>,
    systems: &[&StorePath],
) -> Step {
    Step {
        container: container.cloned(),
        host,
        what: What::Hold,
        description: format!(
            "hold {} (inx's lock there, and roots for what is copied) until the profiles hold it",
            dest.login()
        ),
        action: Action::Run(dest.hold(systems)),
    }
}
