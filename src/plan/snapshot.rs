//! The plans of `inx snapshot` and `inx restore`: a snapshot holds the root filesystem and
//! config, and inx keeps the system it was taken with (a GC root per snapshot), so that a
//! restore brings back both.

use super::{Action, Plan, What};
use crate::clients::incus::{Client, Instance};
use crate::clients::nix;
use crate::name::{ContainerName, SnapshotName, StorePath};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The system's root first (a crash leaves a root too many, which the next sync drops, never
/// a snapshot whose system can be collected), then the snapshot.
pub fn take(
    name: &ContainerName,
    snapshot: &SnapshotName,
    system: &StorePath,
    roots_dir: PathBuf,
    roots_now: &BTreeMap<String, StorePath>,
    incus: &Client,
) -> Plan {
    let mut links = roots_now.clone();
    links.insert(snapshot.to_string(), system.clone());
    let step = |what, description: String, action| super::step(name, what, description, action);
    Plan {
        steps: vec![
            step(
                What::Roots,
                format!(
                    "keep {} from the GC while snapshot {snapshot} exists",
                    system.base_name()
                ),
                Action::WriteSnapshotRoots {
                    dir: roots_dir,
                    links,
                },
            ),
            step(
                What::Snapshot,
                format!("take snapshot {snapshot}"),
                Action::Run(incus.snapshot_create(name, snapshot)),
            ),
        ],
        ..Plan::default()
    }
}

/// Stops a running container, points its profile at the snapshot's system (a new
/// generation, so `inx rollback` can go back), brings back the snapshot's root filesystem
/// and config, and starts it again if it ran: it boots the snapshot's system on its own files.
pub fn restore(
    name: &ContainerName,
    snapshot: &SnapshotName,
    system: &StorePath,
    profile_dir: &Path,
    profile_now: Option<&StorePath>,
    instance: &Instance,
    incus: &Client,
) -> Plan {
    let mut plan = Plan::default();
    let step = |what, description: String, action| super::step(name, what, description, action);
    if instance.running() {
        plan.steps.push(step(
            What::Stop,
            "stop".to_string(),
            super::Shutdown::default().stop(incus, name),
        ));
    }
    if profile_now != Some(system) {
        plan.steps.push(step(
            What::Profile,
            format!("point the host profile at {}", system.base_name()),
            Action::Run(nix::set_profile(&profile_dir.join("system"), system)),
        ));
    }
    plan.steps.push(step(
        What::Snapshot,
        format!("restore snapshot {snapshot} (root filesystem and config)"),
        Action::Run(incus.snapshot_restore(name, snapshot)),
    ));
    if instance.running() {
        plan.steps.push(step(
            What::Start,
            "start".to_string(),
            Action::Start(super::Start {
                on: incus.clone(),
                name: name.clone(),
            }),
        ));
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::incus::Backend;
    use crate::name::ProjectName;

    fn incus() -> Client {
        Client {
            backend: Backend::Incus,
            project: Some(ProjectName::parse("default").unwrap()),
            remote: None,
        }
    }

    fn system(v: &str) -> StorePath {
        StorePath::parse(&format!(
            "/nix/store/{}-inx-synthetic-system-{v}",
            "a".repeat(32)
        ))
        .unwrap()
    }

    fn instance(status: &str) -> Instance {
        serde_json::from_value(serde_json::json!({ "name": "web", "status": status })).unwrap()
    }

    #[test]
    fn a_snapshot_roots_its_system_before_it_is_taken_and_keeps_the_other_roots() {
        let web = ContainerName::parse("web").unwrap();
        let now = BTreeMap::from([("before".to_string(), system("0"))]);
        let plan = take(
            &web,
            &SnapshotName::parse("v1").unwrap(),
            &system("1"),
            PathBuf::from("/nix/var/nix/gcroots/inx/web/snapshots"),
            &now,
            &incus(),
        );
        insta::assert_snapshot!(plan.to_shell());
    }

    #[test]
    fn restoring_a_running_container_stops_it_sets_the_profile_restores_and_starts() {
        let web = ContainerName::parse("web").unwrap();
        let plan = restore(
            &web,
            &SnapshotName::parse("v1").unwrap(),
            &system("1"),
            Path::new("/nix/var/nix/profiles/inx/web"),
            Some(&system("2")),
            &instance("Running"),
            &incus(),
        );
        insta::assert_snapshot!(plan.to_shell());
    }

    #[test]
    fn restoring_a_stopped_container_at_the_same_system_only_restores() {
        let web = ContainerName::parse("web").unwrap();
        let plan = restore(
            &web,
            &SnapshotName::parse("v1").unwrap(),
            &system("1"),
            Path::new("/nix/var/nix/profiles/inx/web"),
            Some(&system("1")),
            &instance("Stopped"),
            &incus(),
        );
        let whats: Vec<What> = plan.steps.iter().map(|s| s.what).collect();
        assert_eq!(whats, vec![What::Snapshot]);
    }
}
