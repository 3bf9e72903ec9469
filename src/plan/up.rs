//! The plan of `inx up`: each declared container brought to its declared state, one build for
//! all of them first.

use super::{run, start, step, unmanaged_error, Action, Note, Plan, Shutdown, Step, What};
use crate::clients::incus::{Client, Instance};
use crate::clients::nix;
use crate::containers::instance::{self, Diff, Spec, KEY_SYSTEM};
use crate::containers::manifest::{self, Manifest};
use crate::containers::profile::ProfileState;
use crate::error::{Error, Result};
use crate::hosts::Store;
use crate::images::ImageFiles;
use crate::name::{ContainerName, RemoteName, StorePath};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Everything known about one container that `up` should bring to its declared state.
#[derive(Debug, Clone)]
pub struct Facts<'a> {
    pub manifest: &'a Manifest,
    /// The instance as declared, its shared mounts shifted (see `up` for servers that cannot).
    pub spec: Spec,
    pub profile_dir: PathBuf,
    /// Whether the profile directory exists (a new container's does not yet).
    pub profile_dir_exists: bool,
    pub profile: ProfileState,
    pub instance: Option<&'a Instance>,
    /// What the container runs now: read through its init's root, or the recorded key.
    pub running_system: Option<StorePath>,
    /// Whether the declared system is already in the store.
    pub built: bool,
    /// Set when the container runs from its image instead of the shared store.
    pub image: Option<ImageSource>,
    /// The client of the server it runs on (its remote's).
    pub incus: Client,
    /// The cluster member to create it on, when declared.
    pub target: Option<String>,
    /// The store of its host; `None` while Incus has yet to pick a cluster member for it.
    pub store: Option<Store>,
    /// Its host as plans and `list` name it (see `hosts::label`).
    pub host: String,
}

/// The image a container runs from.
#[derive(Debug, Clone)]
pub struct ImageSource {
    /// The built files; `None` when they are not built yet (a dry run) or not needed (the
    /// instance exists).
    pub files: Option<ImageFiles>,
    /// What to realise for them (a dry run that would build them).
    pub to_build: Vec<String>,
    /// Whether the server has the image already.
    pub present: bool,
}

/// What each server answered when asked whether it can idmap mounts (`query /1.0`, see
/// `incus::parse_idmapped_mounts`), by remote (`None`: the local server), or why asking
/// failed. A server not here is taken to be able.
pub type Idmap = BTreeMap<Option<RemoteName>, Result<bool>>;

/// What `up` needs of a container's image, decided before anything is evaluated for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageNeed {
    /// It runs from the shared store.
    Nothing,
    /// Its instance was made from its image and keeps it: nothing to evaluate or build.
    Kept,
    /// Its instance is to be made from its image: its image outputs are evaluated and built.
    Outputs,
}

impl ImageSource {
    /// The image of an instance made from it before (see `ImageNeed::Kept`).
    pub fn kept() -> ImageSource {
        ImageSource {
            files: None,
            to_build: Vec::new(),
            present: true,
        }
    }
}

/// What `up` needs of `m`'s image: `wanted` with --from-image or fromImage, on the local
/// server (`local`), where `instance` is what that server lists of that name. Refuses an
/// image on another server, and an instance made one way now declared the other.
pub fn image_need(
    m: &Manifest,
    local: bool,
    instance: Option<&Instance>,
    from_image: bool,
) -> Result<ImageNeed> {
    let wanted = from_image || m.from_image;
    if wanted && !local {
        return Err(Error::input(format!(
            "{} is declared to run from its image on another server; inx runs image-based containers on the local server only",
            m.name
        ))
        .with_hint("publish the image there with `inx image publish NAME REMOTE:` and launch it with incus, or drop fromImage to use that host's store"));
    }
    let managed = instance.filter(|i| instance::is_managed(i));
    match managed.map(instance::is_from_image) {
        Some(true) if !wanted => Err(Error::input(format!(
            "{} was made from its image, but is now declared to use the shared store",
            m.name
        ))
        .with_hint(format!(
            "`inx destroy {0}` and `inx up {0}` make it again from the shared store, or pass --from-image",
            m.name
        ))),
        Some(false) if wanted => Err(Error::input(format!(
            "{} was made from the shared store; inx does not turn it into an image-based container",
            m.name
        ))
        .with_hint(format!(
            "`inx destroy {0}` and `inx up --from-image {0}` make it again from its image",
            m.name
        ))),
        _ if !wanted => Ok(ImageNeed::Nothing),
        Some(_) => Ok(ImageNeed::Kept),
        None => Ok(ImageNeed::Outputs),
    }
}

