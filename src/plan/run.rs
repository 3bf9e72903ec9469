//! The plans of `inx run`: bringing a throw-away instance of a declared container's system
//! up, and removing it again (see `containers::runs`).

use super::{Action, Plan, Step, What};
use crate::clients::incus::Client;
use crate::clients::nix;
use crate::containers::instance::{self, Spec};
use crate::containers::manifest::Manifest;
use crate::name::ContainerName;
use std::path::Path;

/// The system realised with a root (built or not: the profile takes it next), the run's own
/// profile set to it, the ephemeral instance created with the declared container's settings
/// (`spec`, see `run_spec`) and started.
pub fn start(
    run: &ContainerName,
    manifest: &Manifest,
    built: bool,
    spec: &Spec,
    profile_dir: &Path,
    incus: &Client,
    build_root: &Path,
) -> Plan {
    let to_realise = match (&manifest.drv_path, built) {
        (Some(drv), false) => drv.clone(),
        _ => manifest.toplevel.to_string(),
    };
    let step = |what, description: String, action| Step::of(run, what, description, action);
    Plan {
        steps: vec![
            step(
                What::Build,
                if built {
                    format!("keep {} from the GC", manifest.toplevel.base_name())
                } else {
                    format!("build {}", manifest.toplevel.base_name())
                },
                Action::Run(nix::realise(&[to_realise], build_root)),
            ),
            step(
                What::Profile,
                "create the run's profile directory".to_string(),
                Action::CreateDir(profile_dir.to_path_buf()),
            ),
            step(
                What::Profile,
                format!(
                    "point the run's profile at {}",
                    manifest.toplevel.base_name()
                ),
                Action::Run(nix::set_profile(
                    &profile_dir.join("system"),
                    &manifest.toplevel,
                )),
            ),
            step(
                What::Create,
                format!("create a throw-away instance of {}", manifest.name),
                Action::Run(incus.create_ephemeral(
                    run,
                    &spec.profiles,
                    instance::create_input(spec),
                )),
            ),
            step(
                What::Start,
                "start".to_string(),
                Action::Run(incus.start(run)),
            ),
        ],
        ..Plan::default()
    }
}

/// The instance goes (it is ephemeral, but a running one is deleted outright), then its
/// profile, so its system can be collected.
pub fn end(run: &ContainerName, profile_dir: &Path, incus: &Client) -> Plan {
    Plan {
        steps: vec![
            Step::of(
                run,
                What::Delete,
                "delete the throw-away instance",
                Action::Run(incus.delete(run)),
            ),
            Step::of(
                run,
                What::RemoveProfile,
                "remove the run's profile",
                Action::RemoveDir(profile_dir.to_path_buf()),
            ),
        ],
        ..Plan::default()
    }
}

/// The declared container's instance settings for a run: not marked as inx's own (`list`,
/// `up` and the roots leave it alone), marked as a run instead, and without its proxy
/// devices, whose host ports the declared container may hold.
pub fn run_spec(mut spec: Spec, owner: u32) -> Spec {
    spec.config.remove(instance::KEY_MANAGED);
    spec.config.insert(
        crate::containers::runs::KEY_RUN.to_string(),
        owner.to_string(),
    );
    spec.devices
        .retain(|_, d| d.get("type").map(String::as_str) != Some("proxy"));
    spec
}
