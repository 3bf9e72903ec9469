//! The `scale` scenario: how inx grows with the number of containers on one host. At each
//! size (100, 250 and 500 in the full bench) it brings up that many new containers three ways
//! from the same starting state: inx, the raw commands one by one, and the best raw pipeline a
//! careful user would type (`nix build`, then profiles and creates four at a time, then
//! `incus start` of all, 100 to a call). At the largest size it then times, with all
//! containers running: a nothing-changed `up`, `list`, an in-place update of all, `roots
//! sync`, the host's GC with `roots watch` running (and how fast and how idle the watcher is),
//! and `destroy` of all.
//!
//! Beside the times it records what the issue asks of a large host: inx's own peak memory
//! (its VmHWM, sampled every 10 ms while it runs), the host memory each running container
//! adds, and the `nix` and `incus` processes each side starts (inx's from its `-v` trace, the
//! raw sides' from what they ran).

use super::bed::{build_outputs, checked, names, run_step, timed, Bed, Step, NIX_FEATURES};
use super::builds;
use super::harness::ROOTS;
use super::report::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many containers' chains the raw pipeline runs at once (the `parallel` scenario's
/// best on two cores).
const PIPELINE_JOBS: usize = 4;

/// The most containers the pipeline gives one `incus start`, as inx does: one call for all 500
/// failed to start some here (the client starts all it is given at once).
const START_BATCH: usize = 100;

pub struct Tables {
    pub up: Table,
    pub costs: Table,
    pub large: Table,
}

/// One timed run of inx: its time, peak memory and the commands it traced.
struct Measured {
    time: Duration,
    peak_kib: u64,
    traced: Vec<String>,
}

/// The sizes: `INX_BENCH_SCALE` (comma-separated) or 100, 250, 500 (1 and 2 in the smoke run).
pub fn sizes(full: bool) -> Vec<usize> {
    if let Ok(list) = std::env::var("INX_BENCH_SCALE") {
        let sizes: Vec<usize> = list
            .split(',')
            .map(|s| {
                s.trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("INX_BENCH_SCALE: {s:?} is not a number"))
            })
            .collect();
        assert!(
            sizes.iter().all(|n| *n > 0),
            "INX_BENCH_SCALE: sizes start at 1"
        );
        return sizes;
    }
    if full {
        vec![100, 250, 500]
    } else {
        vec![1, 2]
    }
}

