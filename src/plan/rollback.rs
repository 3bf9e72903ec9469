//! The plan of `inx rollback`.

use super::{Action, Plan, What};
use crate::clients::incus::{Client, Instance};
use crate::clients::nix;
use crate::containers::generations::Generation;
use crate::containers::instance::KEY_SYSTEM;
use crate::name::{ContainerName, StorePath};
use std::collections::BTreeMap;
use std::path::Path;

/// The plan of `inx rollback`: the profile first (the container boots it from now on), then,
/// if it runs, a switch in place; last the record of what inx deployed, also for a stopped
/// container, so that `list` can tell a system set by someone else (drift) from inx's own.
pub fn rollback(
    name: &ContainerName,
    profile_dir: &Path,
    target: &Generation,
    current: Option<&Generation>,
    instance: &Instance,
    running: Option<&StorePath>,
    incus: &Client,
) -> Plan {
    let mut plan = Plan::default();
    let step = |what, description: String, action| super::step(name, what, description, action);
    if current.map(|c| c.number) != Some(target.number) {
        plan.steps.push(step(
            What::Profile,
            format!(
                "point the host profile at generation {} ({})",
                target.number,
                target.system.base_name()
            ),
            Action::Run(nix::switch_generation(
                &profile_dir.join("system"),
                target.number,
            )),
        ));
    }
    if instance.running() && running != Some(&target.system) {
        let switch = incus.exec(
            name,
            &[
                "/nix/var/nix/profiles/system/bin/switch-to-configuration".to_string(),
                "switch".to_string(),
            ],
        );
        plan.steps.push(step(
            What::Switch,
            format!("switch to generation {} in place", target.number),
            Action::Run(switch),
        ));
    }
    if instance.config.get(KEY_SYSTEM).map(String::as_str) != Some(target.system.as_str()) {
        let record = BTreeMap::from([(KEY_SYSTEM.to_string(), target.system.to_string())]);
        plan.steps.push(step(
            What::Config,
            "record the deployed system".to_string(),
            Action::Run(incus.config_set(name, &record)),
        ));
    }
    if plan.steps.is_empty() {
        plan.unchanged.push(name.clone());
    }
    plan
}
