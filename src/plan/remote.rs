//! The step that holds another host for the length of that host's steps (a copy to it, its
//! profiles): the executor keeps its ssh session open until they are done.

use super::{Action, Step, What};
use crate::hosts::SshDest;
use crate::name::StorePath;

/// Holds `dest`: inx's lock there (another inx deploying there at the same time exits 9), and
/// roots there for `systems` from before they are copied until their profiles hold them.
pub fn hold(dest: &SshDest, host: Option<String>, systems: &[&StorePath]) -> Step {
    Step {
        container: None,
        host,
        what: What::Hold,
        description: format!(
            "hold {}: inx's lock there, and roots for the systems until their profiles hold them",
            dest.login()
        ),
        action: Action::Run(dest.hold(systems)),
    }
}
