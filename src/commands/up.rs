use super::{parse_names, Ctx};
use crate::clients::{incus, nix};
use crate::cmd::{Cmd, Output};
use crate::containers::instance::{self, DAEMON_SOCKET_DIR, KEY_IMAGE, KEY_SYSTEM};
use crate::containers::manifest::{self, Manifest};
use crate::error::{Error, Kind, Result};
use crate::hosts::gather;
use crate::hosts::{Placement, Store};
use crate::images::{self, ImageKind, ImageOutputs};
use crate::name::ContainerName;
use crate::output::errln;
use crate::plan::{self, Facts, ImageNeed, ImageSource, Note, Plan, What};
use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::path::Path;

pub fn up(ctx: &Ctx, names: &[String], from_image: bool, shutdown: plan::Shutdown) -> Result<()> {
    let names = parse_names(names)?;
    let _lock = ctx.lock()?;

    // Gather: one evaluation, the local server's listing and its idmap support, all at once
    // (the two queries take less time than the evaluation, so `up` waits for Nix only). The
    // project is settled first, from the client's own config.
    let incus = ctx.incus()?;
    let eval = nix::eval_manifests(&ctx.flake, (!names.is_empty()).then_some(&names[..]));
    let (list, query) = (incus.list(), incus.server_info());
    let [out, listed, server] = ctx.runner.capture_all([&eval, &list, &query]);
    let out = nix::evaluated(&ctx.flake, &eval, out)?;
    let manifests = manifest::parse_eval_output(&out.stdout)?;
    if manifests.is_empty() {
        errln!(
            "the flake {} declares no containers in inxContainers",
            ctx.flake
        );
        if ctx.json {
            // Nothing to do is still a plan: --json always prints one document.
            ctx.print_plan(&Plan::default());
        }
        return Ok(());
    }
    let listings = BTreeMap::from([(None, incus::parse_list(&incus::checked(&list, listed?)?)?)]);
    let local_info = (query, server);
    let mut done = deploy(ctx, &manifests, listings, &local_info, from_image, shutdown)?;
    // Containers on a cluster with no target were created where Incus put them: a second
    // round, with fresh listings, gives them their store and starts them.
    let placed: Vec<Manifest> = manifests
        .iter()
        .filter(|m| done.placed_later().any(|n| *n == m.name))
        .cloned()
        .collect();
    if !placed.is_empty() && !ctx.dry_run {
        let second = deploy(
            ctx,
            &placed,
            BTreeMap::new(),
            &local_info,
            from_image,
            shutdown,
        )?;
        // One document for the whole command: the second round's steps follow the first's.
        done.steps.extend(second.steps);
        done.notes.retain(|n| !matches!(n, Note::Placed(_)));
        done.notes.extend(second.notes);
    }
    ctx.report(&done);
    Ok(())
}

/// Gathers the rest (other servers, other hosts' profiles), plans and carries out `up` for
/// these containers. Returns the plan, to be reported; its `placed_later` are left for a
/// second round (created where a cluster placed them).
fn deploy(
    ctx: &Ctx,
    manifests: &[Manifest],
    listings: gather::Listings,
    local_info: &(Cmd, Result<Output>),
    from_image: bool,
    shutdown: plan::Shutdown,
) -> Result<Plan> {
    let placements: Vec<Placement> = manifests
        .iter()
        .map(|m| ctx.placement.over(&m.host))
        .collect();
    let servers = gather::servers(
        &ctx.gather()?,
        &placements.iter().collect::<Vec<_>>(),
        listings,
        true,
    )?;
    let located: Vec<(Option<&incus::Instance>, Option<Store>)> = manifests
        .iter()
        .zip(&placements)
        .map(|(m, p)| {
            let inst = servers.instance(p, &m.name);
            let store = servers
                .addresses
                .store(p, inst.map(|i| i.location.as_str()))?;
            Ok((inst, store))
        })
        .collect::<Result<_>>()?;
    let profiles = ctx.profiles()?;
    let stores: Vec<(&ContainerName, Option<&Store>)> = manifests
        .iter()
        .zip(&located)
        .map(|(m, (_, s))| (&m.name, s.as_ref()))
        .collect();
    let states = gather::profiles(&ctx.gather()?, profiles, &stores)?;
    let images = image_sources(ctx, manifests, &servers, &placements, from_image)?;

    // What each server said of idmapped mounts: plan/ decides where it matters.
    let idmap: plan::Idmap = std::iter::once((&None, local_info))
        .chain(servers.info.iter())
        .map(|(remote, (query, answer))| {
            let can = answer
                .clone()
                .and_then(|out| incus::checked(query, out))
                .map(|out| incus::parse_idmapped_mounts(&out));
            (remote.clone(), can)
        })
        .collect();

    let flake = ctx.flake_record();
    let targets: Vec<Facts> = manifests
        .iter()
        .zip(&placements)
        .zip(&located)
        .map(|((m, p), (inst, store))| {
            let (dir, exists, state) = states[&m.name].clone();
            Ok(facts_of(FactsIn {
                m,
                instance: *inst,
                flake: &flake,
                image: images.get(&m.name),
                incus: ctx.incus()?.on(p.remote.as_ref()),
                placement: p,
                store: store.clone(),
                profile_dir: dir,
                profile_dir_exists: exists,
                profile: state,
            }))
        })
        .collect::<Result<_>>()?;
    let plan = plan::up(&targets, &idmap, &ctx.build_root(), shutdown)?;
    for warning in &plan.warnings {
        errln!("warning: {warning}");
    }
    if !ctx.dry_run {
        let elsewhere: BTreeSet<&ContainerName> = manifests
            .iter()
            .zip(&located)
            .filter(|(_, (_, store))| *store != Some(Store::Local))
            .map(|(m, _)| &m.name)
            .collect();
        check_host(&plan, &images, &elsewhere)?;
    }
    ctx.execute(&plan)?;
    for name in plan.unchanged.iter().filter(|_| !ctx.dry_run) {
        ctx.runner.progress(format_args!("{name}: up to date"));
    }
    for note in plan.notes.iter().filter(|_| !ctx.dry_run) {
        if let Note::Remark(_) = note {
            errln!("note: {note}");
        }
    }
    Ok(plan)
}