pub fn run(bed: &Bed, sizes: &[usize], full: bool) -> Tables {
    let mut t = Tables {
        up: Table::new(
            "**Scale: `inx up` of N new containers** (one run per size; raw: the commands one by one; pipeline: `nix build`, then `nix-env --set` and `incus create` four containers at a time, then `incus start` of all, 100 to a call)",
            &[
                "containers",
                "inx",
                "per container",
                "raw one by one",
                "pipeline",
                "inx/raw",
                "inx/pipeline",
                "targets ≤ 0.50x raw, ≤ 1.10x pipeline",
            ],
        ),
        costs: Table::new(
            "**Scale: what each size costs** (processes: inx's from its `-v` trace, the raw sides' from what they ran)",
            &[
                "containers",
                "inx peak memory",
                "host memory per running container",
                "`nix`/`incus` processes: inx",
                "raw one by one",
                "pipeline",
            ],
        ),
        large: Table::new(
            "**Scale: everything else, at the largest size**",
            &["measurement", "inx", "raw", "inx/raw", "target"],
        ),
    };
    let mut per_container: Vec<(usize, Duration)> = Vec::new();
    for &n in sizes {
        let names = names(n);
        eprintln!("bench: scale, {n} new containers");
        bed.declare(&names, "v1");
        let systems = bed.build(&names);
        clear(&names);
        let plan = bed.plan(&names);

        eprintln!("bench: scale {n}: the raw commands one by one");
        let (raw, raw_calls) = raw_one_by_one(bed, &names, &plan, &systems);
        let state = super::declared_state(&names);
        clear(&names);

        eprintln!("bench: scale {n}: the raw pipeline");
        let (pipe, pipe_calls) = raw_pipeline(bed, &names, &plan, &systems);
        assert_eq!(
            super::declared_state(&names),
            state,
            "the pipeline must reach the same instances as the raw commands"
        );
        clear(&names);

        eprintln!("bench: scale {n}: inx up");
        let before = mem_available_kib();
        let inx = measured(bed, &["-v", "up"]);
        assert_eq!(
            super::declared_state(&names),
            state,
            "inx up must reach the same instances as the raw commands"
        );
        super::wait_running(&names, &systems);
        // Let the containers' inits settle before reading what they hold.
        std::thread::sleep(Duration::from_secs(2));
        let per_host = before.saturating_sub(mem_available_kib()) / n as u64;
        let per_cgroup = mean_usage_kib(&names);

        let each = inx.time / n as u32;
        per_container.push((n, each));
        let (to_raw, to_pipe) = (ratio_of(inx.time, raw), ratio_of(inx.time, pipe));
        t.up.row(vec![
            n.to_string(),
            secs(inx.time),
            ms(each),
            secs(raw),
            secs(pipe),
            ratio(inx.time, raw),
            ratio(inx.time, pipe),
            format!("{} / {}", verdict(to_raw <= 0.50), verdict(to_pipe <= 1.10)),
        ]);
        t.costs.row(vec![
            n.to_string(),
            mib(inx.peak_kib * 1024),
            format!(
                "{} (MemAvailable); {} (mean of the containers' cgroups)",
                mib(per_host * 1024),
                mib(per_cgroup * 1024)
            ),
            show(&count(&inx.traced)),
            show(&raw_calls),
            show(&pipe_calls),
        ]);
        if !full {
            // What does not depend on timing: one evaluation, one start for all.
            let calls = count(&inx.traced);
            assert_eq!(calls.get("nix"), Some(&1), "one evaluation: {calls:?}");
            let starts = inx
                .traced
                .iter()
                .filter(|c| c.starts_with("incus ") && c.split_whitespace().any(|w| w == "start"))
                .count();
            assert_eq!(starts, 1, "one incus start for all: {:#?}", inx.traced);
        }
        if n != *sizes.last().unwrap() {
            clear(&names);
        }
    }
    if let (Some((first_n, first)), Some((last_n, last))) =
        (per_container.first(), per_container.last())
    {
        if first_n != last_n {
            let growth = ratio_of(*last, *first);
            t.large.row(vec![
                format!("time per container at {last_n} against {first_n}"),
                ms(*last),
                ms(*first),
                format!("{growth:.2}x"),
                format!("≤ 1.15x: {}", verdict(growth <= 1.15)),
            ]);
        }
    }

    let n = *sizes.last().expect("a size");
    let names = names(n);
    unchanged(bed, &names, full, &mut t.large);
    list(bed, &names, full, &mut t.large);
    // All switched in place (v1 to v2 by inx, back by hand), as the `update` scenario.
    super::update(bed, 1, &names, &mut t.large);
    roots_sync(bed, &names, &mut t.large);
    gc_with_watch(bed, &names, full, &mut t.large);
    destroy(bed, &names, &mut t.large);
    t
}

/// Deletes these instances and their profiles, four calls at once (untimed: at 500 one call
/// for all takes minutes).
fn clear(names: &[String]) {
    let chunks: Vec<Vec<String>> = names
        .chunks(names.len().div_ceil(PIPELINE_JOBS).max(1))
        .map(<[String]>::to_vec)
        .collect();
    std::thread::scope(|s| {
        for chunk in &chunks {
            s.spawn(move || super::bed::clear(chunk));
        }
    });
}

/// `nix build` of the systems (it evaluates; they are built), then per container what inx's
/// plan runs, one after another.
fn raw_one_by_one(
    bed: &Bed,
    names: &[String],
    plan: &[Step],
    systems: &[String],
) -> (Duration, BTreeMap<String, usize>) {
    let mut calls = BTreeMap::new();
    let time = timed(|| {
        raw_build(bed, names, systems);
        for step in per_container(plan) {
            run_step(step);
        }
    });
    *calls.entry("nix".to_string()).or_default() += 1;
    for program in per_container(plan).filter_map(program) {
        *calls.entry(program).or_default() += 1;
    }
    (time, calls)
}

