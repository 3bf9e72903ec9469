//! `inx diff [NAME...]`: what `inx up` would change in each container's closure, in Nix's own
//! words (`nix store diff-closures`), from the system its profile holds to the flake's.

use super::{parse_names, Ctx};
use crate::error::{Kind, Result};
use crate::manifest;
use crate::nix;
use crate::output::outln;
use crate::process::failure;
use std::path::Path;

pub fn diff(ctx: &Ctx, names: &[String]) -> Result<()> {
    let names = parse_names(names)?;
    let eval = nix::eval_manifests(&ctx.flake, (!names.is_empty()).then_some(&names[..]));
    let out = ctx.runner.capture(&eval)?;
    if !out.success() {
        return Err(nix::eval_failure(&ctx.flake, &eval, &out));
    }
    let manifests = manifest::parse_eval_output(&out.stdout)?;

    // A closure can only be compared once it exists: one build for all, as `up` does it.
    let to_build: Vec<String> = manifests
        .iter()
        .filter(|m| !Path::new(m.toplevel.as_str()).exists())
        .map(|m| m.drv_path.clone().unwrap_or_else(|| m.toplevel.to_string()))
        .collect();
    if !to_build.is_empty() {
        let build = nix::realise(&to_build);
        let out = ctx.runner.show_stderr(&build)?;
        if !out.success() {
            return Err(failure(Kind::Build, &build, &out)
                .with_hint("the build log is above; nothing was changed"));
        }
    }

    for m in &manifests {
        let name = &m.name;
        let new = &m.toplevel;
        match ctx.profiles.read(name).system {
            None => outln!("{name}: new; `inx up` would deploy {new}"),
            Some(old) if &old == new => outln!("{name}: no change"),
            Some(old) => {
                outln!("{name}: {} -> {}", old.base_name(), new.base_name());
                let cmd = nix::diff_closures(&old, new);
                let out = ctx.runner.capture(&cmd)?;
                if !out.success() {
                    return Err(failure(Kind::Failed, &cmd, &out));
                }
                if out.stdout.trim().is_empty() {
                    outln!("  (no package changed version or size)");
                }
                for line in out.stdout.lines() {
                    outln!("  {line}");
                }
            }
        }
    }
    Ok(())
}
