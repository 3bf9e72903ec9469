//! Carries out a plan. Steps for no container (the one build) run first, and a failure there
//! stops everything. Then each container's steps run in order, a few containers at a time: their
//! work happens mostly in the Incus and Nix daemons, so on two cores four at a time take about
//! 0.6 of the time of one by one (docs/benchmarks.md). A failed step stops that
//! container's remaining steps; the other containers go on, and the command fails at the end.
//!
//! A container's last step, when it is `incus start NAME`, waits for the others: the starts of
//! every container that got there run as one `incus start A B C` (one call for many takes about
//! 0.6 of the time of one call each; at most `START_BATCH` to a call). Incus starts each it can
//! and names each that failed, so a failure is still its container's alone. The plan shows one
//! start per container; `-v` shows the calls that ran.

pub mod folder;
pub mod hold;
pub mod interrupt;
pub mod lock;
pub mod process;
pub mod progress;
#[cfg(test)]
pub mod recorder;
pub mod roots;
pub mod steps;

use crate::clients::incus;
use crate::clients::incus::Client;
use crate::cmd::{failure, Cmd};
use crate::error::{Error, Kind, Result};
use crate::execute::process::Run;
use crate::name::ContainerName;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use steps::{Action, Halt, Plan, Start, Step, What};

/// How many containers' steps run at once.
const JOBS: usize = 4;

/// The most containers one `incus start` is given. The client starts all it is given at once
/// (a request each, side by side): on two cores one call for 500 failed to start 43 of them
/// (their pre-start hook exited 1), while calls for 100 and 250 started all. Calls for 100,
/// one after another, keep the gain of starting many at once (docs/benchmarks.md).
const START_BATCH: usize = 100;

