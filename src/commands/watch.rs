//! `inx roots watch`: the long-running form of `inx roots sync` (see `roots`), fast enough
//! to root a build before the host's next root query deletes its auto link.

use super::roots::{full_sync, gather, report, sync_with, SyncReport, Synced};
use super::Ctx;
use crate::error::{Error, Kind, Result};
use crate::output::{self, errln};
use crate::roots::{Container, Depth, Layout};
use std::collections::BTreeSet;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum Event {
    /// A new link in gcroots/auto, read the moment it appeared (the host may delete it soon).
    Auto(String),
    /// A fresh listing of the containers, made because they changed or time passed, and when
    /// it began (on a host with hundreds of containers a listing takes seconds, and it shows
    /// the containers as they were when it began).
    Listed(Instant, Result<Vec<Container>>),
    /// The kernel's queue of inotify events overflowed: new links may have gone unread.
    Overflow,
}

/// A new link that no listed container claims makes a listing of its own once the last
/// listing is this old. Such a link is either a build in a container the last listing missed
/// (one that was being created or started as it was made; Incus's event for it makes the
/// lister list again at once anyway, so this is the fallback) or a build on the host itself,
/// which no container ever claims. The number weighs the two: the fallback roots the build
/// within about a second and one `incus list`, while a stream of host builds costs at most
/// one listing a second (an `incus` process and a query of the daemon), not one per build.
/// Since the link is kept as a candidate until that listing, a root query meanwhile that
/// deletes the link does not lose it; only a collection in that second could.
const RELIST_AFTER: Duration = Duration::from_secs(1);

/// `inx roots watch`: roots a build the moment its auto link appears, and syncs fully
/// whenever a container is created, started, stopped or deleted, and every `interval`
/// seconds. Listing containers takes a process (and Incus about 18 ms a container), so it runs
/// on its own thread, whoever asks for it: a new link never waits for a listing. Runs until
/// killed.
pub fn watch(ctx: &Ctx, cap: usize, interval: u64) -> Result<()> {
    let layout = Layout::new();
    let (tx, rx) = mpsc::channel();
    watch_auto(&layout.auto, tx.clone())?;

    // One good listing and a full sync before anything else, so that the first build is
    // rooted the moment it appears. Incus may still be starting (at boot): wait for it.
    let mut containers = loop {
        match gather(&*ctx.runner, &crate::clients::incus::Client::default()) {
            Ok(found) => break found,
            Err(e) => errln!("roots: cannot list containers yet: {e}"),
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    log_sync(ctx, full_sync(ctx, &layout, &containers, cap));

    let refresh = lister(ctx, tx);
    watch_incus(ctx, refresh.clone());
    let timer = refresh.clone();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(interval.max(1)));
        if timer.send(()).is_err() {
            return;
        }
    });
    ctx.runner
        .progress(format_args!("roots: watching {}", layout.auto.display()));
    let mut decide = Decide::new(RELIST_AFTER, Instant::now());
    let mut wake = None;
    loop {
        // Wait for one event (or until `decide` wants to look again), then take everything
        // else that is queued: one sync for a burst.
        let first = match wake {
            None => Some(rx.recv().expect("the auto-link thread never stops")),
            Some(after) => match rx.recv_timeout(after) {
                Ok(event) => Some(event),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    unreachable!("the auto-link thread never stops")
                }
            },
        };
        decide.take(first.into_iter().chain(rx.try_iter()));
        loop {
            match decide.next(Instant::now()) {
                Next::Fast(new) => {
                    let fast = sync_with(ctx, &layout, &containers, &new, Depth::NewOnly, cap);
                    decide.unclaimed(unclaimed(&new, &fast), Instant::now());
                    log_sync(ctx, fast);
                }
                // The lister's thread lists; its answer comes back as an event.
                Next::List => {
                    let _ = refresh.send(());
                }
                Next::Full(listed, links) => {
                    if let Some(list) = listed {
                        containers = list;
                    }
                    let full = sync_with(ctx, &layout, &containers, &links, Depth::Full, cap);
                    log_sync(ctx, full);
                }
                Next::CannotList(e) => errln!("roots: cannot list containers now: {e}"),
                Next::Wait(after) => {
                    wake = after;
                    break;
                }
            }
        }
    }
}

