use super::Ctx;
use crate::containers::instance;
use crate::error::{Error, Result};
use crate::hosts::gather;
use crate::hosts::Store;
use crate::name::{ContainerName, HostWord};
use crate::output::errln;
use crate::plan::{self, missing_error, unmanaged_error};
use crate::roots::Layout;
use std::path::Path;

/// `inx move NAME --to MEMBER` (see `plan::relocate`).
pub fn relocate(ctx: &Ctx, name: &str, member: &str) -> Result<()> {
    let name = ContainerName::parse(name)?;
    let member = HostWord::member(member)?;
    let _lock = ctx.lock()?;
    let (mut located, addresses) =
        gather::locate_with_addresses(&ctx.gather()?, std::slice::from_ref(&name))?;
    let l = located.remove(&name).expect("located every name");
    let inst = l.instance.as_ref().ok_or_else(|| missing_error(&name))?;
    if !instance::is_managed(inst) {
        return Err(unmanaged_error(name.as_str()));
    }
    if instance::is_from_image(inst) {
        return Err(Error::input(format!(
            "{name} runs from its image, not a host's store: `incus move {} --target {member}` moves it",
            l.incus.at(&name)
        )));
    }
    let Some(Store::Ssh(from)) = &l.store else {
        return Err(Error::input(format!(
            "{name} is not on a member of an Incus cluster that inx reaches over ssh"
        ))
        .with_hint("declare incus.remote (a cluster) in mkContainer, or pass --remote"));
    };
    if inst.location == member.as_str() {
        ctx.runner
            .progress(format_args!("{name}: already on {member}"));
        return Ok(());
    }
    let at_member = crate::hosts::Placement {
        target: Some(member.clone()),
        ..l.placement.clone()
    };
    let Some(Store::Ssh(to)) = addresses.store(&at_member, None)? else {
        return Err(Error::input(format!(
            "{member} is not a member inx reaches over ssh"
        )));
    };

    // Both hosts answer before anything changes; the system comes from the old profile.
    let profiles = ctx.profiles()?;
    let old = gather::profiles(&ctx.gather()?, profiles, &[(&name, l.store.as_ref())])?;
    let (profile_dir, _, state) = old[&name].clone();
    gather::profiles(
        &ctx.gather()?,
        profiles,
        &[(&name, Some(&Store::Ssh(to.clone())))],
    )?;
    let system = state.system.ok_or_else(|| {
        Error::input(format!(
            "{name} has no host profile on {}: nothing to move it with",
            from.login()
        ))
        .with_hint(format!("`inx up {name}` makes it again"))
    })?;
    let project = ctx.incus()?.project_name();
    let plan = plan::relocate(&plan::Move {
        name: &name,
        incus: &l.incus,
        running: inst.running(),
        member: member.as_str(),
        host: crate::hosts::label(l.placement.remote.as_ref(), Some(member.as_str())),
        system: &system,
        from,
        to: &to,
        here: Path::new(system.as_str()).exists(),
        profile_dir,
        roots_dir: Layout::on_other_host().dir(&project, &name),
    });
    ctx.carry_out(&plan)?;
    if !ctx.dry_run && l.placement.target.as_ref().is_some_and(|t| *t != member) {
        errln!(
            "note: the flake declares {name} on {}: change incus.target to {member}, or the next `inx up` refuses to run it",
            l.placement.target.as_ref().map(|t| t.as_str()).unwrap_or_default()
        );
    }
    Ok(())
}
