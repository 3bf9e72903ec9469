//! `inx roots sync`, `inx roots watch` and `inx gc`: keep what containers build alive across
//! the host's garbage collection (see `roots` for how).

use super::Ctx;
use crate::error::{Error, Kind, Result};
use crate::incus::{self, Incus, Instance};
use crate::instance;
use crate::lock;
use crate::name::{ContainerName, StorePath};
use crate::process::{Cmd, Runner};
use crate::roots::{self, Change, Container, Layout, Scope};
use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

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

pub fn sync(ctx: &Ctx, cap: usize) -> Result<()> {
    let layout = Layout::new();
    let containers = gather(&ctx.runner, &ctx.incus)?;
    let done = sync_with(
        ctx,
        &layout,
        &containers,
        &BTreeSet::new(),
        Scope::Full,
        cap,
    )?;
    report(ctx, &done, true);
    Ok(())
}

/// `inx gc ARGS`: roots first, then the host's collection. A sync that fails stops it, since
/// collecting without the roots is what loses builds.
pub fn gc(ctx: &Ctx, cap: usize, args: &[String]) -> Result<i32> {
    sync(ctx, cap)?;
    let cmd = Cmd::new("nix-collect-garbage").args(args.iter().cloned());
    if ctx.dry_run {
        println!("{}", cmd.to_shell());
        return Ok(0);
    }
    match ctx.runner.interactive(&cmd)? {
        0 => Ok(0),
        code => Err(Error::new(
            Kind::Failed,
            format!("`{}` failed (exit code {code})", cmd.to_shell()),
        )),
    }
}

