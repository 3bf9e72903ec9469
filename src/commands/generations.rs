//! `inx generations NAME` and `inx rollback NAME [--to N]`.

use super::Ctx;
use crate::containers::generations::{self, Generation};
use crate::containers::instance;
use crate::error::{Error, Result};
use crate::hosts::gather;
use crate::name::ContainerName;
use crate::output::{self, outln};
use crate::plan::unmanaged_error;

/// The JSON of `generations` (docs/json.md).
#[derive(serde::Serialize)]
struct Generations<'a> {
    name: &'a ContainerName,
    generations: &'a [Generation],
}

/// The profile's generations, which one the container boots (current), runs and booted.
pub fn generations(ctx: &Ctx, name: &str) -> Result<()> {
    let name = ContainerName::parse(name)?;
    let mut gens = read(ctx, &name, "generations")?;
    let inst = gather::here(&ctx.gather()?, &name, "generations")?;
    if let Some(inst) = inst.as_ref().filter(|i| instance::is_managed(i)) {
        generations::mark(
            &mut gens,
            instance::running_system(inst).as_ref(),
            instance::booted_system(inst).as_ref(),
        );
    }
    if ctx.json {
        output::json(&Generations {
            name: &name,
            generations: &gens,
        });
        return Ok(());
    }
    outln!(
        "{:>4}  {:<16}  {:<60}  STATE",
        "GEN",
        "CREATED (UTC)",
        "SYSTEM"
    );
    for g in &gens {
        let state: Vec<&str> = [
            (g.current, "current"),
            (g.running, "running"),
            (g.booted, "booted"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, what)| *what)
        .collect();
        outln!(
            "{:>4}  {:<16}  {:<60}  {}",
            g.number,
            generations::format_time(g.created),
            g.system.base_name(),
            state.join(",")
        );
    }
    Ok(())
}

/// Points the profile back at an earlier generation; a running container switches to it in
/// place, a stopped one boots it at its next start. The next `inx up` deploys the flake's
/// system again.
pub fn rollback(ctx: &Ctx, name: &str, to: Option<u32>) -> Result<()> {
    let name = ContainerName::parse(name)?;
    let _lock = ctx.lock()?;
    let gens = read(ctx, &name, "rollback")?;
    let inst = gather::here(&ctx.gather()?, &name, "rollback")?;
    let inst = inst
        .as_ref()
        .ok_or_else(|| crate::plan::missing_error(&name))?;
    if !instance::is_managed(inst) {
        return Err(unmanaged_error(name.as_str()));
    }
    let target = generations::choose(&gens, to, &name)?;
    let running = instance::running_system(inst);
    let plan = crate::plan::rollback(
        &name,
        &ctx.profiles()?.dir(&name),
        &target,
        gens.iter().find(|g| g.current),
        inst,
        running.as_ref(),
        ctx.incus()?,
    );
    ctx.carry_out(&plan)?;
    if ctx.dry_run {
        return Ok(());
    }
    if !plan.unchanged.is_empty() {
        ctx.runner.progress(format_args!(
            "{name}: already at generation {}",
            target.number
        ));
    } else if !inst.running() {
        ctx.runner.progress(format_args!(
            "{name}: boots generation {} at its next start",
            target.number
        ));
    }
    Ok(())
}

/// The profile's generations here; none is an error (one that says so when the flake places
/// the container on another host).
fn read(ctx: &Ctx, name: &ContainerName, command: &str) -> Result<Vec<Generation>> {
    let dir = ctx.profiles()?.dir(name);
    let gens = generations::read(&dir);
    if gens.is_empty() {
        if let Ok(located) = gather::locate(&ctx.gather()?, std::slice::from_ref(name)) {
            located[name].here_only(name, command)?;
        }
        return Err(Error::input(format!(
            "{name} has no generations (no host profile in {})",
            dir.display()
        ))
        .with_hint(format!("bring it up first: `inx up {name}`")));
    }
    Ok(gens)
}
