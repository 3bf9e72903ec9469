//! `inx snapshot`, `inx snapshots` and `inx restore`: Incus snapshots whose systems inx keeps
//! from the GC (see `plan::snapshot` and `roots`), so that a restore brings back the root
//! filesystem and the system it ran.

use super::Ctx;
use crate::clients::incus::Instance;
use crate::containers::instance::{self, KEY_SYSTEM};
use crate::error::{Error, Result};
use crate::execute::lock;
use crate::hosts::gather;
use crate::name::{ContainerName, SnapshotName, StorePath};
use crate::output::{self, outln};
use crate::plan::unmanaged_error;
use crate::roots::{self, Layout};
use std::path::Path;

/// One row of `inx snapshots` (docs/json.md).
#[derive(serde::Serialize)]
struct Row {
    name: String,
    created_at: String,
    /// The system inx had deployed when it was taken, if any.
    system: Option<StorePath>,
    /// Whether a GC root keeps that system now (so a restore can bring it back).
    kept: bool,
}

#[derive(serde::Serialize)]
struct Listing<'a> {
    name: &'a ContainerName,
    snapshots: &'a [Row],
}

/// The managed instance `name`, or why there is none.
fn managed(ctx: &Ctx, name: &ContainerName) -> Result<Instance> {
    let inst = gather::here(&ctx.gather()?, name, "snapshot")?
        .ok_or_else(|| crate::plan::missing_error(name))?;
    if !instance::is_managed(&inst) {
        return Err(unmanaged_error(name.as_str()));
    }
    Ok(inst)
}

fn exists(path: &StorePath) -> bool {
    Path::new(path.as_str()).symlink_metadata().is_ok()
}

/// A name for a snapshot taken now: `snap-YYYYMMDD-HHMMSS` (UTC), which sorts by time.
fn default_name() -> SnapshotName {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, mo, d, h, mi, s) = crate::utc::civil(secs);
    SnapshotName::parse(&format!("snap-{y:04}{mo:02}{d:02}-{h:02}{mi:02}{s:02}"))
        .expect("a timestamp is a valid snapshot name")
}

pub fn snapshot(ctx: &Ctx, name: &str, snapshot: Option<&str>) -> Result<()> {
    let name = ContainerName::parse(name)?;
    let snapshot = match snapshot {
        Some(s) => SnapshotName::parse(s)?,
        None => default_name(),
    };
    let _lock = ctx.lock()?;
    let inst = managed(ctx, &name)?;
    if inst.snapshots.iter().any(|s| s.name == snapshot.as_str()) {
        return Err(
            Error::input(format!("{name} has a snapshot named {snapshot} already"))
                .with_hint("give another name, or delete that one with `incus snapshot delete`"),
        );
    }
    let system = inst
        .config
        .get(KEY_SYSTEM)
        .and_then(|s| StorePath::parse(s).ok())
        .filter(exists)
        .ok_or_else(|| {
            Error::input(format!(
                "{name} runs no system that inx deployed, so a snapshot could not bring one back"
            ))
            .with_hint(format!("bring it up first: `inx up {name}`"))
        })?;
    let project = ctx.scope()?.incus.project_name();
    let layout = Layout::new();
    // The roots lock, as every writer of gcroots/inx holds it (the watcher too).
    let _roots = if ctx.dry_run {
        None
    } else {
        Some(lock::wait(&layout.lock_file())?)
    };
    let dir = layout.snapshots_dir(&project, &name);
    let now = roots::read_links(&dir)
        .into_iter()
        .filter_map(|(s, p)| Some((s, StorePath::parse(&p).ok()?)))
        .collect();
    let plan = crate::plan::take_snapshot(&name, &snapshot, &system, dir, &now, ctx.incus()?);
    ctx.carry_out(&plan)?;
    if !ctx.dry_run {
        ctx.runner.progress(format_args!(
            "{name}: snapshot {snapshot} keeps {}",
            system.base_name()
        ));
    }
    Ok(())
}

pub fn snapshots(ctx: &Ctx, name: &str) -> Result<()> {
    let name = ContainerName::parse(name)?;
    let inst = managed(ctx, &name)?;
    let project = ctx.scope()?.incus.project_name();
    let kept = roots::read_links(&Layout::new().snapshots_dir(&project, &name));
    let systems = instance::snapshot_systems(&inst);
    let rows: Vec<Row> = inst
        .snapshots
        .iter()
        .map(|s| {
            let system = systems.get(&s.name).cloned();
            let kept = system.as_ref().is_some_and(|sys| {
                kept.get(&s.name).map(String::as_str) == Some(sys.as_str()) && exists(sys)
            });
            Row {
                name: s.name.clone(),
                created_at: s.created_at.clone(),
                system,
                kept,
            }
        })
        .collect();
    if ctx.json {
        output::json(&Listing {
            name: &name,
            snapshots: &rows,
        });
        return Ok(());
    }
    outln!(
        "{:<24}  {:<20}  {:<60}  KEPT",
        "SNAPSHOT",
        "CREATED (UTC)",
        "SYSTEM"
    );
    for r in &rows {
        // Incus's RFC 3339 time, to the second.
        let created = r
            .created_at
            .get(..19)
            .unwrap_or(&r.created_at)
            .replace('T', " ");
        outln!(
            "{:<24}  {:<20}  {:<60}  {}",
            r.name,
            created,
            r.system.as_ref().map(|s| s.base_name()).unwrap_or("-"),
            if r.kept { "yes" } else { "no" }
        );
    }
    Ok(())
}

pub fn restore(ctx: &Ctx, name: &str, snapshot: &str) -> Result<()> {
    let name = ContainerName::parse(name)?;
    let snapshot = SnapshotName::parse(snapshot)?;
    let _lock = ctx.lock()?;
    let inst = managed(ctx, &name)?;
    if !inst.snapshots.iter().any(|s| s.name == snapshot.as_str()) {
        return Err(
            Error::input(format!("{name} has no snapshot named {snapshot}"))
                .with_hint(format!("see `inx snapshots {name}`")),
        );
    }
    let system = instance::snapshot_systems(&inst)
        .remove(snapshot.as_str())
        .ok_or_else(|| {
            Error::input(format!(
                "snapshot {snapshot} of {name} records no system inx deployed (it was taken before the first `inx up`)"
            ))
            .with_hint("restore it with `incus snapshot restore` and run `inx up` after")
        })?;
    if !exists(&system) {
        return Err(Error::input(format!(
            "the system of snapshot {snapshot} ({}) is gone from the store: restoring it would boot another system on its files",
            system.base_name()
        ))
        .with_hint("build that system again, or restore with `incus snapshot restore` and run `inx up` after"));
    }
    let profiles = ctx.profiles()?;
    let profile_now = profiles.read(&name).system;
    let plan = crate::plan::restore_snapshot(
        &name,
        &snapshot,
        &system,
        &profiles.dir(&name),
        profile_now.as_ref(),
        &inst,
        ctx.incus()?,
    );
    ctx.carry_out(&plan)?;
    if !ctx.dry_run {
        ctx.runner.progress(format_args!(
            "{name}: restored {snapshot}: its files and {}",
            system.base_name()
        ));
    }
    Ok(())
}