/// The plan of `inx up`. Refuses, before any step, to touch an instance inx does not manage.
/// A running container that must stop for a setting is stopped as `shutdown` says. The
/// shared mounts are shifted (`Facts::spec`) on every server but those that cannot idmap
/// them (see `unshifted`).
pub fn up(
    targets: &[Facts],
    idmap: &Idmap,
    build_root: &std::path::Path,
    shutdown: Shutdown,
) -> Result<Plan> {
    for t in targets {
        refuse(t)?;
    }
    let plan = plan_each(targets, build_root, shutdown);
    let (no_shift, warnings) = unshifted(&plan, targets, idmap)?;
    if no_shift.is_empty() {
        return Ok(plan);
    }
    let targets: Vec<Facts> = targets
        .iter()
        .map(|t| Facts {
            spec: if no_shift.contains(&t.incus.remote) {
                instance::without_shift(&t.spec)
            } else {
                t.spec.clone()
            },
            ..t.clone()
        })
        .collect();
    let mut plan = plan_each(&targets, build_root, shutdown);
    plan.warnings = warnings;
    Ok(plan)
}

/// The servers whose containers get unshifted mounts, and a warning for each: those that
/// cannot idmap mounts. A server's answer matters only where `plan` writes inx's devices
/// there, and so does a failed question (a server that listed fine fails nothing else).
fn unshifted(
    plan: &Plan,
    targets: &[Facts],
    idmap: &Idmap,
) -> Result<(BTreeSet<Option<RemoteName>>, Vec<String>)> {
    let mut no_shift = BTreeSet::new();
    let mut warnings = Vec::new();
    for (remote, answer) in idmap {
        let writes = plan.writes_inx_devices_on(|c| {
            targets
                .iter()
                .any(|t| &t.manifest.name == c && &t.incus.remote == remote)
        });
        if !writes || *answer.as_ref().map_err(Clone::clone)? {
            continue;
        }
        let server = match remote {
            None => "this Incus server".to_string(),
            Some(r) => format!("the Incus server {r}"),
        };
        warnings.push(format!(
            "{server} cannot idmap mounts, so /nix/store shows up owned by nobody inside unprivileged containers (it still works read-only)"
        ));
        no_shift.insert(remote.clone());
    }
    Ok((no_shift, warnings))
}

/// The plan of `up` with each container's spec as it is.
fn plan_each(targets: &[Facts], build_root: &std::path::Path, shutdown: Shutdown) -> Plan {
    let mut plan = Plan::default();
    // Every system a profile is about to take is realised with a root, built or not: a path
    // that exists but nothing roots could be collected before `nix-env --set` holds it.
    let deploy: Vec<&Facts> = targets
        .iter()
        .filter(|t| t.image.is_none() && t.store.is_some())
        .filter(|t| t.profile.system.as_ref() != Some(&t.manifest.toplevel))
        .collect();
    plan.steps.extend(build(targets, &deploy, build_root));
    plan.steps.extend(other_hosts(&deploy));
    for t in targets {
        let before = plan.steps.len();
        if let Some(image) = &t.image {
            plan_image_container(t, image, &t.incus, shutdown, &mut plan);
        } else if t.store.is_none() {
            plan_unplaced(t, &mut plan);
        } else {
            plan_container(t, &t.incus, shutdown, &mut plan.steps);
        }
        if plan.steps.len() == before {
            plan.unchanged.push(t.manifest.name.clone());
        }
        // A container on another host: its steps say which (the executor gives each host its
        // own workers).
        if t.store != Some(Store::Local) {
            for step in &mut plan.steps[before..] {
                step.host = Some(t.host.clone());
            }
        }
    }
    plan
}