/// The inx containers of every project, and where each one's filesystem can be read.
fn gather(runner: &Runner, incus: &Incus) -> Result<Vec<Container>> {
    let cmd = incus.list_all_projects();
    let out = incus::checked(&cmd, runner.capture(&cmd)?)?;
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

fn sync_with(
    ctx: &Ctx,
    layout: &Layout,
    containers: &[Container],
    extra: &BTreeSet<String>,
    scope: Scope,
    cap: usize,
) -> Result<Vec<Synced>> {
    let _lock = if ctx.dry_run {
        None
    } else {
        Some(lock::wait(&layout.lock_file())?)
    };
    let mut origins = extra.clone();
    if scope == Scope::Full {
        origins.extend(layout.auto_origins());
    }
    let host_has = |p: &StorePath| Path::new(p.as_str()).symlink_metadata().is_ok();
    let mut done = Vec::new();
    let write = |dir: &Path, next: &roots::Index| -> Result<()> {
        if ctx.dry_run {
            return Ok(());
        }
        roots::write(dir, next).map_err(|e| {
            Error::new(
                Kind::Failed,
                format!("cannot write GC roots in {}: {e}", dir.display()),
            )
            .with_hint("inx keeps GC roots under /nix/var/nix/gcroots/inx: run it as root")
        })
    };
    for c in containers.iter().filter(|c| c.managed) {
        let dir = layout.dir(&c.project, &c.name);
        let old = match roots::read_index(&dir) {
            Ok(index) => index,
            Err(e) => {
                eprintln!(
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
        let (next, change) = roots::decide(&old, root, &origins, scope, &host_has, cap);
        if next != old {
            write(&dir, &next)?;
        }
        done.push(Synced {
            project: c.project.clone(),
            name: c.name.clone(),
            change,
            origins: next.roots.into_keys().collect(),
        });
    }
    // Containers that are gone: their roots go, so their builds can be collected.
    let known = if scope == Scope::Full {
        layout.known()
    } else {
        Vec::new()
    };
    for (project, name) in known {
        if containers
            .iter()
            .any(|c| c.project == project && c.name == name)
        {
            continue;
        }
        let dir = layout.dir(&project, &name);
        let Ok(old) = roots::read_index(&dir) else {
            eprintln!(
                "warning: {name}: keeping its roots: cannot read {}",
                dir.display()
            );
            continue;
        };
        write(&dir, &roots::Index::default())?;
        done.push(Synced {
            project,
            name,
            change: Change {
                removed: old.roots.into_keys().collect(),
                ..Change::default()
            },
            origins: BTreeSet::new(),
        });
    }
    Ok(done)
}

fn report(ctx: &Ctx, done: &[Synced], summary: bool) {
    if ctx.json {
        println!(
            "{}",
            serde_json::to_string_pretty(done).expect("changes serialise")
        );
    }
    for s in done {
        let c = &s.change;
        if let Some(why) = c.kept_unchecked.as_ref().filter(|_| c.total > 0) {
            eprintln!("{}: kept its roots unchecked: {why}", s.name);
        }
        if c.over_cap > 0 {
            eprintln!(
                "warning: {}: {} builds not kept: the container has reached --max-roots",
                s.name, c.over_cap
            );
        }
        let verb = if ctx.dry_run { "would keep" } else { "keeps" };
        if !c.added.is_empty() || !c.removed.is_empty() {
            eprintln!(
                "{}: {} new, {} dropped; {verb} {} build{}",
                s.name,
                c.added.len(),
                c.removed.len(),
                c.total,
                if c.total == 1 { "" } else { "s" }
            );
        } else if summary {
            eprintln!(
                "{}: {verb} {} build{}",
                s.name,
                c.total,
                if c.total == 1 { "" } else { "s" }
            );
        }
    }
}

enum Event {
    /// A new link in gcroots/auto, read the moment it appeared (the host may delete it soon).
    Auto(String),
    /// A fresh listing of the containers, made because they changed or time passed.
    Listed(Result<Vec<Container>>),
}

/// `inx roots watch`: roots a build the moment its auto link appears, and syncs fully
/// whenever a container is created, started, stopped or deleted, and every `interval`
/// seconds. Listing containers takes a process, so it runs on its own thread: a new link never
/// waits for a listing. Runs until killed.
pub fn watch(ctx: &Ctx, cap: usize, interval: u64) -> Result<()> {
    let layout = Layout::new();
    let (tx, rx) = mpsc::channel();
    watch_auto(&layout.auto, tx.clone())?;

    // One good listing and a full sync before anything else, so that the first build is
    // rooted the moment it appears. Incus may still be starting (at boot): wait for it.
    let mut containers = loop {
        match gather(&ctx.runner, &ctx.incus) {
            Ok(found) => break found,
            Err(e) => eprintln!("roots: cannot list containers yet: {e}"),
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let full = sync_with(
        ctx,
        &layout,
        &containers,
        &BTreeSet::new(),
        Scope::Full,
        cap,
    );
    log_sync(ctx, full);

    let refresh = lister(ctx, tx);
    watch_incus(ctx, refresh.clone());
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(interval.max(1)));
        if refresh.send(()).is_err() {
            return;
        }
    });
    eprintln!("roots: watching {}", layout.auto.display());
    // New links no container has claimed yet: a container may be too new for the last
    // listing. They are tried again with a fresh one.
    let mut pending: BTreeSet<String> = BTreeSet::new();
    let mut listed_at = std::time::Instant::now();
    loop {
        // Wait for one event, then take everything else that is queued: one sync for a burst.
        let first = rx.recv().expect("the auto-link thread never stops");
        let mut new = BTreeSet::new();
        let mut listed = None;
        for event in std::iter::once(first).chain(rx.try_iter()) {
            match event {
                Event::Auto(origin) => {
                    new.insert(origin);
                }
                Event::Listed(list) => listed = Some(list),
            }
        }
        if !new.is_empty() {
            let fast = sync_with(ctx, &layout, &containers, &new, Scope::NewOnly, cap);
            pending.extend(unclaimed(&new, &fast));
            log_sync(ctx, fast);
        }
        // Unclaimed links and a listing that is not brand new: list now, on this thread,
        // rather than wait for Incus's event (the host may delete the link at its next root
        // query). Not more often than every 250 ms: builds on the host itself are never
        // claimed.
        if listed.is_none() && !pending.is_empty() && listed_at.elapsed() > Duration::from_secs(1) {
            listed = Some(gather(&ctx.runner, &ctx.incus));
        }
        match listed {
            Some(Ok(list)) => {
                containers = list;
                listed_at = std::time::Instant::now();
                let full = sync_with(ctx, &layout, &containers, &pending, Scope::Full, cap);
                pending.clear();
                log_sync(ctx, full);
            }
            // Incus may be restarting: keep the last list (which cannot tell which containers
            // are gone, so nothing is dropped) and wait for the next listing.
            Some(Err(e)) => eprintln!("roots: cannot list containers now: {e}"),
            None => {}
        }
    }
}

/// The new links that no container's roots come from after a sync.
fn unclaimed(new: &BTreeSet<String>, result: &Result<Vec<Synced>>) -> BTreeSet<String> {
    let Ok(done) = result else {
        return new.clone();
    };
    new.iter()
        .filter(|o| !done.iter().any(|s| s.origins.contains(*o)))
        .cloned()
        .collect()
}

fn log_sync(ctx: &Ctx, result: Result<Vec<Synced>>) {
    match result {
        Ok(done) => report(ctx, &done, false),
        Err(e) => eprintln!("roots: sync failed, will retry at the next event: {e}"),
    }
}

/// Lists containers on request; requests that pile up while it lists make one listing.
fn lister(ctx: &Ctx, events: mpsc::Sender<Event>) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let runner = ctx.runner;
    let incus = ctx.incus.clone();
    std::thread::spawn(move || {
        while rx.recv().is_ok() {
            while rx.try_recv().is_ok() {}
            if events.send(Event::Listed(gather(&runner, &incus))).is_err() {
                return;
            }
        }
    });
    tx
}

/// Reads each new auto link as soon as it appears. Nix writes them under a temporary name and
/// renames them, so both creations and renames count.
fn watch_auto(auto: &Path, tx: mpsc::Sender<Event>) -> Result<()> {
    use rustix::fs::inotify;
    let cannot = |e: rustix::io::Errno| {
        Error::new(
            Kind::Failed,
            format!("cannot watch {}: {e}", auto.display()),
        )
        .with_hint(
            "run inx roots watch as root, on a host whose Nix has made its gcroots/auto directory",
        )
    };
    let fd = inotify::init(inotify::CreateFlags::CLOEXEC).map_err(cannot)?;
    inotify::add_watch(
        &fd,
        auto,
        inotify::WatchFlags::CREATE | inotify::WatchFlags::MOVED_TO | inotify::WatchFlags::ONLYDIR,
    )
    .map_err(cannot)?;
    let auto = auto.to_path_buf();
    std::thread::spawn(move || {
        let mut buf = [std::mem::MaybeUninit::uninit(); 8192];
        let mut events = inotify::Reader::new(&fd, &mut buf);
        loop {
            let Ok(event) = events.next() else {
                continue;
            };
            let Some(name) = event.file_name() else {
                continue;
            };
            let path = auto.join(std::ffi::OsStr::from_bytes(name.to_bytes()));
            if let Ok(target) = std::fs::read_link(&path) {
                if let Some(t) = target.to_str().filter(|t| t.starts_with('/')) {
                    if tx.send(Event::Auto(t.to_string())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    Ok(())
}

/// Follows Incus's lifecycle events; when the daemon goes away (a restart), reconnects and
/// asks for a full sync, since events may have been missed.
fn watch_incus(ctx: &Ctx, refresh: mpsc::Sender<()>) {
    let runner = ctx.runner;
    let cmd = ctx.incus.monitor_lifecycle();
    std::thread::spawn(move || {
        let mut wait = 1;
        loop {
            let began = std::time::Instant::now();
            let result = runner.stream_lines(&cmd, |line| {
                let is_instance = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["metadata"]["action"].as_str().map(str::to_string))
                    .is_some_and(|a| a.starts_with("instance-"));
                if is_instance {
                    let _ = refresh.send(());
                }
            });
            match result {
                Ok(out) if !out.success() => {
                    eprintln!("roots: incus monitor ended: {}", out.stderr.trim())
                }
                Err(e) => eprintln!("roots: {e}"),
                Ok(_) => {}
            }
            if refresh.send(()).is_err() {
                return;
            }
            // Back off while Incus stays away; a connection that lasted starts over.
            if began.elapsed() > Duration::from_secs(60) {
                wait = 1;
            }
            std::thread::sleep(Duration::from_secs(wait));
            wait = (wait * 2).min(30);
        }
    });
}
