//! `inx diff [NAME...]`: what `inx up` would change in each container's closure, in Nix's own
//! words (`nix store diff-closures`), from the system its profile holds to the flake's.
//! With `--json`, one document with every container (docs/json.md).

use super::{parse_names, Ctx};
use crate::clients::nix;
use crate::cmd::failure;
use crate::containers::manifest;
use crate::error::{Kind, Result};
use crate::name::{ContainerName, StorePath};
use crate::output::{self, outln};
use crate::plan::Plan;
use serde::Serialize;
use std::path::Path;

pub fn diff(ctx: &Ctx, names: &[String]) -> Result<()> {
    let names = parse_names(names)?;
    let eval = nix::eval_manifests(&ctx.flake, (!names.is_empty()).then_some(&names[..]));
    let out = ctx.evaluate(&eval)?;
    let manifests = manifest::parse_eval_output(&out.stdout)?;

    // A closure can only be compared once it exists: one build for all, as `up` does it.
    let to_build: Vec<String> = manifests
        .iter()
        .filter(|m| !Path::new(m.toplevel.as_str()).exists())
        .map(|m| m.drv_path.clone().unwrap_or_else(|| m.toplevel.to_string()))
        .collect();
    let plan = Plan::building(&to_build, &ctx.build_root(), None, |n| match n {
        1 => "build 1 system".to_string(),
        n => format!("build {n} systems"),
    });
    if !ctx.build_first(
        plan,
        "compare each closure with the profile's (nix store diff-closures)",
    )? {
        return Ok(());
    }

    let text = !ctx.json;
    let mut containers = Vec::new();
    for m in &manifests {
        let name = &m.name;
        let new = &m.toplevel;
        let from = ctx.profiles()?.read(name).system;
        let (status, changes) = match &from {
            None => {
                if text {
                    outln!("{name}: new; `inx up` would deploy {new}");
                }
                (Status::New, Vec::new())
            }
            Some(old) if old == new => {
                if text {
                    outln!("{name}: no change");
                }
                (Status::Unchanged, Vec::new())
            }
            Some(old) => {
                if text {
                    outln!("{name}: {} -> {}", old.base_name(), new.base_name());
                }
                let cmd = nix::diff_closures(old, new);
                let out = ctx.runner.capture(&cmd)?;
                if !out.success() {
                    return Err(failure(Kind::Failed, &cmd, &out));
                }
                if text && out.stdout.trim().is_empty() {
                    outln!("  (no package changed version or size)");
                }
                for line in out.stdout.lines().filter(|_| text) {
                    outln!("  {line}");
                }
                (Status::Changed, nix::parse_diff_closures(&out.stdout))
            }
        };
        containers.push(ContainerDiff {
            name,
            status,
            from_system: from,
            to_system: new,
            changes,
        });
    }
    if ctx.json {
        output::json(&Report { containers });
    }
    Ok(())
}

/// The JSON of `diff` (docs/json.md).
#[derive(Serialize)]
struct Report<'a> {
    containers: Vec<ContainerDiff<'a>>,
}

#[derive(Serialize)]
struct ContainerDiff<'a> {
    name: &'a ContainerName,
    status: Status,
    /// The system its host profile holds (none before the first `up`).
    from_system: Option<StorePath>,
    /// The flake's system.
    to_system: &'a StorePath,
    changes: Vec<nix::ClosureChange>,
}

#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum Status {
    /// No host profile yet: `up` would deploy it for the first time.
    New,
    Unchanged,
    Changed,
}
