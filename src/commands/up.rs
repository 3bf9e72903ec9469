use super::{parse_names, Ctx};
use crate::clients::{incus, nix};
use crate::containers::instance::{self, DAEMON_SOCKET_DIR, KEY_IMAGE, KEY_SYSTEM};
use crate::containers::manifest::{self, Manifest};
use crate::containers::profile::Profiles;
use crate::error::{Error, Kind, Result};
use crate::images::{self, ImageKind, ImageOutputs};
use crate::name::ContainerName;
use crate::plan::{self, Facts, ImageSource, Plan, What};
use std::collections::BTreeMap;
use std::path::Path;

pub fn up(ctx: &Ctx, names: &[String], from_image: bool) -> Result<()> {
    let names = parse_names(names)?;
    let _lock = ctx.lock()?;

    // Gather: one evaluation, one listing and the server's idmap support, all at once (the
    // two queries take less time than the evaluation, so `up` waits for Nix only). The project
    // is settled first, from the client's own config.
    let incus = ctx.incus()?;
    let eval = nix::eval_manifests(&ctx.flake, (!names.is_empty()).then_some(&names[..]));
    let (list, query) = (incus.list(), incus.server_info());
    let [out, listed, server] = ctx.runner.capture_all([&eval, &list, &query]);
    let out = nix::evaluated(&ctx.flake, &eval, out)?;
    let manifests = manifest::parse_eval_output(&out.stdout)?;
    if manifests.is_empty() {
        eprintln!(
            "the flake {} declares no containers in inxContainers",
            ctx.flake
        );
        if ctx.json {
            // Nothing to do is still a plan: --json always prints one document.
            ctx.print_plan(&Plan::default());
        }
        return Ok(());
    }
    let instances = incus::parse_list(&incus::checked(&list, listed?)?)?;
    let images = image_sources(ctx, &manifests, &instances, from_image)?;

    // Plan, assuming the server can shift the shared mounts; its answer matters only when
    // inx's devices are about to be written (a server that failed that query but listed fine
    // fails nothing else).
    let flake = ctx.flake_record();
    let profiles = ctx.profiles()?;
    let targets = |shift: bool| -> Vec<Facts> {
        manifests
            .iter()
            .map(|m| target(profiles, m, &instances, &flake, shift, images.get(&m.name)))
            .collect()
    };
    let mut plan = plan::up(&targets(true), ctx.incus()?, &ctx.build_root())?;
    if plan.writes_inx_devices() && !incus::parse_idmapped_mounts(&incus::checked(&query, server?)?)
    {
        eprintln!(
            "warning: this Incus server cannot idmap mounts, so /nix/store shows up owned by nobody inside unprivileged containers (it still works read-only)"
        );
        plan = plan::up(&targets(false), ctx.incus()?, &ctx.build_root())?;
    }
    if !ctx.dry_run {
        check_host(&plan, &images)?;
    }
    ctx.carry_out(&plan)?;
    for name in plan.unchanged.iter().filter(|_| !ctx.dry_run) {
        ctx.runner.progress(format_args!("{name}: up to date"));
    }
    for note in plan.notes.iter().filter(|_| !ctx.dry_run) {
        eprintln!("note: {note}");
    }
    Ok(())
}

fn target<'a>(
    profiles: &Profiles,
    m: &'a Manifest,
    instances: &'a BTreeMap<String, incus::Instance>,
    flake: &str,
    shift: bool,
    image: Option<&ImageSource>,
) -> Facts<'a> {
    let profile_dir = profiles.dir(&m.name);
    let instance = instances.get(m.name.as_str());
    let running_system = instance
        .filter(|i| instance::is_managed(i))
        .and_then(instance::running_system);
    let spec = match image {
        None => instance::desired(m, flake, &profile_dir, shift),
        Some(image) => {
            // An existing instance keeps the image and system it was made from.
            let recorded = |key: &str| instance.and_then(|i| i.config.get(key)).cloned();
            let fingerprint = recorded(KEY_IMAGE)
                .or_else(|| image.files.as_ref().map(|f| f.fingerprint.clone()))
                .unwrap_or_default();
            let system = recorded(KEY_SYSTEM).unwrap_or_else(|| m.toplevel.to_string());
            instance::desired_from_image(m, flake, &fingerprint, &system)
        }
    };
    Facts {
        manifest: m,
        spec,
        profile: profiles.read(&m.name),
        profile_dir_exists: profile_dir.is_dir(),
        profile_dir,
        instance,
        running_system,
        built: Path::new(m.toplevel.as_str()).exists(),
        image: image.cloned(),
    }
}

