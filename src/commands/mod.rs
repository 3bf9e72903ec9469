//! One file per command. Each gathers facts (one `nix eval`, one `incus list`), asks `plan`
//! what to do, then prints the plan (`--dry-run`) or hands it to `execute`.

mod destroy;
mod diff;
mod exec;
mod generations;
pub mod image;
mod lifecycle;
mod list;
mod relocate;
mod roots;
mod run;
mod snapshots;
mod up;
mod watch;

pub use destroy::destroy;
pub use diff::diff;
pub use exec::{exec, shell};
pub use generations::{generations, rollback};
pub use lifecycle::lifecycle;
pub use list::list;
pub use relocate::relocate;
pub use roots::{gc, sync as roots_sync};
pub use run::run;
pub use snapshots::{restore, snapshot, snapshots};
pub use up::up;
pub use watch::watch as roots_watch;

use crate::cli::Global;
use crate::clients::incus::{self, Client};
use crate::containers::profile::Profiles;
use crate::error::Result;
use crate::execute::process::{Run, Runner};
use crate::execute::{self, lock};
use crate::name::{ContainerName, ProjectName};
use crate::output::{self, out};
use crate::plan::{Note, Plan, What};
use crate::roots::build_roots::{self, BuildRoots};
use std::cell::OnceCell;
use std::path::PathBuf;

pub struct Ctx {
    pub flake: String,
    pub dry_run: bool,
    pub json: bool,
    /// What runs every process (a `Recorder` in unit tests).
    pub runner: std::sync::Arc<dyn Run>,
    /// `--project`, checked; otherwise `scope` asks the client.
    project: Option<ProjectName>,
    scope: OnceCell<Scope>,
    /// Held from the first build until the command ends (see `build_roots`).
    build_roots: OnceCell<BuildRoots>,
    /// `--remote`, `--target`, `--ssh`: over every container's declared placement.
    pub placement: crate::hosts::Placement,
}

/// The Incus project a command works in and its profile directory: settled once, on first
/// use (after the command checked its input), from `--project` or the client's current project
/// (`incus project switch`), so the instances and the profiles they boot always agree.
pub struct Scope {
    pub incus: Client,
    pub profiles: Profiles,
}

impl Ctx {
    pub fn new(global: &Global, place: Option<&crate::cli::Place>) -> Result<Self> {
        let place = place.cloned().unwrap_or_default();
        Ok(Ctx {
            flake: global.flake.clone(),
            dry_run: global.dry_run,
            json: global.json,
            runner: std::sync::Arc::new(Runner {
                verbose: global.verbose,
                quiet: global.quiet,
                bars: crate::execute::progress::wanted(
                    std::io::IsTerminal::is_terminal(&std::io::stderr()),
                    global.quiet,
                    global.json,
                ),
            }),
            project: global
                .project
                .as_deref()
                .map(ProjectName::parse)
                .transpose()?,
            scope: OnceCell::new(),
            build_roots: OnceCell::new(),
            placement: crate::hosts::Placement {
                remote: place
                    .remote
                    .as_deref()
                    .map(crate::name::RemoteName::parse)
                    .transpose()?,
                target: place
                    .target
                    .as_deref()
                    .map(crate::name::HostWord::member)
                    .transpose()?,
                ssh: place
                    .ssh
                    .as_deref()
                    .map(crate::hosts::SshSettings::parse)
                    .transpose()?
                    .unwrap_or_default(),
            },
        })
    }

    pub fn scope(&self) -> Result<&Scope> {
        if let Some(scope) = self.scope.get() {
            return Ok(scope);
        }
        let project = match &self.project {
            Some(p) => p.clone(),
            None => current_project(&*self.runner)?,
        };
        let scope = Scope {
            incus: Client {
                backend: crate::clients::incus::Backend::Incus,
                project: Some(project.clone()),
                remote: None,
            },
            profiles: Profiles::new(Some(project)),
        };
        Ok(self.scope.get_or_init(|| scope))
    }

