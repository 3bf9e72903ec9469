//! `cargo bench --bench scale`: inx against the raw `nix` and `incus` commands that do the same
//! work, on the end-to-end bed (real Nix, real Incus, synthetic systems), and how it scales.
//!
//! Each time is the median of several runs; inx and the raw commands alternate within a run,
//! each from the same starting state. The raw side is what a user types by hand to reach the
//! same state from the same flake: one `nix build` of the systems (it evaluates the flake; the
//! systems are built beforehand, so neither side builds), then per container the commands of
//! inx's own plan (`nix-env --set`, `incus create --empty` with the same config on stdin,
//! `incus start`), run directly.
//!
//! It also compares inx with what users would do instead without it: the same system as an
//! Incus image, imported and launched, at closure sizes of real systems (scale/peer.rs).
//!
//! Without `--bench` (as `cargo test --all-targets` runs it) it is a smoke test: every scenario
//! once with one or two containers (the image comparison with a few MiB), asserting what does
//! not depend on timing (process counts, disk per container, that the raw side reached the
//! same state as inx, that the image's containers run the same system without the shared
//! store).
//!
//! `INX_BENCH_ONLY` runs only some scenarios: a comma-separated list of `new` (`up` of new
//! containers), `unchanged`, `list`, `update`, `disk`, `parallel`, `image` (the comparison
//! with images) and `hosts` (three other hosts at once, on the multi-host bed; scale/hosts.rs).
//! Unset, it runs them all. `INX_BENCH_RUNS` sets the runs per figure.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

#[path = "../tests/e2e/harness.rs"]
#[allow(dead_code)]
mod harness;

#[path = "scale/bed.rs"]
mod bed;
#[path = "../tests/e2e/builds.rs"]
#[allow(dead_code)]
mod builds;
#[path = "scale/hosts.rs"]
mod hosts;
#[path = "scale/many.rs"]
mod many;
#[path = "scale/peer.rs"]
mod peer;
#[path = "scale/report.rs"]
mod report;

use bed::{build_outputs, checked, names, run_step, timed, Action, Bed, Step, NIX_FEATURES};
use report::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

struct Settings {
    /// Full benchmark (`cargo bench`) or a quick smoke run (`cargo test`).
    full: bool,
    runs: usize,
    /// Runs for the 100-container scenarios, which take minutes each.
    runs_large: usize,
    small: usize,
    medium: usize,
    large: Option<usize>,
    /// MiB of inert files in the system compared with its image, one comparison each.
    image_sizes: Vec<u64>,
}

/// The scenarios `INX_BENCH_ONLY` can name.
const SCENARIOS: [&str; 9] = [
    "new",
    "unchanged",
    "list",
    "update",
    "disk",
    "parallel",
    "image",
    "hosts",
    "scale",
];

