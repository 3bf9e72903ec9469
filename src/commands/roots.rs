//! `inx roots sync` and `inx gc`: keep what containers build alive across the host's garbage
//! collection (see `roots` for how; `watch` is the long-running form).

use super::Ctx;
use crate::clients::incus::{self, Client, Instance};
use crate::cmd::Cmd;
use crate::containers::instance;
use crate::error::{Error, Kind, Result};
use crate::execute;
use crate::execute::lock;
use crate::execute::process::Run;
use crate::name::{ContainerName, StorePath};
use crate::output::{self, errln, out, outln};
use crate::plan::{Action, Plan, Step, What};
use crate::roots::{self, Change, Container, Depth, Layout};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// What one sync did to one container's roots.
#[derive(Debug, serde::Serialize)]
pub struct Synced {
    pub project: String,
    pub name: ContainerName,
    #[serde(flatten)]
    pub change: Change,
    /// The paths inside the container that its roots come from, after the sync.
    #[serde(skip)]
    pub origins: BTreeSet<String>,
}

/// The JSON of `roots sync`, and of each sync of `roots watch` (docs/json.md).
#[derive(serde::Serialize)]
pub(super) struct SyncReport<'a> {
    pub containers: &'a [Synced],
}

/// The JSON of `gc`: the sync, and the collection that followed it.
#[derive(serde::Serialize)]
struct GcReport<'a> {
    containers: &'a [Synced],
    collect: &'a Cmd,
}

pub fn sync(ctx: &Ctx, cap: usize) -> Result<()> {
    let done = sync_all(ctx, cap)?;
    if ctx.json {
        output::json(&SyncReport { containers: &done });
    }
    Ok(())
}

/// One full sync of every container, reported on stderr.
fn sync_all(ctx: &Ctx, cap: usize) -> Result<Vec<Synced>> {
    let layout = Layout::new();
    let containers = gather(&*ctx.runner, &crate::clients::incus::Client::default())?;
    let (done, plan) = sync_planned(
        ctx,
        &layout,
        &containers,
        &BTreeSet::new(),
        Depth::Full,
        cap,
    )?;
    report(ctx, &done, true);
    if ctx.dry_run && !ctx.json {
        outln!("{}", plan.to_shell().trim_end());
    }
    Ok(done)
}

/// Every root of every container checked again, with every link in gcroots/auto.
pub(super) fn full_sync(
    ctx: &Ctx,
    layout: &Layout,
    containers: &[Container],
    cap: usize,
) -> Result<Vec<Synced>> {
    sync_with(ctx, layout, containers, &BTreeSet::new(), Depth::Full, cap)
}

/// `inx gc ARGS`: roots first, then the host's collection. A sync that fails stops it, since
/// collecting without the roots is what loses builds.
pub fn gc(ctx: &Ctx, cap: usize, args: &[String]) -> Result<i32> {
    let done = sync_all(ctx, cap)?;
    let cmd = Cmd::new("nix-collect-garbage").args(args.iter().cloned());
    // Its own plan, run once the sync's is done and the roots lock is free again: a watcher
    // must be able to root new builds while the collection runs.
    let collect = Plan {
        steps: vec![Step {
            container: None,
            host: None,
            what: What::Collect,
            description: "collect garbage".to_string(),
            action: Action::Run(cmd.clone()),
        }],
        ..Plan::default()
    };
    if ctx.dry_run {
        if !ctx.json {
            out!("{}", collect.to_shell());
        }
    } else {
        execute::execute(&*ctx.runner, &collect)?;
    }
    if ctx.json {
        output::json(&GcReport {
            containers: &done,
            collect: &cmd,
        });
    }
    Ok(0)
}

