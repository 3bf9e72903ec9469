//! Carries out a plan, step by step. A failed step stops that container's remaining steps;
//! the other containers go on, and the command fails at the end. A failed build stops all.

use crate::error::{Error, Kind, Result};
use crate::incus::incus_failure;
use crate::name::ContainerName;
use crate::plan::{Action, Plan, Step, What};
use crate::process::{failure, Runner};
use std::collections::BTreeMap;

pub fn execute(runner: &Runner, plan: &Plan) -> Result<()> {
    let mut failed: BTreeMap<&ContainerName, Error> = BTreeMap::new();
    for step in &plan.steps {
        if step
            .container
            .as_ref()
            .is_some_and(|c| failed.contains_key(c))
        {
            continue;
        }
        let who = step
            .container
            .as_ref()
            .map(|c| format!("{c}: "))
            .unwrap_or_default();
        eprintln!("{who}{}", step.description);
        if let Err(e) = run_step(runner, step) {
            let Some(container) = &step.container else {
                return Err(e);
            };
            eprintln!("{container}: {e}");
            failed.insert(container, e);
        }
    }
    if failed.is_empty() {
        return Ok(());
    }
    // Each failure was printed as it happened; the error that ends the command only sums up,
    // keeping the failures' kind (and so the exit code) when they agree.
    let kinds: Vec<Kind> = failed.values().map(|e| e.kind).collect();
    let kind = if kinds.iter().all(|k| *k == kinds[0]) {
        kinds[0]
    } else {
        Kind::Failed
    };
    let names: Vec<String> = failed.keys().map(|c| c.to_string()).collect();
    let what = match names.len() {
        1 => format!("{} failed (see above)", names[0]),
        n => format!("{n} containers failed: {} (see above)", names.join(", ")),
    };
    Err(Error::new(kind, what))
}

fn run_step(runner: &Runner, step: &Step) -> Result<()> {
    match &step.action {
        Action::CreateDir(path) => std::fs::create_dir_all(path).map_err(|e| {
            Error::new(
                Kind::Failed,
                format!("cannot create {}: {e}", path.display()),
            )
            .with_hint("inx keeps host profiles under /nix/var/nix/profiles/inx: run it as root")
        }),
        Action::RemoveDir(path) => match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::new(
                Kind::Failed,
                format!("cannot remove {}: {e}", path.display()),
            )),
            _ => Ok(()),
        },
        Action::RemoveRoots(dir) => crate::roots::write(dir, &Default::default()).map_err(|e| {
            Error::new(
                Kind::Failed,
                format!("cannot remove the GC roots in {}: {e}", dir.display()),
            )
        }),
        Action::Run(cmd) => {
            // Build logs are long and the user wants to watch them; everything else is
            // captured and shown only when it fails.
            let out = if step.what == What::Build {
                runner.show_stderr(cmd)?
            } else {
                runner.capture(cmd)?
            };
            if out.success() {
                return Ok(());
            }
            Err(match (cmd.program.as_str(), step.what) {
                ("incus", _) => incus_failure(cmd, &out),
                (_, What::Build) => failure(Kind::Build, cmd, &out)
                    .with_hint("the build log is above; nothing was changed"),
                _ => failure(Kind::Failed, cmd, &out),
            })
        }
    }
}