/// The scenarios to run: `INX_BENCH_ONLY`'s, or all. An unknown name stops the bench.
fn chosen() -> Vec<&'static str> {
    let Ok(only) = std::env::var("INX_BENCH_ONLY") else {
        return SCENARIOS.to_vec();
    };
    let picked: Vec<&'static str> = only
        .split(',')
        .map(str::trim)
        .filter(|w| !w.is_empty())
        .map(|w| {
            SCENARIOS
                .iter()
                .copied()
                .find(|s| *s == w)
                .unwrap_or_else(|| {
                    panic!(
                        "INX_BENCH_ONLY: no scenario {w:?}; the scenarios are {}",
                        SCENARIOS.join(", ")
                    )
                })
        })
        .collect();
    assert!(
        !picked.is_empty(),
        "INX_BENCH_ONLY is set but names no scenario; the scenarios are {}",
        SCENARIOS.join(", ")
    );
    picked
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let only = chosen();
    let want = |scenario: &str| only.contains(&scenario);
    let Some(_host) = harness::host("bench scale") else {
        return;
    };
    let runs = std::env::var("INX_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(5);
    let s = if full {
        Settings {
            full,
            runs,
            runs_large: runs.div_ceil(2),
            small: 1,
            medium: 20,
            large: Some(100),
            image_sizes: vec![200, 1024],
        }
    } else {
        Settings {
            full,
            runs: 1,
            runs_large: 1,
            small: 1,
            medium: 2,
            large: None,
            image_sizes: vec![4],
        }
    };
    let load_before = load();
    let scale_sizes = many::sizes(full);
    let most = scale_sizes
        .iter()
        .copied()
        .filter(|_| want("scale"))
        .chain([s.large.unwrap_or(s.medium)])
        .max()
        .unwrap_or(s.medium);
    let bed = Bed::new(most);
    let mut out = String::new();

    let mut up = Table::new(
        "**`inx up` of new containers** (raw: `nix build` of the systems, then per container `nix-env --set`, `incus create --empty`, `incus start`)",
        &["containers", "inx", "raw", "inx/raw", "per container (inx)", "target ≤ 1.10x"],
    );
    let mut steps = Table::new(
        "**Where the time goes** (medians of the raw side's steps; inx runs the same commands plus one `incus list`)",
        &["containers", "nix build (evaluation)", "profiles", "create", "start", "`incus list`"],
    );
    let mut checks = Table::new(
        "**Other measurements**",
        &["measurement", "inx", "raw", "inx/raw", "target"],
    );

    if want("new") {
        up_new(&bed, &s, s.small, s.runs, &mut up, &mut steps);
    }
    let medium = names(s.medium);
    if want("new") {
        up_new(&bed, &s, s.medium, s.runs, &mut up, &mut steps);
    } else if ["unchanged", "list", "update", "disk", "parallel"]
        .iter()
        .any(|w| want(w))
    {
        start(&bed, &medium);
    }
    if want("unchanged") {
        unchanged(&bed, &s, &medium, &mut checks);
    }
    if want("list") {
        list(&bed, &s, &medium, s.runs, &mut checks);
    }
    if want("update") {
        update(&bed, s.runs, &medium, &mut checks);
    }
    let disk_table = want("disk").then(|| disk(&bed, &s, &medium));
    let parallel_table = want("parallel").then(|| parallel(&bed, &s, &medium));
    bed.clear(&medium);
    if let Some(large) = s.large {
        let all = names(large);
        if want("new") {
            up_new(&bed, &s, large, s.runs_large, &mut up, &mut steps);
        } else if want("list") {
            start(&bed, &all);
        }
        if want("list") {
            list(&bed, &s, &all, s.runs_large, &mut checks);
        }
        bed.clear(&all);
    }
    let mut images = peer::Tables::new();
    if want("image") {
        let missing = peer::missing_tools();
        if missing.is_empty() {
            for size in &s.image_sizes {
                peer::compare(&bed, &s, *size, &mut images);
            }
        } else {
            harness::skip(
                "bench scale: inx against an image",
                &format!(
                    "the image fixtures need {} (squashfs-tools, tar, xz-utils, openssl)",
                    missing.join(", ")
                ),
            );
        }
    }

    let hosts_table = if want("hosts") {
        match hosts::bed_root() {
            Some(root) => Some(hosts::compare(
                &bed,
                if s.full { 10 } else { 1 },
                s.runs,
                root,
            )),
            None => {
                harness::skip(
                    "bench scale: several hosts",
                    "the multi-host bed is not up (`scripts/hosts.sh up` as root; scripts/test.sh and scripts/bench.sh bring it up)",
                );
                None
            }
        }
    } else {
        None
    };

    let scale = want("scale").then(|| many::run(&bed, &scale_sizes, s.full));

    let scenarios = if only.len() == SCENARIOS.len() {
        String::new()
    } else {
        format!("; scenarios: {}", only.join(", "))
    };
    // The scale scenario runs once per size whatever INX_BENCH_RUNS says.
    let runs = match (only.as_slice(), want("scale")) {
        (["scale"], _) => "one run per size".to_string(),
        (_, true) => format!(
            "{} runs, {} for the largest size; scale: one run per size",
            s.runs, s.runs_large
        ),
        _ => format!("{} runs, {} for the largest size", s.runs, s.runs_large),
    };
    out.push_str(&format!(
        "{} on {} (load average {} before, {} after; {runs}{scenarios})\n\n",
        today(),
        machine(),
        load_before,
        load(),
    ));
    let tables = [
        Some(&up),
        Some(&steps),
        Some(&checks),
        disk_table.as_ref(),
        parallel_table.as_ref(),
        Some(&images.time),
        Some(&images.disk),
        hosts_table.as_ref(),
        scale.as_ref().map(|t| &t.up),
        scale.as_ref().map(|t| &t.costs),
        scale.as_ref().map(|t| &t.large),
    ];
    for t in tables.into_iter().flatten().filter(|t| !t.is_empty()) {
        out.push_str(&t.render());
        out.push('\n');
    }
    // The bench is not inx: its one write of the tables may use print! (clippy.toml forbids it
    // for inx's own code, which prints through src/output.rs).
    #[allow(clippy::disallowed_macros)]
    {
        print!("{out}");
    }
    if !s.full {
        eprintln!("bench scale: smoke run passed (run `cargo bench --bench scale` for figures)");
    }
}

