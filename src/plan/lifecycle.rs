//! The plans of `inx start|stop|restart` and `inx destroy`: only managed instances, only
//! what is needed.

use super::{
    missing_error, run, start, step, unmanaged_error, Action, Plan, RootsDir, Shutdown, What,
};
use crate::clients::incus::{Client, Instance};
use crate::containers::instance;
use crate::error::{Error, Result};
use crate::hosts::SshDest;
use crate::name::ContainerName;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    Start,
    Stop,
    Restart,
}

/// The plan of `inx start|stop|restart`: only managed instances, only what is needed.
pub fn lifecycle(
    op: Lifecycle,
    names: &[ContainerName],
    instances: &BTreeMap<String, Instance>,
    incus: &Client,
    shutdown: Shutdown,
) -> Result<Plan> {
    let mut plan = Plan::default();
    for name in names {
        let inst = instances
            .get(name.as_str())
            .ok_or_else(|| missing_error(name))?;
        if !instance::is_managed(inst) {
            return Err(unmanaged_error(name.as_str()));
        }
        let running = inst.running();
        match (op, running) {
            (Lifecycle::Start, false) => plan.steps.push(start(name, "start", incus)),
            (Lifecycle::Stop, true) => {
                plan.steps
                    .push(step(name, What::Stop, "stop", shutdown.stop(incus, name)))
            }
            (Lifecycle::Restart, true) => plan.steps.push(step(
                name,
                What::Restart,
                "restart",
                shutdown.restart(incus, name),
            )),
            (Lifecycle::Restart, false) => {
                plan.steps
                    .push(start(name, "start (it was stopped)", incus))
            }
            _ => plan.unchanged.push(name.clone()),
        }
    }
    Ok(plan)
}

/// Where a container keeps things on its host, and whether each exists; `ssh` when that host
/// is another machine (then its folders are removed over ssh).
#[derive(Debug, Clone)]
pub struct HostDirs {
    pub profile: (PathBuf, bool),
    pub roots: (PathBuf, bool),
    /// The roots lock here, which `roots sync` and `watch` hold while they write roots.
    pub roots_lock: PathBuf,
    pub ssh: Option<SshDest>,
}

/// A container `destroy` is asked for: its instance (if any), its server's client, its folders.
#[derive(Debug, Clone)]
pub struct Doomed<'a> {
    pub instance: Option<&'a Instance>,
    pub incus: &'a Client,
    pub dirs: HostDirs,
}

/// The plan of `inx destroy`: the instance, its host profile and its GC roots, nothing else.
/// A running container is stopped first as `shutdown` says (cleanly, as nixos-container's
/// destroy does: its services may have something to say on the way out).
pub fn destroy(
    names: &[ContainerName],
    doomed: &BTreeMap<ContainerName, Doomed>,
    shutdown: Shutdown,
) -> Result<Plan> {
    let mut plan = Plan::default();
    for name in names {
        let Doomed {
            instance: inst,
            incus,
            dirs,
        } = &doomed[name];
        if let Some(inst) = inst {
            if !instance::is_managed(inst) {
                return Err(unmanaged_error(name.as_str()));
            }
        }
        let HostDirs {
            profile: (dir, exists),
            roots: (roots, has_roots),
            roots_lock,
            ssh,
        } = dirs;
        if inst.is_none() && !exists && !has_roots {
            return Err(Error::input(format!(
                "there is no container named {name} to destroy"
            )));
        }
        if inst.is_some_and(|i| i.running()) {
            plan.steps
                .push(step(name, What::Stop, "stop", shutdown.stop(incus, name)));
        }
        if inst.is_some() {
            plan.steps.push(run(
                name,
                What::Delete,
                "delete the instance and its root filesystem",
                incus.delete(name),
            ));
        }
        if let Some(dest) = ssh.as_ref().filter(|_| *exists || *has_roots) {
            plan.steps.push(run(
                name,
                What::RemoveProfile,
                format!(
                    "remove the host profile and its GC roots on {}",
                    dest.login()
                ),
                dest.remove(&[dir.clone(), roots.clone()]),
            ));
            continue;
        }
        if ssh.is_some() {
            continue;
        }
        if *exists {
            plan.steps.push(step(
                name,
                What::RemoveProfile,
                "remove the host profile and its generations",
                Action::RemoveDir(dir.clone()),
            ));
        }
        if *has_roots {
            plan.steps.push(step(
                name,
                What::RemoveRoots,
                "remove its GC roots (what it built can be collected)",
                Action::RemoveRoots(RootsDir {
                    dir: roots.clone(),
                    lock: roots_lock.clone(),
                }),
            ));
        }
    }
    Ok(plan)
}