/// What `up` refuses before any step: an instance inx does not manage, one on another
/// cluster member than declared, one that is not a container.
fn refuse(t: &Facts) -> Result<()> {
    let Some(inst) = t.instance else {
        return Ok(());
    };
    if !instance::is_managed(inst) {
        return Err(unmanaged_error(inst.name.as_str()));
    }
    if let (Some(member), false) = (&t.target, inst.location.is_empty()) {
        if *member != inst.location {
            return Err(Error::input(format!(
                "{} is on member {}, but is declared on {member}",
                inst.name, inst.location
            ))
            .with_hint(format!(
                "`inx move {} --to {member}` moves it (or declare the member it is on)",
                inst.name
            )));
        }
    }
    if inst.kind != "container" {
        return Err(Error::input(format!(
            "{} is an Incus {}, not a container; inx up only manages containers",
            inst.name, inst.kind
        )));
    }
    Ok(())
}

/// The one build of the command, if anything is to be realised: the systems profiles are
/// about to take (`deploy`), those of containers Incus has yet to place (deployed once they
/// are placed), and image outputs.
fn build(targets: &[Facts], deploy: &[&Facts], build_root: &std::path::Path) -> Option<Step> {
    let unbuilt = deploy.iter().filter(|t| !t.built).count();
    let mut to_realise: Vec<String> = deploy
        .iter()
        .map(|t| match (&t.manifest.drv_path, t.built) {
            (Some(drv), false) => drv.clone(),
            _ => t.manifest.toplevel.to_string(),
        })
        .collect();
    let unplaced: Vec<String> = targets
        .iter()
        .filter(|t| t.image.is_none() && t.store.is_none() && !t.built)
        .map(|t| match &t.manifest.drv_path {
            Some(drv) => drv.clone(),
            None => t.manifest.toplevel.to_string(),
        })
        .collect();
    let unbuilt = unbuilt + unplaced.len();
    to_realise.extend(unplaced);
    let images: Vec<String> = targets
        .iter()
        .filter_map(|t| t.image.as_ref())
        .flat_map(|i| i.to_build.iter().cloned())
        .collect();
    to_realise.extend(images.iter().cloned());
    if to_realise.is_empty() {
        return None;
    }
    let systems = |n: usize| match n {
        1 => "1 system".to_string(),
        n => format!("{n} systems"),
    };
    let mut description = match (unbuilt, to_realise.len() - images.len() - unbuilt) {
        (0, n) => format!(
            "keep {} from the GC until the profiles hold them",
            systems(n)
        ),
        (b, 0) => format!("build {}", systems(b)),
        (b, n) => format!("build {} (and keep {n} built ones from the GC)", systems(b)),
    };
    if to_realise.len() == images.len() {
        description = format!("build {} image outputs", images.len());
    } else if !images.is_empty() {
        description.push_str(&format!(", and {} image outputs", images.len()));
    }
    Some(Step {
        container: None,
        host: None,
        what: What::Build,
        description,
        action: Action::Run(nix::realise(&to_realise, build_root)),
    })
}

/// Other hosts' stores: per host, its lock and roots for the systems held (see `hold`), one
/// copy of what its containers need, then their profiles set in one ssh call.
fn other_hosts(deploy: &[&Facts]) -> Vec<Step> {
    let mut remote: std::collections::BTreeMap<&crate::hosts::SshDest, Vec<&Facts>> =
        Default::default();
    for t in deploy {
        if let Some(Store::Ssh(dest)) = &t.store {
            remote.entry(dest).or_default().push(t);
        }
    }
    let mut steps = Vec::new();
    for (dest, ts) in remote {
        let host = Some(ts[0].host.clone());
        let systems: Vec<&StorePath> = ts.iter().map(|t| &t.manifest.toplevel).collect();
        let names: Vec<&str> = ts.iter().map(|t| t.manifest.name.as_str()).collect();
        steps.push(super::remote::hold(dest, host.clone(), &systems));
        steps.push(Step {
            container: None,
            host: host.clone(),
            what: What::Copy,
            description: format!(
                "copy the systems of {} to {}",
                names.join(", "),
                dest.login()
            ),
            action: Action::Run(dest.copy(&systems)),
        });
        let sets: Vec<(PathBuf, StorePath)> = ts
            .iter()
            .map(|t| (t.profile_dir.clone(), t.manifest.toplevel.clone()))
            .collect();
        steps.push(Step {
            container: None,
            host,
            what: What::Profile,
            description: format!("point the host profiles of {} at them", names.join(", ")),
            action: Action::Run(dest.set_profiles(&sets)),
        });
    }
    steps
}