/// The best a careful user types: `nix build`, then each container's profile and create with
/// four containers at a time, then `incus start` of all, 100 to a call.
fn raw_pipeline(
    bed: &Bed,
    names: &[String],
    plan: &[Step],
    systems: &[String],
) -> (Duration, BTreeMap<String, usize>) {
    let chains: Vec<Vec<Step>> = names
        .iter()
        .map(|n| {
            per_container(plan)
                .filter(|st| st.container.as_deref() == Some(n.as_str()) && st.what != "start")
                .cloned()
                .collect()
        })
        .collect();
    let time = timed(|| {
        raw_build(bed, names, systems);
        super::workers(&chains, PIPELINE_JOBS);
        for batch in names.chunks(START_BATCH) {
            checked(Command::new("incus").arg("start").args(batch));
        }
    });
    let mut calls = BTreeMap::new();
    *calls.entry("nix".to_string()).or_default() += 1;
    for program in chains.iter().flatten().filter_map(program) {
        *calls.entry(program).or_default() += 1;
    }
    *calls.entry("incus".to_string()).or_default() += names.len().div_ceil(START_BATCH);
    (time, calls)
}

fn raw_build(bed: &Bed, names: &[String], systems: &[String]) {
    let out = checked(
        Command::new("nix")
            .args(NIX_FEATURES)
            .args(["build", "--no-link", "--json"])
            .args(bed.toplevels(names)),
    );
    assert!(
        super::same_systems(&build_outputs(&out.stdout), systems),
        "nix build gave other systems than before"
    );
}

/// The plan's steps a user types per container: inx's record and its rooting of the build
/// are its own (see `raw_up`).
fn per_container(plan: &[Step]) -> impl Iterator<Item = &Step> {
    plan.iter().filter(|st| match st.what.as_str() {
        "profile" | "create" | "start" => true,
        "config" | "build" => false,
        other => panic!("a raw up does not expect a {other} step"),
    })
}

/// The program a step runs; none for a folder the plan makes (no process).
fn program(step: &Step) -> Option<String> {
    match &step.action {
        super::bed::Action::Run { program, .. } => {
            Some(program.rsplit('/').next().unwrap_or(program).to_string())
        }
        super::bed::Action::CreateDir(_) => None,
    }
}

/// Runs inx with these arguments, sampling its peak resident memory until it exits.
fn measured(bed: &Bed, args: &[&str]) -> Measured {
    let mut cmd = bed.inx_command(args);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().expect("run inx");
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).ok();
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).ok();
        s
    });
    let mut peak = 0;
    let status = loop {
        // VmHWM is the high-water mark: the last reading before the exit is the peak so far.
        if let Some(hwm) = vm_hwm_kib(pid) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let time = start.elapsed();
    let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
    assert!(
        status.success(),
        "inx {} failed ({status}):\n{stdout}\n{stderr}",
        args.join(" ")
    );
    Measured {
        time,
        peak_kib: peak,
        traced: stderr
            .lines()
            .filter_map(|l| l.strip_prefix("+ "))
            .map(String::from)
            .collect(),
    }
}

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn mem_available_kib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .expect("MemAvailable in /proc/meminfo")
}

/// The mean memory Incus reports for these containers (their cgroups' usage).
fn mean_usage_kib(names: &[String]) -> u64 {
    let out = checked(Command::new("incus").args(["list", "--format", "json"]));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let usages: Vec<u64> = list
        .iter()
        .filter(|i| names.iter().any(|n| i["name"] == *n))
        .filter_map(|i| i["state"]["memory"]["usage"].as_u64())
        .collect();
    assert!(!usages.is_empty(), "Incus reports no memory use");
    usages.iter().sum::<u64>() / usages.len() as u64 / 1024
}

/// `nix` and `incus` processes (with `nix-env` and `nix-store` counted as themselves) by
/// program, from traced command lines.
fn count(traced: &[String]) -> BTreeMap<String, usize> {
    let mut by = BTreeMap::new();
    for line in traced {
        let program = line.split_whitespace().next().unwrap_or_default();
        let program = program.rsplit('/').next().unwrap_or(program);
        *by.entry(program.to_string()).or_default() += 1;
    }
    by
}