/// Brings these containers up with inx, untimed, for scenarios that need them running when
/// `new` (which leaves them so) does not run.
fn start(bed: &Bed, names: &[String]) {
    eprintln!("bench: starting {} containers (untimed)", names.len());
    bed.declare(names, "v1");
    bed.inx(&["up"]).ok();
}

#[derive(Clone, Copy, PartialEq)]
enum Side {
    Inx,
    Raw,
}

/// Inx first in even runs, the raw commands first in odd ones, so drift hits both alike.
fn sides(run: usize) -> [Side; 2] {
    if run.is_multiple_of(2) {
        [Side::Inx, Side::Raw]
    } else {
        [Side::Raw, Side::Inx]
    }
}

/// `inx up` of `n` new containers against the raw commands; leaves them running.
fn up_new(
    bed: &Bed,
    s: &Settings,
    n: usize,
    runs: usize,
    up: &mut Table,
    steps: &mut Table,
) -> Vec<String> {
    let names = names(n);
    eprintln!("bench: up of {n} new containers ({runs} runs)");
    bed.declare(&names, "v1");
    let systems = bed.build(&names);
    bed.clear(&names);
    let plan = bed.plan(&names);
    let mut inx = Vec::new();
    let mut raw = Vec::new();
    let mut parts: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    let mut states: Vec<BTreeMap<String, Value>> = Vec::new();
    for run in 0..runs {
        for side in sides(run) {
            bed.clear(&names);
            match side {
                Side::Inx => inx.push(timed(|| {
                    bed.inx(&["up"]).ok();
                })),
                Side::Raw => {
                    let (total, by_step) = raw_up(bed, &names, &plan, &systems);
                    raw.push(total);
                    for (k, d) in by_step {
                        parts.entry(k).or_default().push(d);
                    }
                }
            }
            if run == 0 {
                states.push(declared_state(&names));
            }
        }
    }
    assert_eq!(
        states[0], states[1],
        "the raw commands must reach the same instances as inx up"
    );
    let list = median(
        (0..runs)
            .map(|_| {
                timed(|| {
                    drop(checked(
                        Command::new("incus").args(["list", "--format", "json"]),
                    ))
                })
            })
            .collect(),
    );
    let (i, r) = (median(inx), median(raw));
    up.row(vec![
        n.to_string(),
        secs(i),
        secs(r),
        ratio(i, r),
        ms(i / n as u32),
        if n <= s.medium {
            verdict(ratio_of(i, r) <= 1.10).to_string()
        } else {
            "-".into()
        },
    ]);
    let part = |k: &str| {
        parts
            .get(k)
            .map(|v| ms(median(v.clone())))
            .unwrap_or("-".into())
    };
    steps.row(vec![
        n.to_string(),
        part("eval"),
        part("profile"),
        part("create"),
        part("start"),
        ms(list),
    ]);
    names
}

