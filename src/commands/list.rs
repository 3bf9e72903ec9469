use super::{parse_names, Ctx};
use crate::clients::incus::Instance;
use crate::clients::{incus, nix};
use crate::containers::instance::{self, is_managed};
use crate::containers::profile::Profiles;
use crate::error::{Error, Result};
use crate::name::{ContainerName, StorePath};
use crate::output::{self, out};
use serde::Serialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Missing,
    Stopped,
    Running,
    Outdated,
    Drifted,
    /// Declared and managed, but its host profile is gone (removed by hand).
    Unprofiled,
    Orphaned,
    Conflict,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Missing => "missing",
            State::Stopped => "stopped",
            State::Running => "running",
            State::Outdated => "outdated",
            State::Drifted => "drifted",
            State::Unprofiled => "unprofiled",
            State::Orphaned => "orphaned",
            State::Conflict => "conflict",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct Row {
    pub name: String,
    pub state: State,
    pub declared: bool,
    pub managed: bool,
    /// Incus's status of the instance, when there is one.
    pub status: Option<String>,
    /// The profile generation the container boots.
    pub generation: Option<u32>,
    pub profile_system: Option<StorePath>,
    /// What the container runs now (running containers only).
    pub running_system: Option<StorePath>,
    /// The profile points at a system inx did not put there (a `nixos-rebuild` inside, or a
    /// `nix-env --set` by hand): the next `up` switches back to the flake's.
    pub drifted: bool,
}

/// The JSON of `list` and `status` (docs/json.md).
#[derive(Serialize)]
struct Listing<'a> {
    containers: &'a [Row],
}

/// `inx list` (no names) and `inx status [NAME...]`: one name-only evaluation (no system is
/// evaluated) and one listing; profiles and running systems are read from the filesystem.
pub fn list(ctx: &Ctx, names: &[String]) -> Result<()> {
    let wanted = parse_names(names)?;
    // The evaluation and the listing run at the same time: `list` then takes about as long as
    // `incus list` alone. A failed evaluation is still reported first.
    let eval = nix::eval_names(&ctx.flake);
    let listing = ctx.incus()?.list();
    let (out, listed) = ctx.runner.capture_both(&eval, &listing);
    let out = nix::evaluated(&ctx.flake, &eval, out)?;
    let declared: BTreeSet<String> = nix::parse_names(&out)?.into_iter().collect();
    let instances = incus::parse_list(&incus::checked(&listing, listed?)?)?;

    let mut all: BTreeSet<&String> = declared.iter().collect();
    all.extend(
        instances
            .values()
            .filter(|i| is_managed(i))
            .map(|i| &i.name),
    );
    let profiles = ctx.profiles()?;
    let mut rows: Vec<Row> = all
        .into_iter()
        .map(|name| row(profiles, name, declared.contains(name), instances.get(name)))
        .collect();
    if !wanted.is_empty() {
        let unknown: Vec<&ContainerName> = wanted
            .iter()
            .filter(|w| !rows.iter().any(|r| r.name == w.as_str()))
            .collect();
        if !unknown.is_empty() {
            let names: Vec<String> = unknown.iter().map(|n| n.to_string()).collect();
            return Err(Error::input(format!(
                "neither declared nor managed by inx: {}",
                names.join(", ")
            )));
        }
        rows.retain(|r| wanted.iter().any(|w| w.as_str() == r.name));
    }

    if ctx.json {
        output::json(&Listing { containers: &rows });
    } else {
        out!("{}", table(&rows));
    }
    for r in rows.iter().filter(|r| r.state == State::Unprofiled) {
        let project = match &ctx.incus()?.project {
            Some(p) if !p.is_default() => format!("--project {} ", p.as_str()),
            _ => String::new(),
        };
        eprintln!(
            "note: {0} has no host profile: nothing keeps its system from the host's garbage collection, and it cannot start again; `inx {project}up {0}` makes the profile again",
            r.name
        );
    }
    Ok(())
}

fn row(profiles: &Profiles, name: &str, declared: bool, instance: Option<&Instance>) -> Row {
    let managed = instance.is_some_and(is_managed);
    let profile = ContainerName::parse(name)
        .map(|n| profiles.read(&n))
        .unwrap_or_default();
    let running_system = instance
        .filter(|_| managed)
        .and_then(instance::running_system);
    // inx records each system it deploys (`up`, `rollback`) on the instance.
    let recorded = instance
        .filter(|_| managed)
        .and_then(|i| i.config.get(instance::KEY_SYSTEM));
    let drifted = match (&profile.system, recorded) {
        (Some(p), Some(r)) => p.as_str() != r,
        _ => false,
    };
    // A container made from its image has no host profile; any other has one from its first
    // `up` on. Without it, nothing keeps its system from the host's GC and it cannot boot.
    let unprofiled = profile.system.is_none() && !instance.is_some_and(instance::is_from_image);
    let state = match instance {
        None => State::Missing,
        Some(_) if !managed => State::Conflict,
        Some(_) if !declared => State::Orphaned,
        Some(_) if unprofiled => State::Unprofiled,
        Some(i) if i.running() => {
            if profile.system.is_some() && running_system != profile.system {
                State::Outdated
            } else if drifted {
                State::Drifted
            } else {
                State::Running
            }
        }
        Some(_) => State::Stopped,
    };
    Row {
        name: name.to_string(),
        state,
        declared,
        managed,
        status: instance.map(|i| i.status.clone()),
        generation: profile.generation,
        profile_system: profile.system,
        running_system,
        drifted,
    }
}

pub fn table(rows: &[Row]) -> String {
    let cells: Vec<[String; 4]> = rows
        .iter()
        .map(|r| {
            let system = r.running_system.as_ref().or(r.profile_system.as_ref());
            [
                r.name.clone(),
                r.state.as_str().to_string(),
                r.generation
                    .map(|g| g.to_string())
                    .unwrap_or_else(|| "-".into()),
                system
                    .map(|s| s.base_name().to_string())
                    .unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    let header = ["NAME", "STATE", "GEN", "SYSTEM"].map(String::from);
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            cells
                .iter()
                .chain([&header])
                .map(|r| r[c].len())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in [&header].into_iter().chain(&cells) {
        let line: Vec<String> = (0..4)
            .map(|c| format!("{:<w$}", r[c], w = widths[c]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
