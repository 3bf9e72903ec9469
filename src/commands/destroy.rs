use super::{parse_names, Ctx};
use crate::error::{Error, Result};
use crate::plan;
use crate::roots::Layout;
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

/// `inx destroy NAME...`: the instances and their host profiles, after confirmation.
pub fn destroy(ctx: &Ctx, names: &[String], force: bool) -> Result<()> {
    let names = parse_names(names)?;
    let _lock = ctx.lock()?;
    let instances = ctx.instances()?;
    let roots = Layout::new();
    let scope = ctx.scope()?;
    let project = scope
        .incus
        .project
        .as_ref()
        .map_or("default", |p| p.as_str());
    let exists = |d: PathBuf| {
        let e = d.symlink_metadata().is_ok();
        (d, e)
    };
    let dirs: BTreeMap<_, _> = names
        .iter()
        .map(|n| {
            let dirs = plan::HostDirs {
                profile: exists(scope.profiles.dir(n)),
                roots: exists(roots.dir(project, n)),
            };
            (n.clone(), dirs)
        })
        .collect();
    let plan = plan::destroy(&names, &instances, &dirs, ctx.incus()?)?;
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
    eprint!(
        "Destroy {} and delete its root filesystem? [y/N] ",
        list.join(", ")
    );
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).ok();
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