/// What the watcher does next.
#[derive(Debug)]
enum Next {
    /// Root these new links with the containers known now: one sync for a whole burst.
    Fast(BTreeSet<String>),
    /// Ask the lister for a listing (it comes back as an event).
    List,
    /// Sync every container fully, with these containers when a listing came (otherwise the
    /// last ones), and with these links as well as the auto links there are now.
    Full(Option<Vec<Container>>, BTreeSet<String>),
    /// A listing failed. Incus may be restarting: the last list stays (it cannot tell which
    /// containers are gone, so nothing is dropped) until a listing succeeds.
    CannotList(Error),
    /// Nothing more until the next event, or until this much time has passed.
    Wait(Option<Duration>),
}

/// The watcher's decisions, apart from inotify, Incus and the clock: it takes bursts of
/// events and says what to do, one step at a time, until there is nothing left to do.
struct Decide {
    relist_after: Duration,
    /// New links no container has claimed yet: a container may be too new for the last
    /// listing. They are tried again with each listing until one that began after they were
    /// left unclaimed (an older one may not show the container yet).
    pending: BTreeSet<String>,
    /// When the oldest of `pending` was left unclaimed.
    pending_since: Option<Instant>,
    /// When a listing was asked for that has not come back yet: no second is asked meanwhile.
    asked: Option<Instant>,
    /// When the last good listing was taken in.
    listed_at: Instant,
    /// Whether the last listing succeeded. While Incus does not answer, unclaimed links wait
    /// for the listing that the Incus watcher asks for when it reconnects.
    answering: bool,
    /// What the burst brought that is not done yet: new links, the newest listing.
    new: BTreeSet<String>,
    listed: Option<(Instant, Result<Vec<Container>>)>,
    /// Links may have been missed since the last full sync.
    missed: bool,
}

impl Decide {
    fn new(relist_after: Duration, listed_at: Instant) -> Self {
        Decide {
            relist_after,
            pending: BTreeSet::new(),
            pending_since: None,
            asked: None,
            listed_at,
            answering: true,
            new: BTreeSet::new(),
            listed: None,
            missed: false,
        }
    }

    /// A burst of events: everything that was queued.
    fn take(&mut self, events: impl IntoIterator<Item = Event>) {
        for event in events {
            match event {
                Event::Auto(origin) => {
                    self.new.insert(origin);
                }
                Event::Listed(began, list) => self.listed = Some((began, list)),
                Event::Overflow => self.missed = true,
            }
        }
    }

    /// The links of the last `Next::Fast` that no container claimed, at `now`.
    fn unclaimed(&mut self, links: BTreeSet<String>, now: Instant) {
        if !links.is_empty() && self.pending_since.is_none() {
            self.pending_since = Some(now);
        }
        self.pending.extend(links);
    }

    fn next(&mut self, now: Instant) -> Next {
        if !self.new.is_empty() {
            return Next::Fast(std::mem::take(&mut self.new));
        }
        if let Some((began, listed)) = self.listed.take() {
            if self.asked.is_some_and(|asked| began >= asked) {
                self.asked = None;
            }
            match listed {
                Ok(list) => {
                    self.listed_at = now;
                    self.answering = true;
                    self.missed = false;
                    // Tried with a listing that began after they were left unclaimed:
                    // no container claims them (a build on the host itself).
                    let tried = if self.pending_since.is_none_or(|since| began >= since) {
                        self.pending_since = None;
                        std::mem::take(&mut self.pending)
                    } else {
                        self.pending.clone()
                    };
                    return Next::Full(Some(list), tried);
                }
                Err(e) => {
                    self.answering = false;
                    return Next::CannotList(e);
                }
            }
        }
        // Unclaimed links: ask for a listing now rather than wait for Incus's event (the host
        // may delete the link at its next root query), once the last listing is old enough
        // and none is on its way; until then, wake up when it is.
        let relist_in =
            (!self.pending.is_empty() && self.answering && self.asked.is_none()).then(|| {
                self.relist_after
                    .saturating_sub(now.saturating_duration_since(self.listed_at))
            });
        if relist_in == Some(Duration::ZERO) {
            self.asked = Some(now);
            return Next::List;
        }
        // A full sync reads every link in gcroots/auto, the missed ones too (those the host
        // has not deleted yet); the last list will do. Unclaimed links go along, and stay for
        // the next listing, which the last one is not.
        if self.missed {
            self.missed = false;
            return Next::Full(None, self.pending.clone());
        }
        Next::Wait(relist_in)
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
        Err(e) => errln!("roots: sync failed, will retry at the next event: {e}"),
    }
}