/// The inx containers of every project, and where each one's filesystem can be read.
pub(super) fn gather(runner: &dyn Run, incus: &Client) -> Result<Vec<Container>> {
    let cmd = incus.list_all_projects();
    let query = incus.server_info();
    let (out, about) = runner.capture_both(&cmd, &query);
    let out = incus::checked(&cmd, out?)?;
    // A cluster lists every member's instances; only this member's are here (their PIDs and
    // volumes are this host's). Another member's are as good as gone: their roots here go.
    // A server that does not say it is a member is alone.
    let member = about.ok().and_then(|a| incus::parse_member_name(&a));
    let list: Vec<Instance> = serde_json::from_str(&out.stdout).map_err(|e| {
        Error::new(
            Kind::Incus,
            format!("cannot read the output of incus list: {e}"),
        )
    })?;
    // Every instance is listed, managed or not: while Incus changes an instance (a restart),
    // it can list it without its config, so without inx's marker. Roots are made only for
    // managed containers, but only an instance that is gone makes its roots go.
    Ok(list
        .iter()
        .filter(|i| member.as_ref().is_none_or(|m| *m == i.location))
        .filter_map(|i| {
            let volume = volume(i);
            let managed = instance::is_managed(i) && i.kind == "container";
            Some(Container {
                project: i.project.clone(),
                name: ContainerName::parse(&i.name).ok()?,
                root: if managed {
                    readable_root(i, &volume)
                } else {
                    None
                },
                volume,
                managed,
                snapshots: instance::snapshot_systems(i),
            })
        })
        .collect())
}

/// Where Incus keeps the container's root filesystem on the host.
fn volume(i: &Instance) -> PathBuf {
    let incus_dir = std::env::var_os("INCUS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/incus"));
    let volume = if i.project == "default" {
        i.name.clone()
    } else {
        format!("{}_{}", i.project, i.name)
    };
    incus_dir.join("containers").join(volume).join("rootfs")
}

/// A running container is read through its init's root; a stopped one in its storage
/// volume, where the pool keeps it mounted (dir, btrfs). Otherwise: cannot tell.
fn readable_root(i: &Instance, volume: &Path) -> Option<PathBuf> {
    if let Some(pid) = i.init_pid().filter(|_| i.running() || i.status == "Frozen") {
        return Some(PathBuf::from(format!("/proc/{pid}/root")));
    }
    let mounted = std::fs::read_dir(volume).is_ok_and(|mut d| d.next().is_some());
    mounted.then(|| volume.to_path_buf())
}

/// Whether `root` (an init's root) is the container's filesystem now. While a container
/// starts, its init has the host's root for a moment (before it pivots into the container's);
/// a listing can be older than a restart; a PID can be reused. Where the host can see the
/// container's volume, the two must be the same directory; elsewhere, at least not the host's
/// own root.
fn is_own_root(root: &Path, rootfs: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).map(|m| (m.dev(), m.ino())).ok();
    let Some(root) = id(root) else { return false };
    match id(rootfs) {
        Some(volume) => root == volume,
        None => Some(root) != id(Path::new("/")),
    }
}

pub(super) fn sync_with(
    ctx: &Ctx,
    layout: &Layout,
    containers: &[Container],
    extra: &BTreeSet<String>,
    depth: Depth,
    cap: usize,
) -> Result<Vec<Synced>> {
    sync_planned(ctx, layout, containers, extra, depth, cap).map(|(done, _)| done)
}