/// The raw side of `up`: one `nix build` (evaluation; the systems exist), then the plan's
/// per-container commands one by one. Returns the total and the time per kind of step.
fn raw_up(
    bed: &Bed,
    names: &[String],
    plan: &[Step],
    systems: &[String],
) -> (Duration, Vec<(&'static str, Duration)>) {
    let mut by: BTreeMap<&'static str, Duration> = BTreeMap::new();
    let mut built = Vec::new();
    let eval = timed(|| {
        let out = checked(
            Command::new("nix")
                .args(NIX_FEATURES)
                .args(["build", "--no-link", "--json"])
                .args(bed.toplevels(names)),
        );
        built = build_outputs(&out.stdout);
    });
    assert!(
        same_systems(&built, systems),
        "nix build gave other systems than before"
    );
    *by.entry("eval").or_default() += eval;
    for step in plan {
        let kind = match step.what.as_str() {
            "profile" => "profile",
            "create" => "create",
            "start" => "start",
            "switch" => "switch",
            // inx's own record of what it deployed: not something a user types.
            "config" => continue,
            // inx roots the built systems until their profiles hold them (`nix-store
            // --add-root`); the raw side's `nix build` built them and a user would not.
            "build" => continue,
            other => panic!("a raw up does not expect a {other} step"),
        };
        *by.entry(kind).or_default() += timed(|| run_step(step));
    }
    let total = by.values().sum();
    (total, by.into_iter().collect())
}

/// Config, devices, profiles and status of these instances, without Incus's volatile keys.
fn declared_state(names: &[String]) -> BTreeMap<String, Value> {
    let out = checked(Command::new("incus").args(["list", "--format", "json"]));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    list.into_iter()
        .filter(|i| names.iter().any(|n| i["name"] == *n))
        .map(|i| {
            let config: BTreeMap<String, Value> = i["config"]
                .as_object()
                .unwrap()
                .iter()
                .filter(|(k, _)| !k.starts_with("volatile."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let state = serde_json::json!({
                "config": config,
                "devices": i["devices"],
                "profiles": i["profiles"],
                "status": i["status"],
            });
            (i["name"].as_str().unwrap().to_string(), state)
        })
        .collect()
}

/// Processes by program from the shims' log.
fn calls(log: &std::path::Path) -> BTreeMap<String, usize> {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    let mut by = BTreeMap::new();
    for line in text.lines() {
        let program = line.split_whitespace().next().unwrap_or_default();
        *by.entry(program.to_string()).or_default() += 1;
    }
    by
}

fn show_calls(by: &BTreeMap<String, usize>) -> String {
    by.iter()
        .map(|(p, n)| format!("{n} `{p}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A nothing-changed `up`: its time against what a user runs to find out by hand (evaluate and
/// list), and the processes it starts, counted twice: its own trace and counting shims.
fn unchanged(bed: &Bed, s: &Settings, names: &[String], checks: &mut Table) {
    let n = names.len();
    eprintln!("bench: nothing-changed up of {n}");
    let pids_before = pids(names);
    let mut inx = Vec::new();
    let mut raw = Vec::new();
    for run in 0..s.runs {
        for side in sides(run) {
            match side {
                Side::Inx => inx.push(timed(|| {
                    bed.inx(&["up"]).ok();
                })),
                Side::Raw => raw.push(timed(|| bed.evaluate_and_list(names))),
            }
        }
    }
    let traced = bed.inx(&["up", "-v"]).ok().traced();
    let (path, log) = bed.shims();
    bed.inx_env(&["up"], &path).ok();
    let counted = calls(&log);
    let total: usize = counted.values().sum();
    let by_trace = (
        traced.iter().filter(|c| c.starts_with("nix ")).count(),
        traced
            .iter()
            .filter(|c| c.starts_with("incus ") && c.contains(" list "))
            .count(),
    );
    let kept = pids(names) == pids_before;
    // One evaluation and one listing; beside them only the client's project (a local read)
    // and the server query, which run at the same time as the evaluation.
    let ok = total == 4
        && counted.get("nix") == Some(&1)
        && counted.get("incus") == Some(&3)
        && traced.len() == 4
        && by_trace == (1, 1);
    if !s.full {
        assert!(kept, "a nothing-changed up restarted a container");
        assert!(
            ok,
            "a nothing-changed up must run one nix eval, one incus list, the project read and the server query: shims counted {counted:?}, -v traced {traced:#?}"
        );
    }
    let (i, r) = (median(inx), median(raw));
    checks.row(vec![
        format!("`up`, nothing changed, {n} containers"),
        secs(i),
        format!("{} (`nix build` + `incus list`)", secs(r)),
        ratio(i, r),
        format!(
            "one evaluation, one listing (+ project read, server query): {} (shims: {}; `-v`: {} commands); no restart: {}",
            verdict(ok),
            show_calls(&counted),
            traced.len(),
            verdict(kept)
        ),
    ]);
}

/// `inx list` against one `incus list --format json`, and the processes it starts.
fn list(bed: &Bed, s: &Settings, names: &[String], runs: usize, checks: &mut Table) {
    let n = names.len();
    eprintln!("bench: list of {n}");
    let mut inx = Vec::new();
    let mut raw = Vec::new();
    for run in 0..runs {
        for side in sides(run) {
            match side {
                Side::Inx => inx.push(timed(|| {
                    bed.inx(&["list"]).ok();
                })),
                Side::Raw => raw.push(timed(|| {
                    checked(Command::new("incus").args(["list", "--format", "json"]));
                })),
            }
        }
    }
    let rows = bed.inx(&["--json", "list"]).ok().json();
    let running = rows["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "running")
        .count();
    assert_eq!(running, n, "inx list must show all {n} running: {rows:#}");
    let (path, log) = bed.shims();
    bed.inx_env(&["list"], &path).ok();
    let counted = calls(&log);
    let total: usize = counted.values().sum();
    if !s.full {
        // The client's project, then the evaluation and the listing at once.
        assert!(total <= 3, "inx list ran {counted:?}");
    }
    let (i, r) = (median(inx), median(raw));
    checks.row(vec![
        format!("`list`, {n} containers"),
        secs(i),
        format!("{} (`incus list --format json`)", secs(r)),
        ratio(i, r),
        format!(
            "≤ 1.2x: {}; ≤ 3 processes: {} ({})",
            verdict(ratio_of(i, r) <= 1.2),
            verdict(total <= 3),
            show_calls(&counted)
        ),
    ]);
}

/// The init PID of each container (0 when stopped).
fn pids(names: &[String]) -> Vec<i64> {
    let out = checked(Command::new("incus").args(["list", "--format", "json"]));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    names
        .iter()
        .map(|n| {
            list.iter()
                .find(|i| i["name"] == *n)
                .and_then(|i| i["state"]["pid"].as_i64())
                .unwrap_or(0)
        })
        .collect()
}

/// What each running container runs now, read through its init's root.
fn running_systems(names: &[String]) -> Vec<String> {
    let out = checked(Command::new("incus").args(["list", "--format", "json"]));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    names
        .iter()
        .map(|n| {
            let i = list
                .iter()
                .find(|i| i["name"] == *n)
                .unwrap_or_else(|| panic!("{n} is gone"));
            let pid = i["state"]["pid"].as_i64().unwrap_or(0);
            std::fs::read_link(format!("/proc/{pid}/root/run/current-system"))
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// The same systems, in any order (`nix build --json` lists its outputs in its own order; each
/// container has a system of its own).
fn same_systems(a: &[String], b: &[String]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}

/// Waits until the containers' inits have activated these systems (boot is asynchronous).
fn wait_running(names: &[String], systems: &[String]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let now = running_systems(names);
        if same_systems(&now, systems) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "containers did not come up with their systems within 60 s: {names:?} run {now:?}, expected {systems:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// An in-place update of running containers: inx switches v1 to v2; the raw side switches
/// v2 back to v1 with `nix build`, `nix-env --set` and `switch-to-configuration switch`.
fn update(bed: &Bed, runs: usize, names: &[String], checks: &mut Table) {
    let n = names.len();
    eprintln!("bench: in-place update of {n}");
    bed.declare(names, "v2");
    let v2 = bed.build(names);
    bed.declare(names, "v1");
    let v1 = bed.build(names);
    wait_running(names, &v1);
    let mut inx = Vec::new();
    let mut raw = Vec::new();
    for _ in 0..runs {
        // Always v1 -> v2 by inx, then v2 -> v1 by hand: the same work each way.
        bed.declare(names, "v2");
        inx.push(timed(|| {
            bed.inx(&["up"]).ok();
        }));
        assert!(
            same_systems(&running_systems(names), &v2),
            "inx up switched every container"
        );
        bed.declare(names, "v1");
        let plan = bed.plan(names);
        assert!(
            plan.iter()
                .all(|st| st.what != "create" && st.what != "start"),
            "an update must not create or start: {plan:?}"
        );
        let (total, _) = raw_up(bed, names, &plan, &v1);
        raw.push(total);
        let targets = running_targets(&plan, names);
        assert_eq!(
            running_systems(names),
            targets,
            "the raw switch reached every container"
        );
        // Untimed: leave the record as inx would have, so every inx run starts alike.
        for (name, system) in names.iter().zip(&targets) {
            checked(Command::new("incus").args([
                "config",
                "set",
                name,
                &format!("user.inx.system={system}"),
            ]));
        }
    }
    let (i, r) = (median(inx), median(raw));
    checks.row(vec![
        format!("`up`, in-place update, {n} containers"),
        secs(i),
        format!(
            "{} (`nix build`, `nix-env --set`, `switch-to-configuration`)",
            secs(r)
        ),
        ratio(i, r),
        "no restart; inx also records the system (`incus config set`)".into(),
    ]);
}

/// Host disk per extra container (its directory in the storage pool and its host profile),
/// next to the same system as an image.
fn disk(bed: &Bed, s: &Settings, names: &[String]) -> Table {
    eprintln!("bench: disk");
    let mut t = Table::new(
        "**Disk on the host per container** (`du` of the instance's directory in the `dir` pool plus its host profile; the image is the system's closure)",
        &["what", "size"],
    );
    let Some(pool) = pool_dir() else {
        t.row(vec![
            "(the default profile's pool is not a `dir` pool: skipped)".into(),
            "-".into(),
        ]);
        return t;
    };
    let sizes: Vec<u64> = names
        .iter()
        .map(|n| {
            du(&pool.join("containers").join(n)) + du(&std::path::Path::new(bed::PROFILES).join(n))
        })
        .collect();
    let max = *sizes.iter().max().unwrap();
    let mean = sizes.iter().sum::<u64>() / sizes.len() as u64;
    if !s.full {
        assert!(
            max < 1024 * 1024,
            "a shared-store container uses {max} bytes"
        );
    }
    let system = running_systems(&names[..1]).remove(0);
    let closure = closure_size(&system);
    t.row(vec![
        format!("per container, mean of {} (largest)", names.len()),
        format!(
            "{} ({}); target < 1 MiB: {}",
            mib(mean),
            mib(max),
            verdict(max < 1024 * 1024)
        ),
    ]);
    t.row(vec![
        "the same system as an image: its closure (`nix path-info -S`)".into(),
        mib(closure),
    ]);
    if let Some(sq) = squashfs_size(bed, &system) {
        t.row(vec!["the same closure as a squashfs (xz)".into(), mib(sq)]);
    }
    t
}

/// The source directory of the pool that holds the default profile's root disk, when it is a
/// `dir` pool.
fn pool_dir() -> Option<std::path::PathBuf> {
    let query = |path: &str| -> Option<Value> {
        let out = Command::new("incus").args(["query", path]).output().ok()?;
        serde_json::from_slice(&out.stdout).ok()
    };
    let profile = query("/1.0/profiles/default")?;
    let pool = profile["devices"]["root"]["pool"].as_str()?.to_string();
    let info = query(&format!("/1.0/storage-pools/{pool}"))?;
    (info["driver"] == "dir").then(|| info["config"]["source"].as_str().map(Into::into))?
}

/// Disk used (blocks, not apparent size), in bytes.
fn du(path: &std::path::Path) -> u64 {
    let out = checked(Command::new("du").args(["-s", "-B1"]).arg(path));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn closure_size(path: &str) -> u64 {
    let out =
        checked(
            Command::new("nix")
                .args(NIX_FEATURES)
                .args(["path-info", "--json", "-S", path]),
        );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    // Nix before 2.19 prints a list of paths' infos; later versions an object keyed by path.
    let info = match &v {
        Value::Array(a) => a.first(),
        Value::Object(o) => o.values().next(),
        _ => None,
    };
    info.and_then(|i| i["closureSize"].as_u64())
        .unwrap_or_else(|| panic!("no closureSize in `nix path-info --json -S {path}`: {v}"))
}

fn squashfs_size(bed: &Bed, system: &str) -> Option<u64> {
    which::which("mksquashfs").ok()?;
    let out = checked(Command::new("nix-store").args(["-qR", system]));
    let paths: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    let image = bed.fx.path().join("system.squashfs");
    let _ = std::fs::remove_file(&image);
    checked(Command::new("mksquashfs").args(&paths).arg(&image).args([
        "-comp",
        "xz",
        "-no-progress",
        "-quiet",
        "-all-root",
    ]));
    std::fs::metadata(&image).ok().map(|m| m.len())
}

/// Would parallel work help on this machine? The per-container steps of `up` for these
/// containers, one by one (what inx does) against `incus start` of all in one call and
/// against 2 and 4 workers.
fn parallel(bed: &Bed, s: &Settings, names: &[String]) -> Table {
    let n = names.len();
    eprintln!("bench: parallel work for {n}");
    let mut t = Table::new(
        &format!("**Parallel work?** (the per-container steps of `up` for {n} new containers: profile, create, start)"),
        &["how", "time", "against one by one"],
    );
    bed.clear(names);
    let plan = bed.plan(names);
    let chains: Vec<Vec<Step>> = names
        .iter()
        .map(|n| {
            plan.iter()
                .filter(|st| st.container.as_deref() == Some(n.as_str()))
                .cloned()
                .collect()
        })
        .collect();
    let ways: [(&str, usize); 4] = [
        ("one by one (as inx does)", 0),
        ("one by one, then one `incus start` for all", 1),
        ("2 workers", 2),
        ("4 workers", 4),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); ways.len()];
    for _ in 0..s.runs {
        for (w, (_, how)) in ways.iter().enumerate() {
            bed.clear(names);
            times[w].push(timed(|| match how {
                0 => chains.iter().flatten().for_each(run_step),
                1 => {
                    chains
                        .iter()
                        .flatten()
                        .filter(|st| st.what != "start")
                        .for_each(run_step);
                    checked(Command::new("incus").arg("start").args(names));
                }
                k => workers(&chains, *k),
            }));
            wait_running(names, &running_targets(&plan, names));
        }
    }
    let base = median(times[0].clone());
    for (w, (how, _)) in ways.iter().enumerate() {
        let m = median(times[w].clone());
        t.row(vec![how.to_string(), secs(m), ratio(m, base)]);
    }
    t
}

/// Runs each container's chain of steps, `k` containers at a time.
fn workers(chains: &[Vec<Step>], k: usize) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..k {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(chain) = chains.get(i) else { break };
                chain.iter().for_each(run_step);
            });
        }
    });
}

/// The system each container's profile step points it at.
fn running_targets(plan: &[Step], names: &[String]) -> Vec<String> {
    names
        .iter()
        .map(|n| {
            plan.iter()
                .find_map(|st| match (&st.action, st.container.as_deref()) {
                    (Action::Run { program, args, .. }, Some(c))
                        if c == n && program == "nix-env" =>
                    {
                        args.last().cloned()
                    }
                    _ => None,
                })
                .expect("a profile step per new container")
        })
        .collect()
}
