use super::{parse_names, Ctx};
use crate::error::{Error, Kind, Result};
use crate::instance::{self, DAEMON_SOCKET_DIR};
use crate::manifest::{self, Manifest};
use crate::plan::{self, Plan, Target, What};
use crate::{incus, nix};
use std::collections::BTreeMap;
use std::path::Path;

pub fn up(ctx: &Ctx, names: &[String]) -> Result<()> {
    let names = parse_names(names)?;
    let _lock = ctx.lock()?;

    // Gather: one evaluation, one listing.
    let eval = nix::eval_manifests(&ctx.flake, (!names.is_empty()).then_some(&names[..]));
    let out = ctx.runner.capture(&eval)?;
    if !out.success() {
        // stdout may hold half-written JSON when evaluation fails: never read it.
        return Err(nix::eval_failure(&ctx.flake, &eval, &out));
    }
    let manifests = manifest::parse_eval_output(&out.stdout)?;
    if manifests.is_empty() {
        eprintln!(
            "the flake {} declares no containers in inxContainers",
            ctx.flake
        );
        return Ok(());
    }
    let instances = ctx.instances()?;

    // Plan, assuming the server can shift the shared mounts; ask it only when inx's devices
    // are about to be written, so an unchanged `up` makes no extra call.
    let flake = ctx.flake_record();
    let targets = |shift: bool| -> Vec<Target> {
        manifests
            .iter()
            .map(|m| target(ctx, m, &instances, &flake, shift))
            .collect()
    };
    let mut plan = plan::up(&targets(true), &ctx.incus)?;
    if plan.writes_inx_devices() && !idmapped_mounts(ctx)? {
        eprintln!(
            "warning: this Incus server cannot idmap mounts, so /nix/store shows up owned by nobody inside unprivileged containers (it still works read-only)"
        );
        plan = plan::up(&targets(false), &ctx.incus)?;
    }
    if !ctx.dry_run {
        check_host(&plan)?;
    }
    ctx.carry_out(&plan)?;
    for name in plan.unchanged.iter().filter(|_| !ctx.dry_run) {
        eprintln!("{name}: up to date");
    }
    Ok(())
}

fn target<'a>(
    ctx: &Ctx,
    m: &'a Manifest,
    instances: &'a BTreeMap<String, incus::Instance>,
    flake: &str,
    shift: bool,
) -> Target<'a> {
    let profile_dir = ctx.profiles.dir(&m.name);
    let instance = instances.get(m.name.as_str());
    let running_system = instance
        .filter(|i| instance::is_managed(i))
        .and_then(instance::running_system);
    Target {
        manifest: m,
        spec: instance::desired(m, flake, &profile_dir, shift),
        profile: ctx.profiles.read(&m.name),
        profile_dir,
        instance,
        running_system,
        built: Path::new(m.toplevel.as_str()).exists(),
    }
}

fn idmapped_mounts(ctx: &Ctx) -> Result<bool> {
    let cmd = ctx.incus.server_info();
    let out = incus::checked(&cmd, ctx.runner.capture(&cmd)?)?;
    Ok(incus::parse_idmapped_mounts(&out))
}

/// A container cannot start without the host daemon's socket directory bound in.
fn check_host(plan: &Plan) -> Result<()> {
    let starts = plan
        .steps
        .iter()
        .any(|s| matches!(s.what, What::Create | What::Start));
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