struct FactsIn<'a> {
    m: &'a Manifest,
    instance: Option<&'a incus::Instance>,
    flake: &'a str,
    image: Option<&'a ImageSource>,
    incus: incus::Client,
    placement: &'a Placement,
    store: Option<Store>,
    profile_dir: std::path::PathBuf,
    profile_dir_exists: bool,
    profile: crate::containers::profile::ProfileState,
}

fn facts_of(t: FactsIn) -> Facts {
    let FactsIn {
        m,
        instance,
        flake,
        image,
        ..
    } = t;
    let managed = instance.filter(|i| instance::is_managed(i));
    // Another host's /proc is not ours: there, what inx recorded is what runs.
    let running_system = match t.store {
        Some(Store::Local) => managed.and_then(instance::running_system),
        _ => managed.and_then(instance::recorded_system),
    };
    let spec = match image {
        // Shifted: plan::up unshifts them on a server that cannot idmap mounts.
        None => instance::desired(m, flake, &t.profile_dir, true),
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
    let member = instance
        .map(|i| i.location.as_str())
        .filter(|l| !l.is_empty() && *l != "none");
    Facts {
        manifest: m,
        spec,
        profile: t.profile,
        profile_dir_exists: t.profile_dir_exists,
        profile_dir: t.profile_dir,
        instance,
        running_system,
        // Built here, whatever host it runs on: the one build is on this machine.
        built: Path::new(m.toplevel.as_str()).exists(),
        image: image.cloned(),
        incus: t.incus,
        target: t.placement.target.as_ref().map(|t| t.to_string()),
        host: crate::hosts::label(
            t.placement.remote.as_ref(),
            t.placement.target.as_ref().map(|t| t.as_str()).or(member),
        ),
        store: t.store,
    }
}

/// For containers that run from their image: their image outputs (one evaluation each, only
/// for instances still to be made), built before planning (nothing on the server changes
/// until the plan runs; a dry run builds nothing), and whether the server has them.
fn image_sources(
    ctx: &Ctx,
    manifests: &[Manifest],
    servers: &gather::Servers,
    placements: &[Placement],
    from_image: bool,
) -> Result<BTreeMap<ContainerName, ImageSource>> {
    // Every refusal before any evaluation.
    let needs: Vec<ImageNeed> = manifests
        .iter()
        .zip(placements)
        .map(|(m, p)| plan::image_need(m, p.is_local(), servers.instance(p, &m.name), from_image))
        .collect::<Result<_>>()?;
    let mut sources = BTreeMap::new();
    let mut outputs: Vec<ImageOutputs> = Vec::new();
    for (m, need) in manifests.iter().zip(needs) {
        match need {
            ImageNeed::Nothing => {}
            ImageNeed::Kept => {
                sources.insert(m.name.clone(), ImageSource::kept());
            }
            ImageNeed::Outputs => {
                let cmd = images::eval_images(&ctx.flake, &m.name, ImageKind::Container);
                let out = ctx.evaluate(&cmd)?;
                outputs.push(images::parse_eval(
                    &out.stdout,
                    &m.name,
                    ImageKind::Container,
                )?);
            }
        }
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
fn check_host(
    plan: &Plan,
    images: &BTreeMap<ContainerName, ImageSource>,
    elsewhere: &BTreeSet<&ContainerName>,
) -> Result<()> {
    let starts = plan.steps.iter().any(|s| {
        matches!(s.what, What::Create | What::Start)
            && !s
                .container
                .as_ref()
                .is_some_and(|c| images.contains_key(c) || elsewhere.contains(c))
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
