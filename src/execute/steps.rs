//! A plan as data: typed steps, which `plan/` makes and the executor carries out, printed as a
//! script (`--dry-run`) or as JSON.

use crate::clients::incus::Client;
use crate::clients::nix;
use crate::cmd::Cmd;
use crate::name::ContainerName;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub container: Option<ContainerName>,
    /// A step for another host's store (a copy, its profiles): such steps run after the build,
    /// each host's in order, the hosts side by side, before any container's steps.
    pub host: Option<String>,
    pub what: What,
    pub description: String,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum What {
    Build,
    Profile,
    Create,
    Start,
    Stop,
    Restart,
    Switch,
    Config,
    /// The user's devices added or removed.
    Devices,
    /// inx's own devices (the shared store, the profile folder, the daemon's socket) added or
    /// removed: whether their server can shift them matters. Named `devices` in JSON, as any.
    #[serde(rename = "devices")]
    InxDevices,
    Profiles,
    Delete,
    RemoveProfile,
    RemoveRoots,
    Import,
    Alias,
    Public,
    /// Another host held for the length of its steps: its inx lock taken and the systems
    /// about to be copied there rooted, by one ssh session (see `SshDest::hold`).
    Hold,
    /// Closures copied to another host's store.
    Copy,
    /// A cluster member the instance is moved to.
    Move,
    /// A container's GC roots written (`roots sync`, `gc`, `roots watch`).
    Roots,
    /// A snapshot taken or restored.
    Snapshot,
    /// The host's garbage collection (`gc`).
    Collect,
    /// A link that keeps a build from the GC for the user (`image build --out-link`).
    Link,
    /// Image files written to a folder (`image export`, `image simplestreams`).
    Write,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Run(Cmd),
    /// A container's start, as data: the executor joins the starts of several containers on
    /// one server into one call. Printed (and in JSON) as the `run` of its own command.
    #[serde(rename = "run", serialize_with = "Start::as_run")]
    Start(Start),
    CreateDir(PathBuf),
    RemoveDir(PathBuf),
    /// A container's GC roots directory: inx's links and index in it, then the directory if
    /// that left it empty. Printed (and in JSON) as the directory.
    #[serde(serialize_with = "RootsDir::as_dir")]
    RemoveRoots(RootsDir),
    /// A container's GC roots directory made to hold exactly these roots (see `roots::write`).
    WriteRoots {
        dir: PathBuf,
        index: super::roots::Index,
    },
    /// Image files written into a folder, nothing half-written (see `folder::write`).
    WriteFolder(super::folder::Folder),
    /// A container's snapshot roots made to be exactly these (see `roots::write_links`).
    WriteSnapshotRoots {
        dir: PathBuf,
        links: std::collections::BTreeMap<String, crate::name::StorePath>,
    },
    /// A stop or restart that never hangs (see `Halt`).
    Halt(Halt),
}

/// A container's GC roots directory, and the roots lock to hold while it is changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootsDir {
    pub dir: PathBuf,
    pub lock: PathBuf,
}

impl RootsDir {
    fn as_dir<S: serde::Serializer>(&self, to: S) -> std::result::Result<S::Ok, S::Error> {
        self.dir.serialize(to)
    }
}

/// The start of `name` through `on`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Start {
    pub on: Client,
    pub name: ContainerName,
}

impl Start {
    pub fn cmd(&self) -> Cmd {
        self.on.start(&self.name)
    }

    fn as_run<S: serde::Serializer>(&self, to: S) -> std::result::Result<S::Ok, S::Error> {
        self.cmd().serialize(to)
    }
}

/// A stop or restart of a running container: `clean`, a shutdown Incus gives `timeout`
/// seconds, then `kill` if that failed (a container that ignores the shutdown signal, a hung
/// service); `kill` alone with --force. systemd, and so nixos-container, do the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Halt {
    pub clean: Option<Cmd>,
    pub kill: Cmd,
    pub timeout: u32,
}

#[derive(Debug, Default, Serialize)]
pub struct Plan {
    pub steps: Vec<Step>,
    /// Containers that need nothing.
    pub unchanged: Vec<ContainerName>,
    /// What the user should know that no step does, and what comes after the plan.
    pub notes: Vec<Note>,
    /// What the user is warned of as the plan is made (on stderr; no part of the plan's
    /// text or JSON).
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// A line under a plan. Printed (and in JSON) as text; `then:` lines say what comes after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A remark.
    Remark(String),
    /// What a dry run stopped before: the rest of the command needs this plan carried out.
    Then(String),
    /// A container created where a cluster places it: once it is there, `up` gathers where
    /// and plans it again (its store, profile, device, start).
    Placed(ContainerName),
}