/// A sync: its roots decided under the roots lock and written by the executor, as one plan
/// (returned too: a dry run prints it).
fn sync_planned(
    ctx: &Ctx,
    layout: &Layout,
    containers: &[Container],
    extra: &BTreeSet<String>,
    depth: Depth,
    cap: usize,
) -> Result<(Vec<Synced>, Plan)> {
    let _lock = if ctx.dry_run {
        None
    } else {
        Some(lock::wait(&layout.lock_file())?)
    };
    let mut origins = extra.clone();
    if depth == Depth::Full {
        origins.extend(layout.auto_origins());
    }
    let host_has = |p: &StorePath| Path::new(p.as_str()).symlink_metadata().is_ok();
    let mut done = Vec::new();
    // Decided under the lock, written by the executor while the lock is still held.
    let mut plan = Plan::default();
    for c in containers.iter().filter(|c| c.managed) {
        let dir = layout.dir(&c.project, &c.name);
        let old = match roots::read_index(&dir) {
            Ok(index) => index,
            Err(e) => {
                errln!(
                    "warning: {}: keeping its roots: cannot read {}: {e}",
                    c.name,
                    dir.display()
                );
                continue;
            }
        };
        // Checked at each sync, not when listed: the watcher's list can be older than a
        // restart.
        let root = c
            .root
            .as_deref()
            .filter(|r| *r == c.volume || is_own_root(r, &c.volume));
        let (next, change) = roots::decide(&old, root, &origins, depth, &host_has, cap);
        if next != old {
            plan.steps.push(Step {
                container: Some(c.name.clone()),
                host: None,
                what: What::Roots,
                description: describe(&change, ctx.dry_run),
                action: Action::WriteRoots {
                    dir,
                    index: next.clone(),
                },
            });
        }
        let snapshots_dir = layout.snapshots_dir(&c.project, &c.name);
        plan.steps
            .extend(snapshot_roots(c, snapshots_dir, &host_has));
        done.push(Synced {
            project: c.project.clone(),
            name: c.name.clone(),
            change,
            origins: next.roots.into_keys().collect(),
        });
    }
    // Containers that are gone: their roots go, so their builds can be collected.
    if depth == Depth::Full {
        for (project, name) in layout.known() {
            let here = containers
                .iter()
                .any(|c| c.project == project && c.name == name);
            if !here {
                release_gone(layout, project, name, ctx.dry_run, &mut plan, &mut done);
            }
        }
    }
    if !ctx.dry_run {
        execute::execute(&*ctx.runner, &plan)?;
    }
    Ok((done, plan))
}

/// The step that makes a container's snapshot roots what its snapshots need, if they differ:
/// each snapshot keeps the system it was taken with while the host still has it; a root made
/// in the last minute stays even if the listing lacks its snapshot (the listing may be older
/// than the root: `inx snapshot` makes the root, then the snapshot), since a root too many is
/// harmless while a missing one is not.
fn snapshot_roots(
    c: &Container,
    dir: PathBuf,
    host_has: &dyn Fn(&StorePath) -> bool,
) -> Option<Step> {
    let mut links = BTreeMap::new();
    for (snapshot, system) in &c.snapshots {
        if host_has(system) {
            links.insert(snapshot.clone(), system.clone());
        } else {
            errln!(
                "warning: {}: the system of snapshot {snapshot} ({}) is gone from the store: restoring it cannot bring that system back",
                c.name,
                system.base_name()
            );
        }
    }
    let now = roots::read_links(&dir);
    for (snapshot, target) in &now {
        if !links.contains_key(snapshot) && roots::is_recent(&dir.join(snapshot)) {
            if let Ok(path) = StorePath::parse(target) {
                links.insert(snapshot.clone(), path);
            }
        }
    }
    let same = now.len() == links.len()
        && links
            .iter()
            .all(|(s, p)| now.get(s).map(String::as_str) == Some(p.as_str()));
    (!same).then(|| Step {
        container: Some(c.name.clone()),
        host: None,
        what: What::Roots,
        description: format!(
            "keep the systems of {} snapshot{}",
            links.len(),
            if links.len() == 1 { "" } else { "s" }
        ),
        action: Action::WriteSnapshotRoots { dir, links },
    })
}

/// A container that is gone: the steps that release its roots and its snapshots' (so what
/// they kept can be collected), and what the sync reports of it. Roots it cannot read stay.
fn release_gone(
    layout: &Layout,
    project: String,
    name: ContainerName,
    dry_run: bool,
    plan: &mut Plan,
    done: &mut Vec<Synced>,
) {
    let dir = layout.dir(&project, &name);
    let Ok(old) = roots::read_index(&dir) else {
        errln!(
            "warning: {name}: keeping its roots: cannot read {}",
            dir.display()
        );
        return;
    };
    let change = Change {
        removed: old.roots.into_keys().collect(),
        ..Change::default()
    };
    let snapshots_dir = layout.snapshots_dir(&project, &name);
    if !roots::read_links(&snapshots_dir).is_empty() {
        plan.steps.push(Step {
            container: Some(name.clone()),
            host: None,
            what: What::Roots,
            description: "release the systems of its snapshots".to_string(),
            action: Action::WriteSnapshotRoots {
                dir: snapshots_dir,
                links: BTreeMap::new(),
            },
        });
    }
    plan.steps.push(Step {
        container: Some(name.clone()),
        host: None,
        what: What::Roots,
        description: describe(&change, dry_run),
        action: Action::WriteRoots {
            dir,
            index: roots::Index::default(),
        },
    });
    done.push(Synced {
        project,
        name,
        change,
        origins: BTreeSet::new(),
    });
}