/// The device that binds a container's host profile directory.
const PROFILES_DEVICE: &str = "inx-profiles";

/// A container on a cluster with no target and no instance yet: created where Incus places it,
/// without the profile directory it cannot have yet (Incus checks a disk's source exists) and
/// not started. `inx up` then reads where it landed and plans again: copy, profile, the
/// device, start.
fn plan_unplaced(t: &Facts, plan: &mut Plan) {
    let name = &t.manifest.name;
    let mut spec = t.spec.clone();
    spec.devices.remove(PROFILES_DEVICE);
    plan.steps.push(run(
        name,
        What::Create,
        format!(
            "create the instance where {} places it (not started yet)",
            t.host
        ),
        t.incus
            .create_empty(name, None, &spec.profiles, instance::create_input(&spec)),
    ));
    plan.notes.push(Note::Placed(name.clone()));
}

fn plan_container(t: &Facts, incus: &Client, shutdown: Shutdown, steps: &mut Vec<Step>) {
    let name = &t.manifest.name;
    let system = &t.manifest.toplevel;
    let local = t.store == Some(Store::Local);

    if t.profile.system.as_ref() != Some(system) && local {
        let next = t.profile.generation.map_or(1, |g| g + 1);
        if !t.profile_dir_exists {
            steps.push(step(
                name,
                What::Profile,
                "create the host profile directory",
                Action::CreateDir(t.profile_dir.clone()),
            ));
        }
        steps.push(run(
            name,
            What::Profile,
            format!(
                "point the host profile at {} (generation {next})",
                system.base_name()
            ),
            nix::set_profile(&t.profile_dir.join("system"), system),
        ));
    }

    let Some(inst) = t.instance else {
        steps.push(run(
            name,
            What::Create,
            "create the instance (empty root filesystem, shared store)",
            incus.create_empty(
                name,
                t.target.as_deref(),
                &t.spec.profiles,
                instance::create_input(&t.spec),
            ),
        ));
        steps.push(start(name, "start", incus));
        return;
    };

    let diff = instance::diff(&t.spec, inst);
    if !inst.running() {
        apply(name, &diff, incus, steps);
        steps.push(start(name, "start", incus));
        return;
    }
    if diff.needs_restart() {
        steps.push(step(
            name,
            What::Stop,
            "stop: a changed setting takes effect only at start",
            shutdown.stop(incus, name),
        ));
        apply(name, &diff, incus, steps);
        steps.push(start(name, "start", incus));
        return;
    }
    // The profile directory was removed on the host while the container ran, which still
    // has the removed one bound (empty): bind the new one in its place, before a switch runs
    // from it.
    if !t.profile_dir_exists && !diff.remove_devices.iter().any(|d| d == PROFILES_DEVICE) {
        if let Some(props) = t.spec.devices.get(PROFILES_DEVICE) {
            steps.push(run(
                name,
                What::InxDevices,
                format!("remove device {PROFILES_DEVICE}: its directory was removed on the host"),
                incus.device_remove(name, PROFILES_DEVICE),
            ));
            steps.push(run(
                name,
                What::InxDevices,
                format!("add device {PROFILES_DEVICE}: bind the new profile directory"),
                incus.device_add(name, PROFILES_DEVICE, props),
            ));
        }
    }
    if t.running_system.as_ref() != Some(system) {
        let switch = incus.exec(
            name,
            &[
                "/nix/var/nix/profiles/system/bin/switch-to-configuration".to_string(),
                "switch".to_string(),
            ],
        );
        steps.push(run(
            name,
            What::Switch,
            format!("switch to {} in place", system.base_name()),
            switch,
        ));
    }
    apply(name, &diff, incus, steps);
}