/// For containers that run from their image: their image outputs (one evaluation each, only
/// for instances still to be made), built before planning (nothing on the server changes
/// until the plan runs; a dry run builds nothing), and whether the server has them.
fn image_sources(
    ctx: &Ctx,
    manifests: &[Manifest],
    instances: &BTreeMap<String, incus::Instance>,
    from_image: bool,
) -> Result<BTreeMap<ContainerName, ImageSource>> {
    let mut sources = BTreeMap::new();
    let mut outputs: Vec<ImageOutputs> = Vec::new();
    for m in manifests {
        let wanted = from_image || m.from_image;
        let inst = instances
            .get(m.name.as_str())
            .filter(|i| instance::is_managed(i));
        match inst.map(instance::is_from_image) {
            Some(true) if !wanted => {
                return Err(Error::input(format!(
                    "{} was made from its image, but is now declared to use the shared store",
                    m.name
                ))
                .with_hint(format!("`inx destroy {0}` and `inx up {0}` make it again from the shared store, or pass --from-image", m.name)))
            }
            Some(false) if wanted => {
                return Err(Error::input(format!(
                    "{} was made from the shared store; inx does not turn it into an image-based container",
                    m.name
                ))
                .with_hint(format!("`inx destroy {0}` and `inx up --from-image {0}` make it again from its image", m.name)))
            }
            _ => {}
        }
        if !wanted {
            continue;
        }
        if inst.is_some() {
            sources.insert(
                m.name.clone(),
                ImageSource {
                    files: None,
                    to_build: Vec::new(),
                    present: true,
                },
            );
            continue;
        }
        let cmd = images::eval_images(&ctx.flake, &m.name, ImageKind::Container);
        let out = ctx.evaluate(&cmd)?;
        outputs.push(images::parse_eval(
            &out.stdout,
            &m.name,
            ImageKind::Container,
        )?);
    }
    if outputs.is_empty() {
        return Ok(sources);
    }
    let to_build: Vec<String> = outputs.iter().flat_map(|o| o.to_build()).collect();
    // Their files are read to plan the import, so they are built first, by the executor (a
    // dry run plans the build with the systems instead).
    if !ctx.dry_run {
        let plan = Plan::building(&to_build, &ctx.build_root(), None, |n| {
            format!("build {n} image outputs")
        });
        ctx.build_first(plan, "import the images and create the containers")?;
    }
    let list = ctx.incus()?.image_list(None);
    let present: Vec<String> =
        incus::parse_images(&incus::checked(&list, ctx.runner.capture(&list)?)?)?
            .into_iter()
            .map(|i| i.fingerprint)
            .collect();
    for o in outputs {
        let unbuilt = o.to_build();
        let files = if unbuilt.is_empty() {
            Some(o.files()?)
        } else {
            None
        };
        let source = ImageSource {
            present: files
                .as_ref()
                .is_some_and(|f| present.contains(&f.fingerprint)),
            files,
            to_build: unbuilt,
        };
        sources.insert(o.name.clone(), source);
    }
    Ok(sources)
}

/// A shared-store container cannot start without the host daemon's socket directory bound in
/// (one made from its image needs no daemon).
fn check_host(plan: &Plan, images: &BTreeMap<ContainerName, ImageSource>) -> Result<()> {
    let starts = plan.steps.iter().any(|s| {
        matches!(s.what, What::Create | What::Start)
            && !s.container.as_ref().is_some_and(|c| images.contains_key(c))
    });
    if starts && !Path::new(DAEMON_SOCKET_DIR).is_dir() {
        return Err(Error::new(
            Kind::ToolMissing,
            format!(
                "{DAEMON_SOCKET_DIR} does not exist: the Nix daemon is not running on this host"
            ),
        )
        .with_hint(
            "start nix-daemon (systemctl start nix-daemon.socket); inx containers build through it",
        ));
    }
    Ok(())
}
