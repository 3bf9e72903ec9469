//! The plans of `inx run`: bringing a throw-away instance of a declared container's system
//! up, and removing it again (see `containers::runs`).

use super::{Action, Plan, What};
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
    let step = |what, description: String, action| super::step(run, what, description, action);
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
                Action::Start(super::Start {
                    on: incus.clone(),
                    name: run.clone(),
                }),
            ),
        ],
        ..Plan::default()
    }
}

/// The instance goes when Incus has it (`exists`: it is ephemeral, but a running one is
/// deleted outright; a run cut off before its create has none), then its profile, so its
/// system can be collected.
pub fn end(run: &ContainerName, profile_dir: &Path, incus: &Client, exists: bool) -> Plan {
    let delete = super::step(
        run,
        What::Delete,
        "delete the throw-away instance",
        Action::Run(incus.delete(run)),
    );
    let profile = super::step(
        run,
        What::RemoveProfile,
        "remove the run's profile",
        Action::RemoveDir(profile_dir.to_path_buf()),
    );
    Plan {
        steps: exists
            .then_some(delete)
            .into_iter()
            .chain([profile])
            .collect(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn a_runs_end_deletes_the_instance_only_where_incus_has_it() {
        let run = ContainerName::parse("web-run-42").unwrap();
        let dir = Path::new("/nix/var/nix/profiles/inx/.runs/web-run-42");
        let whats = |exists| -> Vec<What> {
            end(&run, dir, &Client::default(), exists)
                .steps
                .iter()
                .map(|s| s.what)
                .collect()
        };
        assert_eq!(whats(true), [What::Delete, What::RemoveProfile]);
        assert_eq!(whats(false), [What::RemoveProfile]);
    }

    #[test]
    fn a_run_is_marked_as_a_run_not_as_managed_and_has_no_proxy_devices() {
        let dev = |kind: &str| BTreeMap::from([("type".to_string(), kind.to_string())]);
        let spec = Spec {
            config: BTreeMap::from([
                (instance::KEY_MANAGED.to_string(), "1".to_string()),
                ("limits.memory".to_string(), "1GiB".to_string()),
            ]),
            devices: BTreeMap::from([
                ("forward-tcp-8080".to_string(), dev("proxy")),
                ("data".to_string(), dev("disk")),
            ]),
            profiles: vec!["default".to_string()],
        };
        let run = run_spec(spec, 4821);
        assert!(!run.config.contains_key(instance::KEY_MANAGED));
        assert_eq!(
            run.config
                .get(crate::containers::runs::KEY_RUN)
                .map(String::as_str),
            Some("4821")
        );
        assert_eq!(
            run.config.get("limits.memory").map(String::as_str),
            Some("1GiB")
        );
        assert_eq!(run.devices.keys().collect::<Vec<_>>(), ["data"]);
    }
}