/// A container that runs from its image: imported once, created from it, then only its
/// settings are kept in line. A new system cannot be switched in from the host's store, so
/// it is reported and left alone; `destroy` and `up` make the container again.
fn plan_image_container(
    t: &Facts,
    image: &ImageSource,
    incus: &Client,
    shutdown: Shutdown,
    plan: &mut Plan,
) {
    let name = &t.manifest.name;
    let Some(inst) = t.instance else {
        let Some(files) = &image.files else {
            plan.notes.push(Note::Remark(format!(
                "{name}: after the build, import its image and create the instance from it"
            )));
            return;
        };
        if !image.present {
            plan.steps.push(run(
                name,
                What::Import,
                format!(
                    "import its image {}",
                    &files.fingerprint[..files.fingerprint.len().min(12)]
                ),
                // No alias: the instance is made from the fingerprint.
                incus.image_import(files.paths(), None, None, false),
            ));
        }
        plan.steps.push(run(
            name,
            What::Create,
            "create the instance from its image (no shared store)",
            incus.create_from_image(
                &files.fingerprint,
                name,
                &t.spec.profiles,
                instance::create_input(&t.spec),
            ),
        ));
        plan.steps.push(start(name, "start", incus));
        return;
    };
    let diff = instance::diff(&t.spec, inst);
    let mut steps = Vec::new();
    if !inst.running() {
        apply(name, &diff, incus, &mut steps);
        steps.push(start(name, "start", incus));
    } else if diff.needs_restart() {
        steps.push(step(
            name,
            What::Stop,
            "stop: a changed setting takes effect only at start",
            shutdown.stop(incus, name),
        ));
        apply(name, &diff, incus, &mut steps);
        steps.push(start(name, "start", incus));
    } else {
        apply(name, &diff, incus, &mut steps);
    }
    plan.steps.extend(steps);
    let recorded = inst.config.get(KEY_SYSTEM).map(String::as_str);
    if recorded != Some(t.manifest.toplevel.as_str()) {
        plan.notes.push(Note::Remark(format!(
            "{name} runs from an image of an older system; inx does not replace its root filesystem: `inx destroy {name}` and `inx up {name}` make it again from the new image"
        )));
    }
}

/// Steps that make the instance's config match; a system record is written last, after the
/// switch it records succeeded.
fn apply(name: &ContainerName, diff: &Diff, incus: &Client, steps: &mut Vec<Step>) {
    for key in &diff.unset {
        steps.push(run(
            name,
            What::Config,
            format!("unset {key}"),
            incus.config_unset(name, key),
        ));
    }
    let devices = |device: &str| {
        if manifest::is_inx_device(device) {
            What::InxDevices
        } else {
            What::Devices
        }
    };
    for device in &diff.remove_devices {
        steps.push(run(
            name,
            devices(device),
            format!("remove device {device}"),
            incus.device_remove(name, device),
        ));
    }
    for (device, props) in &diff.add_devices {
        steps.push(run(
            name,
            devices(device),
            format!("add device {device}"),
            incus.device_add(name, device, props),
        ));
    }
    if let Some(profiles) = &diff.profiles {
        steps.push(run(
            name,
            What::Profiles,
            format!("assign profiles {}", profiles.join(",")),
            incus.profile_assign(name, profiles),
        ));
    }
    if !diff.set.is_empty() {
        let keys: Vec<&str> = diff.set.keys().map(String::as_str).collect();
        let what = if keys == [KEY_SYSTEM] {
            "record the deployed system".to_string()
        } else {
            format!("set {}", keys.join(", "))
        };
        steps.push(run(
            name,
            What::Config,
            what,
            incus.config_set(name, &diff.set),
        ));
    }
}