impl std::fmt::Display for Note {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Note::Remark(text) => f.write_str(text),
            Note::Then(text) => write!(f, "then: {text}"),
            Note::Placed(name) => write!(
                f,
                "then: {name}: copy its system to the member it is on, point its profile there, bind it and start"
            ),
        }
    }
}

impl Serialize for Note {
    fn serialize<S: serde::Serializer>(&self, to: S) -> std::result::Result<S::Ok, S::Error> {
        to.collect_str(self)
    }
}

impl Plan {
    /// The plan as a shell script a user could read or run.
    pub fn to_shell(&self) -> String {
        let mut out = String::new();
        for step in &self.steps {
            let who = match (&step.container, &step.host) {
                (Some(c), _) => format!("{c}: "),
                (None, Some(h)) => format!("host {h}: "),
                (None, None) => String::new(),
            };
            out.push_str(&format!("# {who}{}\n", step.description));
            let line = match &step.action {
                Action::Run(cmd) => cmd.to_shell(),
                Action::Start(start) => start.cmd().to_shell(),
                Action::CreateDir(p) => {
                    format!("mkdir -p {}", crate::cmd::quote(&p.display().to_string()))
                }
                Action::RemoveDir(p) => {
                    format!("rm -rf {}", crate::cmd::quote(&p.display().to_string()))
                }
                Action::RemoveRoots(RootsDir { dir, .. }) => {
                    let d = crate::cmd::quote(&dir.display().to_string());
                    format!("rm -rf {d}/snapshots && rm -f {d}/r-* {d}/roots.json && rmdir {d}")
                }
                Action::WriteSnapshotRoots { dir, links } => {
                    super::roots::links_to_shell(dir, links)
                }
                Action::WriteRoots { dir, index } => super::roots::to_shell(dir, index),
                Action::WriteFolder(folder) => super::folder::to_shell(folder),
                Action::Halt(Halt { clean, kill, .. }) => match clean {
                    Some(clean) => format!("{} || {}", clean.to_shell(), kill.to_shell()),
                    None => kill.to_shell(),
                },
            };
            out.push_str(&line);
            out.push('\n');
        }
        for name in &self.unchanged {
            out.push_str(&format!("# {name}: up to date\n"));
        }
        for note in &self.notes {
            match note {
                Note::Remark(_) => out.push_str(&format!("# note: {note}\n")),
                Note::Then(_) | Note::Placed(_) => out.push_str(&format!("# {note}\n")),
            }
        }
        out
    }

    /// A plan of one build (none when there is nothing to realise): the outputs rooted at
    /// `root` (see `build_roots`), the log shown.
    pub fn building(
        to_realise: &[String],
        root: &std::path::Path,
        container: Option<&ContainerName>,
        description: impl FnOnce(usize) -> String,
    ) -> Plan {
        let mut plan = Plan::default();
        if !to_realise.is_empty() {
            plan.steps.push(Step {
                container: container.cloned(),
                host: None,
                what: What::Build,
                description: description(to_realise.len()),
                action: Action::Run(nix::realise(to_realise, root)),
            });
        }
        plan
    }

    /// The containers to gather and plan again once Incus has placed them (see `Note::Placed`).
    pub fn placed_later(&self) -> impl Iterator<Item = &ContainerName> {
        self.notes.iter().filter_map(|n| match n {
            Note::Placed(name) => Some(name),
            _ => None,
        })
    }

    /// Whether the plan deletes a root filesystem (then `destroy` wants confirmation).
    pub fn deletes_data(&self) -> bool {
        self.steps.iter().any(|s| s.what == What::Delete)
    }

    /// Whether carrying out the plan writes any of inx's own devices on the containers `on`
    /// picks (those of one server): then it matters whether that server can shift them.
    pub fn writes_inx_devices_on(&self, on: impl Fn(&ContainerName) -> bool) -> bool {
        self.steps
            .iter()
            .filter(|s| s.container.as_ref().is_some_and(&on))
            .any(|s| matches!(s.what, What::Create | What::InxDevices))
    }
}