    pub fn incus(&self) -> Result<&Client> {
        Ok(&self.scope()?.incus)
    }

    /// What gathering across hosts needs of this command (see `hosts::gather`).
    pub fn gather(&self) -> Result<crate::hosts::gather::Gather<'_>> {
        Ok(crate::hosts::gather::Gather {
            runner: &*self.runner,
            incus: self.incus()?,
            flake: &self.flake,
            placement: &self.placement,
        })
    }

    pub fn profiles(&self) -> Result<&Profiles> {
        Ok(&self.scope()?.profiles)
    }

    /// Runs an evaluation of the flake; its output, or the failure explained.
    pub fn evaluate(&self, cmd: &crate::cmd::Cmd) -> Result<crate::cmd::Output> {
        crate::clients::nix::evaluated(&self.flake, cmd, self.runner.capture(cmd))
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

    /// The `--add-root` of this command's builds; plans name it, `hold_build_roots` makes it.
    pub fn build_root(&self) -> PathBuf {
        build_roots::link_for(&Profiles::builds_base())
    }

    /// Makes the build roots folder before anything is built into it (not in a dry run).
    pub fn hold_build_roots(&self) -> Result<()> {
        if self.dry_run || self.build_roots.get().is_some() {
            return Ok(());
        }
        let held = BuildRoots::hold(&Profiles::builds_base())?;
        let _ = self.build_roots.set(held);
        Ok(())
    }

    /// The host lock, for commands that change containers; a dry run changes nothing and
    /// takes none.
    pub fn lock(&self) -> Result<Option<lock::Lock>> {
        if self.dry_run {
            return Ok(None);
        }
        let lock = lock::acquire(&Profiles::lock_file())?;
        // Roots and throw-away instances that a killed inx left go with the next changing
        // command.
        build_roots::sweep(&Profiles::builds_base());
        run::sweep(self);
        Ok(Some(lock))
    }

    /// The end of every changing command: `--dry-run` prints the plan; otherwise it is
    /// carried out, and `--json` prints what was done.
    pub fn carry_out(&self, plan: &Plan) -> Result<()> {
        self.execute(plan)?;
        self.report(plan);
        Ok(())
    }

    /// Carries out a plan (not in a dry run) and prints nothing: for a command made of several
    /// plans, which `report`s them as one.
    pub fn execute(&self, plan: &Plan) -> Result<()> {
        if !self.dry_run {
            if plan.steps.iter().any(|s| s.what == What::Build) {
                self.hold_build_roots()?;
            }
            execute::execute(&*self.runner, plan)?;
        }
        Ok(())
    }

    /// What `carry_out` prints: the plan in a dry run, what was done with `--json`.
    pub fn report(&self, plan: &Plan) {
        if self.dry_run || self.json {
            self.print_plan(plan);
        }
    }

    /// A plan that must run before the rest of the command can be planned (a build whose
    /// outputs are read next): carried out by the executor, or in a dry run printed with what
    /// would come `then`, and `false` returned (the command ends there).
    pub fn build_first(&self, mut plan: Plan, then: &str) -> Result<bool> {
        if plan.steps.is_empty() {
            return Ok(true);
        }
        if self.dry_run {
            plan.notes.push(Note::Then(then.to_string()));
            self.print_plan(&plan);
            return Ok(false);
        }
        self.hold_build_roots()?;
        execute::execute(&*self.runner, &plan)?;
        Ok(true)
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

/// The client's current project. Without an `incus` there is no instance in any project, so
/// the default one is as good as any (`diff` needs only the profiles).
fn current_project(runner: &dyn Run) -> Result<ProjectName> {
    let cmd = Client::current_project();
    match runner.capture(&cmd) {
        Err(e) if e.kind == crate::error::Kind::ToolMissing => ProjectName::parse("default"),
        Err(e) => Err(e),
        Ok(out) => incus::parse_current_project(&incus::checked(&cmd, out)?),
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