/// Lists containers on request; requests that pile up while it lists make one listing.
fn lister(ctx: &Ctx, events: mpsc::Sender<Event>) -> mpsc::Sender<()> {
    let (tx, rx) = mpsc::channel::<()>();
    let runner = std::sync::Arc::clone(&ctx.runner);
    let incus = crate::clients::incus::Client::default();
    std::thread::spawn(move || {
        while rx.recv().is_ok() {
            while rx.try_recv().is_ok() {}
            let began = Instant::now();
            if events
                .send(Event::Listed(began, gather(&*runner, &incus)))
                .is_err()
            {
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
            if let Some(event) = auto_event(&auto, event.events(), event.file_name()) {
                if let Event::Overflow = event {
                    errln!("roots: too many new links at once, some unread: syncing fully");
                }
                if tx.send(event).is_err() {
                    return;
                }
            }
        }
    });
    Ok(())
}

/// What one inotify event on gcroots/auto says: a new link, read at once; or an overflow of
/// the kernel's queue (a storm of links faster than this thread reads them), which names no
/// file and means that some links were never seen.
fn auto_event(
    auto: &Path,
    flags: rustix::fs::inotify::ReadFlags,
    name: Option<&std::ffi::CStr>,
) -> Option<Event> {
    if flags.contains(rustix::fs::inotify::ReadFlags::QUEUE_OVERFLOW) {
        return Some(Event::Overflow);
    }
    let name = name?;
    let target =
        std::fs::read_link(auto.join(std::ffi::OsStr::from_bytes(name.to_bytes()))).ok()?;
    let target = target.to_str().filter(|t| t.starts_with('/'))?;
    Some(Event::Auto(target.to_string()))
}

/// Follows Incus's lifecycle events; when the daemon goes away (a restart), reconnects and
/// asks for a full sync, since events may have been missed.
fn watch_incus(ctx: &Ctx, refresh: mpsc::Sender<()>) {
    let runner = std::sync::Arc::clone(&ctx.runner);
    let cmd = crate::clients::incus::Client::default().monitor_lifecycle();
    std::thread::spawn(move || {
        let mut wait = 1;
        loop {
            let began = std::time::Instant::now();
            let result = runner.stream_lines(&cmd, &mut |line| {
                let relevant = serde_json::from_str::<serde_json::Value>(line)
                    .ok()
                    .and_then(|v| v["metadata"]["action"].as_str().map(str::to_string))
                    .is_some_and(|a| changes_roots(&a));
                if relevant {
                    let _ = refresh.send(());
                }
            });
            match result {
                Ok(out) if !out.success() => {
                    errln!("roots: incus monitor ended: {}", out.stderr.trim())
                }
                Err(e) => errln!("roots: {e}"),
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

/// Whether an Incus lifecycle event can change what the roots come from: which containers
/// there are, whether they run (their init's root), their config or their snapshots. An
/// `incus exec` (every build a user starts with it), a file or log read, a console: none
/// does, and each would cost a listing and a full sync, which on a host with hundreds of
/// containers holds up the next new build's root for seconds.
fn changes_roots(action: &str) -> bool {
    action.starts_with("instance-")
        && !action.ends_with("-retrieved")
        && !matches!(
            action,
            "instance-exec"
                | "instance-console"
                | "instance-console-reset"
                | "instance-file-pushed"
                | "instance-file-deleted"
        )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::ContainerName;

    #[test]
    fn only_lifecycle_events_that_change_containers_make_a_sync() {
        for action in [
            "instance-created",
            "instance-started",
            "instance-stopped",
            "instance-shutdown",
            "instance-restarted",
            "instance-deleted",
            "instance-renamed",
            "instance-updated",
            "instance-snapshot-created",
            "instance-snapshot-deleted",
            "instance-restored",
        ] {
            assert!(changes_roots(action), "{action}");
        }
        for action in [
            "instance-exec",
            "instance-log-retrieved",
            "instance-file-retrieved",
            "instance-console",
            "instance-file-pushed",
            "network-updated",
            "image-created",
        ] {
            assert!(!changes_roots(action), "{action}");
        }
    }
    use std::path::PathBuf;

    const AFTER: Duration = Duration::from_secs(1);

    fn links(origins: &[&str]) -> BTreeSet<String> {
        origins.iter().map(|o| o.to_string()).collect()
    }

    fn auto(origin: &str) -> Event {
        Event::Auto(origin.to_string())
    }

    fn listing(names: &[&str]) -> Vec<Container> {
        names
            .iter()
            .map(|n| Container {
                project: "default".into(),
                name: ContainerName::parse(n).unwrap(),
                root: None,
                volume: PathBuf::from("/nonexistent"),
                managed: true,
                snapshots: Default::default(),
            })
            .collect()
    }

    /// A listing that began at `began`.
    fn listed(began: Instant, names: &[&str]) -> Event {
        Event::Listed(began, Ok(listing(names)))
    }

    fn failed() -> Event {
        Event::Listed(Instant::now(), Err(Error::new(Kind::Incus, "down")))
    }

    /// With a listing on the way, no second is asked for; one that began before the link was
    /// left unclaimed (it may not show the container yet) tries it but keeps it, and the next
    /// listing is asked for; one that began after settles it.
    #[test]
    fn a_listing_older_than_an_unclaimed_link_keeps_it_for_the_next() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        let result = links(&["/root/result"]);
        decide.take([auto("/root/result")]);
        let asked = t0 + Duration::from_secs(2);
        let done = steps_unclaimed(&mut decide, asked, &result);
        assert!(matches!(&done[..], [Next::Fast(_), Next::List]), "{done:?}");
        decide.take([]);
        let done = steps(&mut decide, asked + Duration::from_secs(5));
        assert!(
            matches!(&done[..], [Next::Wait(None)]),
            "one listing at a time: {done:?}"
        );
        // The interval's listing, begun before the link came, arrives first: it tries the
        // link and keeps it; the listing asked for is still on its way (the lister lists
        // again for a request that came while it listed).
        decide.take([listed(t0 + Duration::from_millis(500), &["old"])]);
        let later = asked + Duration::from_secs(6);
        let done = steps(&mut decide, later);
        let [Next::Full(Some(_), tried), Next::Wait(None)] = &done[..] else {
            panic!("tried, kept, and no second listing asked for: {done:?}")
        };
        assert_eq!(tried, &result);
        decide.take([listed(later, &["new"])]);
        let done = steps(&mut decide, later + AFTER);
        let [Next::Full(Some(list), tried), Next::Wait(None)] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(names(list), ["new"]);
        assert_eq!(tried, &result);
        assert!(decide.pending.is_empty(), "settled");
    }

    fn names(list: &[Container]) -> Vec<String> {
        list.iter().map(|c| c.name.to_string()).collect()
    }

    /// Every step until `Wait` or `List`, with no link left unclaimed by the fast syncs.
    fn steps(decide: &mut Decide, now: Instant) -> Vec<Next> {
        steps_unclaimed(decide, now, &BTreeSet::new())
    }

    /// Every step until `Wait` or `List` (which the loop answers with a listing); the fast
    /// syncs leave `unclaimed` to no container.
    fn steps_unclaimed(
        decide: &mut Decide,
        now: Instant,
        unclaimed: &BTreeSet<String>,
    ) -> Vec<Next> {
        let mut done = Vec::new();
        loop {
            let step = decide.next(now);
            if let Next::Fast(new) = &step {
                decide.unclaimed(new.intersection(unclaimed).cloned().collect(), now);
            }
            let wait = matches!(step, Next::Wait(_) | Next::List);
            done.push(step);
            if wait {
                return done;
            }
        }
    }

    #[test]
    fn a_burst_of_new_links_is_rooted_by_one_fast_sync() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        let burst: Vec<Event> = (0..50).map(|i| auto(&format!("/root/r{i}"))).collect();
        decide.take(burst);
        let done = steps(&mut decide, t0 + Duration::from_millis(10));
        let [Next::Fast(new), Next::Wait(None)] = &done[..] else {
            panic!("one fast sync, then wait: {done:?}")
        };
        assert_eq!(new.len(), 50);
    }

    #[test]
    fn a_link_that_appears_twice_in_a_burst_is_synced_once() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([auto("/root/result"), auto("/root/result")]);
        let done = steps(&mut decide, t0);
        let [Next::Fast(new), Next::Wait(None)] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(new, &links(&["/root/result"]));
    }

    #[test]
    fn claimed_links_make_no_listing() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([auto("/root/result")]);
        let done = steps(&mut decide, t0 + Duration::from_secs(30));
        assert!(
            matches!(&done[..], [Next::Fast(_), Next::Wait(None)]),
            "{done:?}"
        );
    }

    #[test]
    fn unclaimed_links_list_again_at_once_when_the_last_listing_is_old_enough() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        let result = links(&["/root/result"]);
        decide.take([auto("/root/result")]);
        let now = t0 + Duration::from_secs(2);
        let done = steps_unclaimed(&mut decide, now, &result);
        assert!(matches!(&done[..], [Next::Fast(_), Next::List]), "{done:?}");
        // The listing the lister made comes back, and the link is tried again with it.
        decide.take([listed(now, &["new"])]);
        let done = steps(&mut decide, now);
        let [Next::Full(Some(list), tried), Next::Wait(None)] = &done[..] else {
            panic!("a full sync with the new listing: {done:?}")
        };
        assert_eq!(names(list), ["new"]);
        assert_eq!(tried, &result);
        // Tried once: the next burst does not carry it again.
        decide.take([listed(now, &["new"])]);
        let done = steps(&mut decide, now + Duration::from_secs(5));
        let [Next::Full(_, tried), Next::Wait(None)] = &done[..] else {
            panic!("{done:?}")
        };
        assert!(tried.is_empty(), "{tried:?}");
    }

    #[test]
    fn unclaimed_links_make_no_listing_while_the_last_one_is_fresh() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([auto("/root/result")]);
        let done = steps_unclaimed(
            &mut decide,
            t0 + Duration::from_millis(300),
            &links(&["/root/result"]),
        );
        assert!(
            matches!(&done[..], [Next::Fast(_), Next::Wait(Some(d))] if *d == Duration::from_millis(700)),
            "no listing yet, but a look again when the last one is {AFTER:?} old: {done:?}"
        );
        // The next listing, whoever asked for it, takes the link along.
        decide.take([listed(t0 + Duration::from_millis(400), &["web"])]);
        let done = steps(&mut decide, t0 + Duration::from_millis(400));
        let [Next::Full(Some(_), tried), Next::Wait(None)] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(tried, &links(&["/root/result"]));
    }

    #[test]
    fn unclaimed_links_list_again_when_the_threshold_passes_without_another_event() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([auto("/root/result")]);
        let done = steps_unclaimed(
            &mut decide,
            t0 + Duration::from_millis(300),
            &links(&["/root/result"]),
        );
        let [Next::Fast(_), Next::Wait(Some(after))] = &done[..] else {
            panic!("{done:?}")
        };
        // Woken with no event: the threshold has passed, so it lists.
        decide.take([]);
        let done = steps(&mut decide, t0 + Duration::from_millis(300) + *after);
        assert!(matches!(&done[..], [Next::List]), "{done:?}");
    }

    #[test]
    fn after_a_failed_listing_unclaimed_links_wait_for_the_next_listing() {
        // Incus is not answering: the watcher's reconnect asks for a listing; no timer does.
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([auto("/root/result")]);
        let later = t0 + Duration::from_secs(5);
        let done = steps_unclaimed(&mut decide, later, &links(&["/root/result"]));
        assert!(matches!(&done[..], [Next::Fast(_), Next::List]), "{done:?}");
        decide.take([failed()]);
        let done = steps(&mut decide, later);
        assert!(
            matches!(&done[..], [Next::CannotList(_), Next::Wait(None)]),
            "{done:?}"
        );
        decide.take([]);
        let done = steps(&mut decide, later + Duration::from_secs(5));
        assert!(matches!(&done[..], [Next::Wait(None)]), "{done:?}");
    }

    #[test]
    fn links_and_a_listing_in_one_burst_sync_fast_first_then_fully() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([
            auto("/root/a"),
            listed(t0, &["old"]),
            auto("/root/b"),
            listed(t0, &["new"]),
        ]);
        let done = steps_unclaimed(&mut decide, t0, &links(&["/root/b"]));
        let [Next::Fast(new), Next::Full(Some(list), tried), Next::Wait(None)] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(new, &links(&["/root/a", "/root/b"]));
        assert_eq!(names(list), ["new"], "the newest listing wins");
        assert_eq!(tried, &links(&["/root/b"]));
    }

    #[test]
    fn a_failed_listing_keeps_the_last_list_and_the_unclaimed_links() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([auto("/root/result")]);
        steps_unclaimed(&mut decide, t0, &links(&["/root/result"]));
        decide.take([failed()]);
        let done = steps(&mut decide, t0);
        assert!(
            matches!(&done[..], [Next::CannotList(_), Next::Wait(None)]),
            "{done:?}"
        );
        decide.take([listed(t0, &["web"])]);
        let done = steps(&mut decide, t0);
        let [Next::Full(Some(_), tried), Next::Wait(None)] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(tried, &links(&["/root/result"]));
    }

    #[test]
    fn an_overflow_gives_a_full_sync_with_the_last_list() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([auto("/root/a"), Event::Overflow]);
        let done = steps(&mut decide, t0);
        let [Next::Fast(_), Next::Full(None, _), Next::Wait(None)] = &done[..] else {
            panic!("the new link at once, then everything: {done:?}")
        };
        // Once: the next burst is an ordinary one.
        decide.take([auto("/root/b")]);
        let done = steps(&mut decide, t0);
        assert!(
            matches!(&done[..], [Next::Fast(_), Next::Wait(None)]),
            "{done:?}"
        );
    }

    #[test]
    fn unclaimed_links_stay_for_the_next_listing_after_an_overflow() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        let result = links(&["/root/result"]);
        decide.take([auto("/root/result")]);
        steps_unclaimed(&mut decide, t0, &result);
        decide.take([Event::Overflow]);
        let done = steps(&mut decide, t0);
        let [Next::Full(None, tried), Next::Wait(Some(_))] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(tried, &result);
        decide.take([listed(t0, &["new"])]);
        let done = steps(&mut decide, t0);
        let [Next::Full(Some(_), tried), Next::Wait(None)] = &done[..] else {
            panic!("{done:?}")
        };
        assert_eq!(tried, &result);
    }

    #[test]
    fn an_overflow_and_a_listing_in_one_burst_give_one_full_sync() {
        let t0 = Instant::now();
        let mut decide = Decide::new(AFTER, t0);
        decide.take([Event::Overflow, listed(t0, &["web"])]);
        let done = steps(&mut decide, t0);
        assert!(
            matches!(&done[..], [Next::Full(Some(_), _), Next::Wait(None)]),
            "{done:?}"
        );
    }

    #[test]
    fn an_overflowed_inotify_queue_is_an_overflow_event() {
        let dir = tempfile::tempdir().unwrap();
        let event = auto_event(
            dir.path(),
            rustix::fs::inotify::ReadFlags::QUEUE_OVERFLOW,
            None,
        );
        assert!(matches!(event, Some(Event::Overflow)), "{event:?}");
    }

    #[test]
    fn a_new_auto_link_is_read_as_its_target() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/root/result", dir.path().join("abc")).unwrap();
        std::os::unix::fs::symlink("relative", dir.path().join("rel")).unwrap();
        let read = |name: &std::ffi::CStr| {
            auto_event(
                dir.path(),
                rustix::fs::inotify::ReadFlags::CREATE,
                Some(name),
            )
        };
        assert!(matches!(read(c"abc"), Some(Event::Auto(t)) if t == "/root/result"));
        assert!(read(c"rel").is_none(), "only absolute targets");
        assert!(read(c"gone").is_none(), "a link already deleted");
    }
}
