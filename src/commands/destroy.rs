use super::{parse_names, Ctx};
use crate::error::{Error, Result};
use crate::hosts::gather;
use crate::hosts::Store;
use crate::name::ContainerName;
use crate::plan;
use crate::roots::Layout;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};

/// `inx destroy NAME...`: the instances, their host profiles and GC roots (on whichever host
/// they are), after confirmation.
pub fn destroy(ctx: &Ctx, names: &[String], force: bool, shutdown: plan::Shutdown) -> Result<()> {
    let names = parse_names(names)?;
    let _lock = ctx.lock()?;
    let located = gather::locate(&ctx.gather()?, &names)?;
    let scope = ctx.scope()?;
    let project = scope.incus.project_name();
    // Another host's folders are read over ssh first: a host that cannot be reached stops
    // the command before its instance is deleted.
    let stores: Vec<(&ContainerName, Option<&Store>)> =
        located.iter().map(|(n, l)| (n, l.store.as_ref())).collect();
    let profiles = gather::profiles(&ctx.gather()?, &scope.profiles, &stores)?;
    let here = Layout::new();
    let there = Layout::on_other_host();
    let doomed: BTreeMap<ContainerName, plan::Doomed> = located
        .iter()
        .map(|(n, l)| {
            let (profile, exists, _) = profiles[n].clone();
            let ssh = match &l.store {
                Some(Store::Ssh(dest)) => Some(dest.clone()),
                _ => None,
            };
            let roots = match ssh {
                // Its roots there go with the instance or the profile: the profile read
                // tells no more.
                Some(_) => (there.dir(&project, n), exists || l.instance.is_some()),
                None => {
                    let d = here.dir(&project, n);
                    let e = d.symlink_metadata().is_ok();
                    (d, e)
                }
            };
            let dirs = plan::HostDirs {
                profile: (profile, exists),
                roots,
                roots_lock: here.lock_file(),
                ssh,
            };
            let d = plan::Doomed {
                instance: l.instance.as_ref(),
                incus: &l.incus,
                dirs,
            };
            (n.clone(), d)
        })
        .collect();
    let plan = plan::destroy(&names, &doomed, shutdown)?;
    if !ctx.dry_run && plan.deletes_data() && !force && !confirm(&names)? {
        return Err(Error::input("nothing was destroyed"));
    }
    ctx.carry_out(&plan)
}

fn confirm(names: &[crate::name::ContainerName]) -> Result<bool> {
    let list: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    if !std::io::stdin().is_terminal() {
        return Err(Error::input(format!(
            "destroying {} deletes its root filesystem and everything in it",
            list.join(", ")
        ))
        .with_hint("pass --force to confirm"));
    }
    crate::output::err(&format!(
        "Destroy {} and delete its root filesystem? [y/N] ",
        list.join(", ")
    ));
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