/// A step's description: what changes in a container's roots.
fn describe(c: &Change, dry_run: bool) -> String {
    let verb = if dry_run { "would keep" } else { "keeps" };
    format!(
        "{} new, {} dropped; {verb} {} build{}",
        c.added.len(),
        c.removed.len(),
        c.total,
        if c.total == 1 { "" } else { "s" }
    )
}

/// What a sync did, on stderr.
pub(super) fn report(ctx: &Ctx, done: &[Synced], summary: bool) {
    for s in done {
        let c = &s.change;
        if let Some(why) = c.kept_unchecked.as_ref().filter(|_| c.total > 0) {
            errln!("{}: kept its roots unchecked: {why}", s.name);
        }
        if c.over_cap > 0 {
            errln!(
                "warning: {}: {} builds not kept: the container has reached --max-roots",
                s.name,
                c.over_cap
            );
        }
        let verb = if ctx.dry_run { "would keep" } else { "keeps" };
        if !c.added.is_empty() || !c.removed.is_empty() {
            // The executor printed the step as it ran it; a dry run runs none.
            if ctx.dry_run {
                ctx.runner
                    .progress(format_args!("{}: {}", s.name, describe(c, true)));
            }
        } else if summary {
            ctx.runner.progress(format_args!(
                "{}: {verb} {} build{}",
                s.name,
                c.total,
                if c.total == 1 { "" } else { "s" }
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::recorder::Recorder;

    fn listed(name: &str, project: &str, location: &str, managed: bool) -> serde_json::Value {
        let mut config = serde_json::json!({});
        if managed {
            config[instance::KEY_MANAGED] = "true".into();
        }
        serde_json::json!({
            "name": name, "status": "Stopped", "type": "container", "project": project,
            "location": location, "config": config, "devices": {}, "profiles": [],
            "state": null, "snapshots": null
        })
    }

    /// Gathering for the roots: one listing of every project and the server query, side by
    /// side; on a cluster only this member's instances; every instance kept (managed or
    /// not: only one that is gone makes its roots go), each with its volume in its project.
    #[test]
    fn gathering_lists_every_project_once_and_keeps_this_members_instances() {
        let list = serde_json::json!([
            listed("web", "default", "member2", true),
            listed("db", "lab", "member2", true),
            listed("other", "default", "member3", true),
            listed("foreign", "default", "member2", false),
        ]);
        let runner = Recorder::default()
            .prints("incus", &["list", "--all-projects"], &list.to_string())
            .prints(
                "incus",
                &["query", "/1.0"],
                r#"{"environment": {"server_clustered": true, "server_name": "member2"}}"#,
            );
        let found = gather(&runner, &Client::default()).unwrap();
        let names: Vec<(String, &str, bool)> = found
            .iter()
            .map(|c| (c.name.to_string(), c.project.as_str(), c.managed))
            .collect();
        assert_eq!(
            names,
            [
                ("web".to_string(), "default", true),
                ("db".to_string(), "lab", true),
                ("foreign".to_string(), "default", false),
            ]
        );
        assert!(found[1].volume.ends_with("containers/lab_db/rootfs"));
        assert_eq!(
            runner.lines(),
            [
                "capture: incus list --all-projects --format json",
                "capture: incus query /1.0"
            ]
        );
    }

    /// A listing Incus refuses is an error, not an empty host (whose roots would all go).
    #[test]
    fn a_refused_listing_is_an_error_not_an_empty_host() {
        let runner =
            Recorder::default().reply("incus", &["list"], 1, "", "Error: not authorized\n");
        assert!(gather(&runner, &Client::default()).is_err());
    }
}