pub fn execute(runner: &dyn Run, plan: &Plan) -> Result<()> {
    let bar = progress::Bar::start(runner.bars(), plan.steps.len());
    let mut chains: Vec<(&ContainerName, Vec<&Step>)> = Vec::new();
    let mut hosts: Vec<(&str, Vec<&Step>)> = Vec::new();
    for step in &plan.steps {
        if let (None, Some(host)) = (&step.container, &step.host) {
            match hosts.iter_mut().find(|(h, _)| h == host) {
                Some((_, steps)) => steps.push(step),
                None => hosts.push((host, vec![step])),
            }
            continue;
        }
        let Some(container) = &step.container else {
            debug_assert!(
                chains.is_empty(),
                "a plan puts steps for no container first"
            );
            crate::execute::interrupt::check()?;
            runner.progress(format_args!("{}", step.description));
            bar.now(&step.description);
            run_watched(runner, step, &bar)?;
            bar.done();
            continue;
        };
        match chains.iter_mut().find(|(c, _)| *c == container) {
            Some((_, steps)) => steps.push(step),
            None => chains.push((container, vec![step])),
        }
    }

    run_hosts(runner, &hosts, &bar)?;

    // Each chain's last step, when it is its container's start, waits to join the others'.
    let deferred: Vec<Option<&Start>> = chains
        .iter_mut()
        .map(|(_, steps)| match steps.last()?.action {
            Action::Start(ref start) => {
                steps.pop();
                Some(start)
            }
            _ => None,
        })
        .collect();

    let failed: Mutex<BTreeMap<&ContainerName, Error>> = Mutex::default();
    // Each host's containers get their own workers: another host's daemon is another
    // machine's, and waits on none of this one's.
    let mut lanes: Vec<(Option<&str>, Vec<usize>)> = Vec::new();
    for (i, (_, steps)) in chains.iter().enumerate() {
        let lane = steps.first().and_then(|s| s.host.as_deref());
        match lanes.iter_mut().find(|(l, _)| *l == lane) {
            Some((_, members)) => members.push(i),
            None => lanes.push((lane, vec![i])),
        }
    }
    let nexts: Vec<AtomicUsize> = lanes.iter().map(|_| AtomicUsize::new(0)).collect();
    std::thread::scope(|scope| {
        for ((_, members), next) in lanes.iter().zip(&nexts) {
            for _ in 0..JOBS.min(members.len()) {
                let (chains, failed, bar) = (&chains, &failed, &bar);
                scope.spawn(move || {
                    while let Some((container, steps)) = members
                        .get(next.fetch_add(1, Ordering::SeqCst))
                        .map(|i| &chains[*i])
                    {
                        if let Err(e) = run_chain(runner, container, steps, bar) {
                            failed
                                .lock()
                                .unwrap_or_else(|p| p.into_inner())
                                .insert(container, e);
                        }
                    }
                });
            }
        }
    });

    let mut failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    let ready: Vec<(&ContainerName, &Start)> = chains
        .iter()
        .zip(&deferred)
        .filter(|((c, _), _)| !failed.contains_key(c))
        .filter_map(|((c, _), start)| start.map(|s| (*c, s)))
        .collect();
    if !ready.is_empty() {
        bar.now("start");
    }
    for (container, e) in start_together(runner, &ready) {
        failed.insert(container, e);
    }
    drop(bar);
    if failed.is_empty() {
        return Ok(());
    }
    // Each failure was printed as it happened; the error that ends the command only sums up,
    // keeping the failures' kind (and so the exit code) when they agree.
    let kinds: Vec<Kind> = failed.values().map(|e| e.kind).collect();
    if kinds.contains(&Kind::Interrupted) {
        return Err(crate::execute::interrupt::check().expect_err("interrupted"));
    }
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

/// One container's steps in order, until one fails (its error, printed as it happens).
fn run_chain(
    runner: &dyn Run,
    container: &ContainerName,
    steps: &[&Step],
    bar: &progress::Bar,
) -> Result<()> {
    for step in steps {
        let done = crate::execute::interrupt::check().and_then(|()| {
            runner.progress(format_args!("{container}: {}", step.description));
            bar.now(&format!("{container}: {}", step.description));
            run_watched(runner, step, bar)
        });
        bar.done();
        if let Err(e) = done {
            if e.kind == Kind::Interrupted {
                progress::line(format_args!(
                    "{container}: not finished (interrupted before: {})",
                    step.description
                ));
            } else {
                progress::line(format_args!("{container}: {e}"));
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Each other host's steps in order, the hosts side by side (each waits on its own network
/// and daemon). Any host's failure ends the command before any container's step runs.
fn run_hosts(runner: &dyn Run, hosts: &[(&str, Vec<&Step>)], bar: &progress::Bar) -> Result<()> {
    let failed: Mutex<Vec<Error>> = Mutex::default();
    std::thread::scope(|scope| {
        for (host, steps) in hosts {
            let failed = &failed;
            scope.spawn(move || {
                // The host's hold (see `SshDest::hold`): kept until this host's steps end.
                let mut held: Option<process::Held> = None;
                for step in steps {
                    let done = crate::execute::interrupt::check().and_then(|()| {
                        runner.progress(format_args!("host {host}: {}", step.description));
                        bar.now(&format!("host {host}: {}", step.description));
                        if let Some(h) = &mut held {
                            if !h.holds() {
                                return Err(Error::new(
                                    Kind::Failed,
                                    "the ssh session that held this host (its lock and roots there) ended before its steps did; run this again",
                                ));
                            }
                        }
                        match (&step.what, &step.action) {
                            (What::Hold, Action::Run(cmd)) => {
                                held = Some(hold(runner, cmd)?);
                                Ok(())
                            }
                            _ => run_watched(runner, step, bar),
                        }
                    });
                    bar.done();
                    if let Err(e) = done {
                        progress::line(format_args!("host {host}: {e}"));
                        failed.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                        break;
                    }
                }
            });
        }
    });
    let failed = failed.into_inner().unwrap_or_else(|p| p.into_inner());
    match failed.into_iter().next() {
        None => Ok(()),
        Some(e) if e.kind == Kind::Interrupted => Err(e),
        Some(e) if e.kind == Kind::Locked => Err(Error::new(
            e.kind,
            "another inx holds a host (see above); no container was changed",
        )
        .with_hint("wait for it to finish and run this again")),
        Some(e) => Err(Error::new(
            e.kind,
            "copying to another host failed (see above); no container was changed",
        )),
    }
}

/// Starts a host's hold; an error when it ended before it held the host.
fn hold(runner: &dyn Run, cmd: &Cmd) -> Result<process::Held> {
    runner
        .hold(cmd, hold::HELD)?
        .map_err(|out| hold::hold_failed(cmd, &out))
}

/// Runs the starts of `ready` as one call per client (and project); returns the containers
/// whose start failed, each with its error.
fn start_together<'a>(
    runner: &dyn Run,
    ready: &[(&'a ContainerName, &Start)],
) -> Vec<(&'a ContainerName, Error)> {
    let mut groups: Vec<(&Client, Vec<&ContainerName>)> = Vec::new();
    for (container, start) in ready {
        match groups.iter_mut().find(|(on, _)| **on == start.on) {
            Some((_, names)) => names.push(container),
            None => groups.push((&start.on, vec![container])),
        }
    }
    let batches = groups.into_iter().flat_map(|(on, names)| {
        names
            .chunks(START_BATCH)
            .map(|batch| (on, batch.to_vec()))
            .collect::<Vec<_>>()
    });
    let mut failed = Vec::new();
    for (on, names) in batches {
        let cmd = on.start_all(&names);
        let out = crate::execute::interrupt::check().and_then(|()| {
            for name in &names {
                runner.progress(format_args!("{name}: start"));
            }
            runner.change(&cmd)
        });
        let out = match out {
            Ok(out) if out.success() => continue,
            Ok(out) => out,
            Err(e) => {
                for name in names {
                    if e.kind == Kind::Interrupted {
                        progress::line(format_args!(
                            "{name}: not finished (interrupted before: start)"
                        ));
                    } else {
                        progress::line(format_args!("{name}: {e}"));
                    }
                    failed.push((name, e.clone()));
                }
                continue;
            }
        };
        // Incus names each instance it could not start ("NAME: error: ..."); when it names
        // none (the daemon is down), none of them started.
        let named: Vec<&ContainerName> = names
            .iter()
            .copied()
            .filter(|n| out.stderr.lines().any(|l| l.starts_with(&format!("{n}: "))))
            .collect();
        let whom = if named.is_empty() { names } else { named };
        for name in whom {
            let own: String = out
                .stderr
                .lines()
                .filter(|l| l.starts_with(&format!("{name}: ")) || !l.contains(": error: "))
                .map(|l| format!("{l}\n"))
                .collect();
            let e = incus::failure_of(
                &cmd,
                &crate::cmd::Output {
                    code: out.code,
                    stdout: String::new(),
                    stderr: own,
                },
            );
            progress::line(format_args!("{name}: {e}"));
            failed.push((name, e));
        }
    }
    failed
}

/// A step, with the progress bar put aside while a build or a collection writes its own log
/// to the terminal.
fn run_watched(runner: &dyn Run, step: &Step, bar: &progress::Bar) -> Result<()> {
    if matches!(step.what, What::Build | What::Collect) {
        bar.aside(|| run_step(runner, step))
    } else {
        run_step(runner, step)
    }
}

/// A folder of inx's host profiles is shared with their group (see `host_files`); any other
/// (an image's out-link folder, say) is the user's, made as the umask says.
fn create_dir(path: &std::path::Path) -> std::io::Result<()> {
    if path.starts_with(crate::host_files::profiles_root()) {
        crate::host_files::create_dir_all(path)
    } else {
        std::fs::create_dir_all(path)
    }
}

fn run_step(runner: &dyn Run, step: &Step) -> Result<()> {
    match &step.action {
        Action::CreateDir(path) => create_dir(path).map_err(|e| {
            let err = Error::new(
                Kind::Failed,
                format!("cannot create {}: {e}", path.display()),
            );
            if path.starts_with("/nix/var") {
                err.with_hint(
                    "inx keeps host profiles under /nix/var/nix/profiles/inx: run it as root, or as a member of the group that owns that folder (incus-admin with nixosModules.host)",
                )
            } else {
                err
            }
        }),
        Action::RemoveDir(path) => match std::fs::remove_dir_all(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::new(
                Kind::Failed,
                format!("cannot remove {}: {e}", path.display()),
            )),
            _ => Ok(()),
        },
        Action::RemoveRoots(roots) => remove_roots(&roots.dir, &roots.lock),
        Action::WriteFolder(folder) => folder::write(folder),
        // As for WriteRoots: the caller holds the roots lock.
        Action::WriteSnapshotRoots { dir, links } => crate::execute::roots::write_links(dir, links)
            .map_err(|e| {
                Error::new(
                    Kind::Failed,
                    format!("cannot write snapshot roots in {}: {e}", dir.display()),
                )
                .with_hint("inx keeps GC roots under /nix/var/nix/gcroots/inx: run it as root, or as a member of the group that owns that folder (incus-admin with nixosModules.host)")
            }),
        // The caller holds the roots lock: it decided these roots under it.
        Action::WriteRoots { dir, index } => crate::execute::roots::write(dir, index).map_err(|e| {
            Error::new(
                Kind::Failed,
                format!("cannot write GC roots in {}: {e}", dir.display()),
            )
            .with_hint("inx keeps GC roots under /nix/var/nix/gcroots/inx: run it as root, or as a member of the group that owns that folder (incus-admin with nixosModules.host)")
        }),
        Action::Halt(halt) => run_halt(runner, step, halt),
        Action::Start(start) => run_cmd(runner, step, &start.cmd()),
        Action::Run(cmd) => run_cmd(runner, step, cmd),
    }
}

/// A step's command: a build's log relayed, a collection's report too, anything else captured
/// and shown only when it fails.
fn run_cmd(runner: &dyn Run, step: &Step, cmd: &Cmd) -> Result<()> {
    let out = match step.what {
        What::Build => runner.show_stderr(cmd)?,
        What::Collect => runner.show_all(cmd)?,
        _ => runner.change(cmd)?,
    };
    if out.success() {
        return Ok(());
    }
    Err(match (cmd.program.as_str(), step.what) {
        ("incus" | "lxc", _) => incus::failure_of(cmd, &out),
        (_, What::Build) => {
            failure(Kind::Build, cmd, &out).with_hint("the build log is above; nothing was changed")
        }
        _ => failure(Kind::Failed, cmd, &out),
    })
}

/// A stop or restart: the clean one, given its timeout (a Ctrl-C ends the wait and leaves
/// that stop to Incus), then the kill if it failed. Says in one line which it was.
fn run_halt(runner: &dyn Run, step: &Step, halt: &Halt) -> Result<()> {
    let who = step
        .container
        .as_ref()
        .map_or_else(String::new, |c| format!("{c}: "));
    let done = if step.what == What::Restart {
        "restarted"
    } else {
        "stopped"
    };
    if let Some(clean) = &halt.clean {
        let out = runner.change_or_abandon(clean).inspect_err(|e| {
            if e.kind == Kind::Interrupted {
                progress::line(format_args!(
                    "{who}no longer waiting: Incus goes on with the clean shutdown (for up to {} s), and kills nothing",
                    halt.timeout
                ));
            }
        })?;
        if out.success() {
            runner.progress(format_args!("{who}{done} cleanly"));
            return Ok(());
        }
        // Incus gave up on the clean shutdown (or refused it; then the kill fails too, and
        // says why once): say so, then kill.
        progress::line(format_args!(
            "{who}not stopped cleanly within {} s, killing it",
            halt.timeout
        ));
    }
    let out = runner.change(&halt.kill)?;
    if !out.success() {
        return Err(incus::failure_of(&halt.kill, &out));
    }
    match halt.clean {
        Some(_) => runner.progress(format_args!("{who}{done}: killed after {} s", halt.timeout)),
        None => runner.progress(format_args!("{who}{done}: killed (--force)")),
    }
    Ok(())
}

/// Under the roots lock, which `roots sync` and `watch` hold while they write the same folders
/// (the host lock of `destroy` is another one).
fn remove_roots(dir: &std::path::Path, lock_file: &std::path::Path) -> Result<()> {
    let _lock = crate::execute::lock::wait(lock_file)?;
    crate::execute::roots::write_links(&dir.join("snapshots"), &Default::default())
        .and_then(|()| crate::execute::roots::write(dir, &Default::default()))
        .map_err(|e| {
            Error::new(
                Kind::Failed,
                format!("cannot remove the GC roots in {}: {e}", dir.display()),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::Cmd;
    use crate::execute::process::Runner;
    use crate::execute::recorder::Recorder;

    fn sh(container: &str, script: &str) -> Step {
        Step {
            container: Some(ContainerName::parse(container).unwrap()),
            host: None,
            what: What::Start,
            description: script.to_string(),
            action: Action::Run(Cmd::new("sh").args(["-c", script])),
        }
    }

    /// Each container's steps run in order, containers run at the same time, and a failure
    /// stops only the steps of its own container.
    #[test]
    fn containers_run_side_by_side_and_fail_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display();
        // Each first step waits (up to 5 s) until two containers have started: one by one,
        // it would time out and fail.
        let meet = |c: &str| {
            format!(
                "touch {d}/started-{c}; i=0; while [ $(ls {d} | grep -c started) -lt 2 ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; [ $(ls {d} | grep -c started) -ge 2 ]"
            )
        };
        let mut steps = Vec::new();
        for c in ["a", "b", "c"] {
            steps.push(sh(c, &meet(c)));
            steps.push(sh(c, &format!("echo {c}1 >>{d}/log-{c}")));
            if c == "b" {
                steps.push(sh(c, "exit 3"));
            }
            steps.push(sh(c, &format!("echo {c}2 >>{d}/log-{c}")));
        }
        let plan = Plan {
            steps,
            ..Plan::default()
        };
        let err = execute(&Runner::default(), &plan).unwrap_err();
        assert_eq!(err.kind, Kind::Failed);
        assert!(err.message.starts_with("b failed"), "{err}");
        let log = |c: &str| std::fs::read_to_string(tmp.path().join(format!("log-{c}"))).unwrap();
        assert_eq!(log("a"), "a1\na2\n");
        assert_eq!(log("b"), "b1\n", "b stops at its failed step");
        assert_eq!(log("c"), "c1\nc2\n");
    }

    /// Removing a container's roots waits while a sync holds the roots lock.
    #[test]
    fn removing_roots_waits_for_the_roots_lock() {
        let tmp = tempfile::tempdir().unwrap();
        let lock_file = tmp.path().join(".lock");
        let dir = tmp.path().join("web");
        std::fs::create_dir_all(&dir).unwrap();
        let held = crate::execute::lock::acquire(&lock_file).unwrap();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let (d, l) = (dir.clone(), lock_file.clone());
        let worker = std::thread::spawn(move || {
            remove_roots(&d, &l).unwrap();
            done_tx.send(()).unwrap();
        });
        let waited = done_rx.recv_timeout(std::time::Duration::from_millis(300));
        assert!(waited.is_err(), "removed while a sync held the lock");
        assert!(dir.exists());
        drop(held);
        done_rx
            .recv_timeout(std::time::Duration::from_secs(10))
            .expect("removed once the lock was free");
        worker.join().unwrap();
        assert!(!dir.exists());
    }

    /// A start as the plans make it (see `plan::Start`).
    fn start_of(container: &str) -> Step {
        let name = ContainerName::parse(container).unwrap();
        Step {
            container: Some(name.clone()),
            host: None,
            what: What::Start,
            description: "start".into(),
            action: Action::Start(Start {
                on: incus::Client::default(),
                name,
            }),
        }
    }

    fn step_of(container: Option<&str>, what: What, program: &str, args: &[&str]) -> Step {
        Step {
            container: container.map(|c| ContainerName::parse(c).unwrap()),
            host: None,
            what,
            description: format!("{program} {}", args.join(" ")),
            action: Action::Run(Cmd::new(program).args(args.iter().copied())),
        }
    }

    /// With a recording runner: the build goes first and shows its log; every other step is
    /// a change (never cut off by Ctrl-C); a container whose step fails stops there while the
    /// others finish; the command fails with the failed step's kind.
    #[test]
    fn builds_show_their_log_changes_are_never_cut_off_and_a_failure_stops_its_container_only() {
        let plan = Plan {
            steps: vec![
                step_of(
                    None,
                    What::Build,
                    "nix-store",
                    &["--realise", "/nix/store/x.drv"],
                ),
                step_of(Some("a"), What::Create, "incus", &["create", "a"]),
                start_of("a"),
                step_of(Some("b"), What::Create, "incus", &["refuse", "b"]),
                start_of("b"),
            ],
            ..Plan::default()
        };
        let recorder = Recorder::default().fail("incus", "refuse", 1);
        let err = execute(&recorder, &plan).unwrap_err();
        assert_eq!(err.kind, Kind::Failed, "{err}");
        assert!(err.message.starts_with("b failed"), "{err}");
        let mut lines = recorder.lines();
        assert_eq!(
            lines[0],
            "show_stderr: nix-store --realise /nix/store/x.drv"
        );
        lines[1..].sort();
        assert_eq!(
            lines[1..],
            [
                "change: incus create a",
                "change: incus refuse b",
                "change: incus start a",
            ],
            "b's start never ran"
        );
    }

    /// The starts of the containers whose other steps all succeeded run as one call, in the
    /// plan's order; a container without a start, or whose create failed, is not in it.
    #[test]
    fn the_starts_of_several_containers_run_as_one_call() {
        let plan = Plan {
            steps: vec![
                step_of(Some("a"), What::Create, "incus", &["create", "a"]),
                start_of("a"),
                step_of(Some("b"), What::Create, "incus", &["refuse", "b"]),
                start_of("b"),
                step_of(Some("c"), What::Create, "incus", &["create", "c"]),
                start_of("c"),
                step_of(Some("d"), What::Config, "incus", &["config", "d"]),
            ],
            ..Plan::default()
        };
        let recorder = Recorder::default().fail("incus", "refuse", 1);
        let err = execute(&recorder, &plan).unwrap_err();
        assert!(err.message.starts_with("b failed"), "{err}");
        let lines = recorder.lines();
        assert_eq!(
            lines.last().unwrap(),
            "change: incus start a c",
            "{lines:#?}"
        );
        assert_eq!(lines.iter().filter(|l| l.contains(" start ")).count(), 1);
    }

    /// Many starts run as calls of at most `START_BATCH` containers, one after another.
    #[test]
    fn starts_of_many_containers_run_in_calls_of_at_most_a_batch() {
        let names: Vec<String> = (0..2 * START_BATCH + 1).map(|i| format!("c{i}")).collect();
        let plan = Plan {
            steps: names.iter().map(|n| start_of(n)).collect(),
            ..Plan::default()
        };
        let recorder = Recorder::default();
        execute(&recorder, &plan).unwrap();
        let sizes: Vec<usize> = recorder
            .lines()
            .iter()
            .map(|l| {
                l.strip_prefix("change: incus start ")
                    .expect(l)
                    .split(' ')
                    .count()
            })
            .collect();
        assert_eq!(sizes, [START_BATCH, START_BATCH, 1]);
    }

    /// A start Incus refuses for one container (it names it) fails that container only.
    #[test]
    fn a_start_that_fails_is_its_containers_alone() {
        let plan = Plan {
            steps: vec![start_of("a"), start_of("b")],
            ..Plan::default()
        };
        let recorder = Recorder::default().fail_with(
            "incus",
            "start",
            1,
            "b: error: Failed to start device \"inx-store\"\n\nError: Some instances failed to start\n",
        );
        let err = execute(&recorder, &plan).unwrap_err();
        assert_eq!(err.message, "b failed (see above)");
        assert_eq!(recorder.lines(), ["change: incus start a b"]);
    }

    fn halt_plan(container: &str, shutdown: crate::plan::Shutdown) -> Plan {
        let name = ContainerName::parse(container).unwrap();
        Plan {
            steps: vec![Step {
                container: Some(name.clone()),
                host: None,
                what: What::Stop,
                description: "stop".into(),
                action: shutdown.stop(&incus::Client::default(), &name),
            }],
            ..Plan::default()
        }
    }

    /// A stop that ends cleanly is all that runs; one that Incus gave up on is followed by
    /// a kill, and the command succeeds; a kill that fails too fails the container; --force
    /// runs the kill alone. Every call is one whose wait Ctrl-C may end, but for the kill.
    #[test]
    fn a_stop_is_clean_or_else_a_kill_and_force_only_kills() {
        let quick = crate::plan::Shutdown {
            timeout: 3,
            force: false,
        };
        let clean = Recorder::default();
        execute(&clean, &halt_plan("web", quick)).unwrap();
        assert_eq!(
            clean.lines(),
            ["change_or_abandon: incus stop web --timeout 3"]
        );

        let hung = Recorder::default().fail_on_arg("incus", "--timeout", 1);
        execute(&hung, &halt_plan("web", quick)).unwrap();
        assert_eq!(
            hung.lines(),
            [
                "change_or_abandon: incus stop web --timeout 3",
                "change: incus stop web --force",
            ]
        );

        let stuck = Recorder::default().fail("incus", "stop", 1);
        let err = execute(&stuck, &halt_plan("web", quick)).unwrap_err();
        assert_eq!(err.message, "web failed (see above)");
        assert_eq!(stuck.lines().len(), 2, "the kill was tried");

        let force = Recorder::default();
        let forced = crate::plan::Shutdown {
            timeout: 3,
            force: true,
        };
        execute(&force, &halt_plan("web", forced)).unwrap();
        assert_eq!(force.lines(), ["change: incus stop web --force"]);
    }

    /// A failed step for no container (the build) stops everything before any container.
    #[test]
    fn a_failed_build_stops_all() {
        let tmp = tempfile::tempdir().unwrap();
        let mut build = sh("a", "exit 5");
        build.container = None;
        let plan = Plan {
            steps: vec![
                build,
                sh("a", &format!("touch {}/ran", tmp.path().display())),
            ],
            ..Plan::default()
        };
        assert!(execute(&Runner::default(), &plan).is_err());
        assert!(!tmp.path().join("ran").exists());
    }
}
