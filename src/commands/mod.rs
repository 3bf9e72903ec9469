//! One file per command. Each gathers facts (one `nix eval`, one `incus list`), asks `plan`
//! what to do, then prints the plan (`--dry-run`) or hands it to `execute`.

mod destroy;
mod diff;
mod exec;
mod generations;
pub mod image;
mod lifecycle;
mod list;
mod roots;
mod up;
mod watch;

pub use destroy::destroy;
pub use diff::diff;
pub use exec::{exec, shell};
pub use generations::{generations, rollback};
pub use lifecycle::lifecycle;
pub use list::list;
pub use roots::{gc, sync as roots_sync};
pub use up::up;
pub use watch::watch as roots_watch;

use crate::cli::Global;
use crate::error::Result;
use crate::incus::{self, Incus, Instance};
use crate::name::{ContainerName, ProjectName};
use crate::output::{self, out};
use crate::plan::Plan;
use crate::process::Runner;
use crate::profile::Profiles;
use crate::{execute, lock};
use std::collections::BTreeMap;

pub struct Ctx {
    pub flake: String,
    pub dry_run: bool,
    pub json: bool,
    pub runner: Runner,
    pub incus: Incus,
    pub profiles: Profiles,
}

impl Ctx {
    pub fn new(global: &Global) -> Result<Self> {
        let project = global
            .project
            .as_deref()
            .map(ProjectName::parse)
            .transpose()?;
        Ok(Ctx {
            flake: global.flake.clone(),
            dry_run: global.dry_run,
            json: global.json,
            runner: Runner {
                verbose: global.verbose,
            },
            incus: Incus {
                project: project.clone(),
            },
            profiles: Profiles::new(project),
        })
    }

    /// The one listing of what Incus has.
    pub fn instances(&self) -> Result<BTreeMap<String, Instance>> {
        let cmd = self.incus.list();
        let out = incus::checked(&cmd, self.runner.capture(&cmd)?)?;
        incus::parse_list(&out)
    }

    /// The flake as recorded on instances: a local path made absolute, so `.` means
    /// something when read later.
    pub fn flake_record(&self) -> String {
        if self.flake.contains(':') {
            return self.flake.clone();
        }
        std::fs::canonicalize(&self.flake)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| self.flake.clone())
    }

    /// The host lock, for commands that change containers; a dry run changes nothing and
    /// takes none.
    pub fn lock(&self) -> Result<Option<lock::Lock>> {
        if self.dry_run {
            return Ok(None);
        }
        lock::acquire(&self.profiles.lock_file()).map(Some)
    }

    /// The end of every changing command: `--dry-run` prints the plan; otherwise it is
    /// carried out, and `--json` prints what was done.
    pub fn carry_out(&self, plan: &Plan) -> Result<()> {
        if !self.dry_run {
            execute::execute(&self.runner, plan)?;
            if !self.json {
                return Ok(());
            }
        }
        self.print_plan(plan);
        Ok(())
    }

    /// The plan as a script, or as JSON.
    pub fn print_plan(&self, plan: &Plan) {
        if self.json {
            output::json(plan);
        } else {
            out!("{}", plan.to_shell());
        }
    }
}

/// Validated names in the order given, each once.
pub fn parse_names(names: &[String]) -> Result<Vec<ContainerName>> {
    let mut parsed: Vec<ContainerName> = Vec::new();
    for name in names {
        let name = ContainerName::parse(name)?;
        if !parsed.contains(&name) {
            parsed.push(name);
        }
    }
    Ok(parsed)
}