fn show(by: &BTreeMap<String, usize>) -> String {
    by.iter()
        .map(|(p, n)| format!("{n} `{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A nothing-changed `up` against `nix build` + `incus list`.
fn unchanged(bed: &Bed, names: &[String], full: bool, t: &mut Table) {
    let n = names.len();
    eprintln!("bench: scale {n}: nothing-changed up");
    let inx = measured(bed, &["-v", "up"]);
    let raw = timed(|| bed.evaluate_and_list(names));
    let calls = count(&inx.traced);
    if !full {
        assert_eq!(calls.get("nix"), Some(&1), "{calls:?}");
        assert_eq!(calls.values().sum::<usize>(), 4, "{calls:?}");
    }
    t.row(vec![
        format!("`up`, nothing changed, {n} containers"),
        secs(inx.time),
        format!("{} (`nix build` + `incus list`)", secs(raw)),
        ratio(inx.time, raw),
        format!(
            "≤ 1.0x: {}; peak memory {}; {}",
            verdict(ratio_of(inx.time, raw) <= 1.0),
            mib(inx.peak_kib * 1024),
            show(&calls)
        ),
    ]);
}

fn list(bed: &Bed, names: &[String], full: bool, t: &mut Table) {
    let n = names.len();
    eprintln!("bench: scale {n}: list");
    let inx = measured(bed, &["-v", "list"]);
    let raw = timed(|| {
        checked(Command::new("incus").args(["list", "--format", "json"]));
    });
    let calls = count(&inx.traced);
    if !full {
        assert!(calls.values().sum::<usize>() <= 3, "{calls:?}");
    }
    t.row(vec![
        format!("`list`, {n} containers"),
        secs(inx.time),
        format!("{} (`incus list --format json`)", secs(raw)),
        ratio(inx.time, raw),
        format!(
            "≤ 1.2x: {}; peak memory {}: {}; {}",
            verdict(ratio_of(inx.time, raw) <= 1.2),
            mib(inx.peak_kib * 1024),
            verdict(inx.peak_kib < 100 * 1024),
            show(&calls)
        ),
    ]);
}

/// `inx roots sync` of every container, against the one listing it cannot do without.
fn roots_sync(bed: &Bed, names: &[String], t: &mut Table) {
    let n = names.len();
    eprintln!("bench: scale {n}: roots sync");
    let inx = measured(bed, &["-v", "roots", "sync"]);
    let raw = timed(|| {
        checked(Command::new("incus").args(["list", "--format", "json"]));
    });
    t.row(vec![
        format!("`roots sync`, {n} containers"),
        secs(inx.time),
        format!("{} (`incus list --format json` alone)", secs(raw)),
        ratio(inx.time, raw),
        format!(
            "peak memory {}; {}",
            mib(inx.peak_kib * 1024),
            show(&count(&inx.traced))
        ),
    ]);
}

/// The host's collector (`nix-store --gc --print-dead`: the root query and the marking, no
/// deletion) with `inx roots watch` running, against the same without it; the watcher's CPU
/// while nothing happens; and how soon a build in the first and the last container is rooted.
fn gc_with_watch(bed: &Bed, names: &[String], full: bool, t: &mut Table) {
    let n = names.len();
    eprintln!("bench: scale {n}: host GC with roots watch");
    let gc = || {
        timed(|| {
            checked(Command::new("nix-store").args(["--gc", "--print-dead"]));
        })
    };
    let alone = gc();
    let mut watch = bed
        .inx_command(&["roots", "watch", "--interval", "3600"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start inx roots watch");
    let ready = wait_watching(&mut watch);
    let pid = watch.id();
    let with = gc();
    // Idle: no event for 10 s (2 in the smoke run); the watcher's CPU time over that stretch.
    let idle = Duration::from_secs(if full { 10 } else { 2 });
    let cpu_before = cpu_ticks(pid);
    std::thread::sleep(idle);
    let idle_ticks = cpu_ticks(pid) - cpu_before;
    let nonce = std::process::id();
    let rooted_in: Vec<(String, Duration)> = [names.first(), names.last()]
        .into_iter()
        .flatten()
        .map(|c| {
            let tag = format!("scale{nonce}{c}");
            let path = builds::build_in(c, &format!("/root/{tag}"), &tag);
            let deadline = Instant::now() + Duration::from_secs(30);
            let root = loop {
                if let Some(root) = root_of(c, &path) {
                    break root;
                }
                assert!(
                    Instant::now() < deadline,
                    "the watcher did not root {c}'s build within 30 s"
                );
                std::thread::sleep(Duration::from_millis(20));
            };
            // From the build's link in the container to inx's root on the host: both links'
            // own times (the kernel's clock for both), so the build's length does not count.
            let pid = super::pids(std::slice::from_ref(c))[0];
            let made = link_time(&Path::new(&format!("/proc/{pid}/root/root")).join(&tag));
            (
                c.clone(),
                link_time(&root).duration_since(made).unwrap_or_default(),
            )
        })
        .collect();
    let hwm = vm_hwm_kib(pid).unwrap_or(0);
    let _ = watch.kill();
    let _ = watch.wait();
    let worst = rooted_in.iter().map(|(_, d)| *d).max().unwrap_or_default();
    t.row(vec![
        format!("host GC root query and marking (`nix-store --gc --print-dead`), {n} containers, `roots watch` running"),
        secs(with),
        format!("{} (the same without the watcher)", secs(alone)),
        ratio(with, alone),
        format!(
            "watcher ready in {}; idle {} s: {} ms CPU; peak memory {}; a new build rooted {} after its link was made (≤ 2 s: {})",
            secs(ready),
            idle.as_secs(),
            idle_ticks * 1000 / clock_ticks(),
            mib(hwm * 1024),
            rooted_in
                .iter()
                .map(|(c, d)| format!("{}: {}", c, ms(*d)))
                .collect::<Vec<_>>()
                .join(", "),
            verdict(worst <= Duration::from_secs(2))
        ),
    ]);
}

/// Waits for the watcher's "watching" line (its first full sync is done); the time it took.
fn wait_watching(watch: &mut std::process::Child) -> Duration {
    use std::io::BufRead;
    let start = Instant::now();
    let stderr = watch.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("roots: watching") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(Duration::from_secs(300))
        .expect("inx roots watch did not start watching within 300 s");
    start.elapsed()
}

/// inx's root link for this container's build, once there is one.
fn root_of(container: &str, path: &str) -> Option<std::path::PathBuf> {
    std::fs::read_dir(Path::new(ROOTS).join(container))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|l| std::fs::read_link(l).is_ok_and(|p| p == Path::new(path)))
}

/// When a link was made (its own mtime, not its target's).
fn link_time(link: &Path) -> std::time::SystemTime {
    std::fs::symlink_metadata(link)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", link.display()))
}

/// utime + stime of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the watcher runs");
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn clock_ticks() -> u64 {
    let out = checked(Command::new("getconf").arg("CLK_TCK"));
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}

/// `inx destroy --force` of all against the raw one call, `incus delete --force` of all (and
/// removing their profiles).
fn destroy(bed: &Bed, names: &[String], t: &mut Table) {
    let n = names.len();
    eprintln!("bench: scale {n}: destroy");
    let mut args = vec!["-v", "destroy", "--force"];
    args.extend(names.iter().map(String::as_str));
    let inx = measured(bed, &args);
    assert!(
        super::bed::existing().iter().all(|e| !names.contains(e)),
        "inx destroy left instances"
    );
    // The raw side needs them back (untimed), then deletes them in one call.
    bed.inx(&["up"]).ok();
    let raw = timed(|| {
        checked(
            Command::new("incus")
                .args(["delete", "--force"])
                .args(names),
        );
        for n in names {
            let _ = std::fs::remove_dir_all(Path::new(super::bed::PROFILES).join(n));
        }
    });
    t.row(vec![
        format!("`destroy --force` of {n} running containers"),
        secs(inx.time),
        format!("{} (one `incus delete --force` of all)", secs(raw)),
        ratio(inx.time, raw),
        format!(
            "inx stops each cleanly first; peak memory {}; {}",
            mib(inx.peak_kib * 1024),
            show(&count(&inx.traced))
        ),
    ]);
}
