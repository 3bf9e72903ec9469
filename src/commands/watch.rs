//! `inx roots watch`: the long-running form of `inx roots sync` (see `roots`), fast enough
//! to root a build before the host's next root query deletes its auto link.

use super::roots::{full_sync, gather, report, sync_with, SyncReport, Synced};
use super::Ctx;
use crate::error::{Error, Kind, Result};
use crate::output;
use crate::roots::{Container, Layout, Scope};
use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

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
    log_sync(ctx, full_sync(ctx, &layout, &containers, cap));

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
        Ok(done) => {
            report(ctx, &done, false);
            // One document per sync, each on one line.
            if ctx.json {
                output::json_line(&SyncReport { containers: &done });
            }
        }
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
            "run inx roots watch as root (it watches, and if need be makes, Nix's gcroots/auto)",
        )
    };
    // Nix makes gcroots/auto with the first indirect root, so a fresh host may not have it
    // yet: make it as Nix would (root's, 0755) rather than have nothing to watch.
    std::fs::create_dir_all(auto).map_err(|e| {
        cannot(rustix::io::Errno::from_io_error(&e).unwrap_or(rustix::io::Errno::IO))
    })?;
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
