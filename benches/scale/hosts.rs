//! Several hosts (`hosts`): `inx up` of N new containers on each of three hosts at once (the
//! remote `h4` and the cluster `h2`'s members `member2` and `member3`, on the multi-host bed of
//! scripts/hosts.sh) against each host's share alone; and the raw `nix copy` of each host's
//! systems alone and of all three side by side, which is the time spent copying. Every timed
//! `up` deploys systems no host has yet (a version of their own), built here beforehand.

use super::bed::{checked, timed, Bed};
use super::report::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Each host as mkContainer places it, its ssh store and the prefix of its containers' names.
const HOSTS: [(&str, &str, &str); 3] = [
    ("h4", "incus.remote = \"h4\";", "127.0.0.4"),
    (
        "m2",
        "incus = { remote = \"h2\"; target = \"member2\"; };",
        "127.0.0.2",
    ),
    (
        "m3",
        "incus = { remote = \"h2\"; target = \"member3\"; };",
        "127.0.0.3",
    ),
];

/// The running multi-host bed's folder, or `None`.
pub fn bed_root() -> Option<PathBuf> {
    let root = std::env::var_os("INX_TEST_HOSTS_ROOT")
        .or_else(|| std::env::var_os("INX_HOSTS_ROOT"))
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/inx-test/hosts"));
    let up = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/hosts.sh"))
        .arg("status")
        .env("INX_HOSTS_ROOT", &root)
        .output()
        .is_ok_and(|o| o.status.success());
    up.then_some(root)
}

struct Hosts<'a> {
    bed: &'a Bed,
    root: PathBuf,
    /// Per host, its containers' names.
    names: Vec<Vec<String>>,
}

impl Hosts<'_> {
    fn env(&self, c: &mut Command) {
        c.env("INX_PROFILES_DIR", super::bed::PROFILES)
            .env("INCUS_CONF", self.root.join("incus-client"))
            .env(
                "NIX_SSHOPTS",
                format!("-F {}", self.root.join("ssh/config").display()),
            );
    }

    /// Declares the containers of the hosts picked, each system of version `version`; builds
    /// them here (untimed).
    fn declare(&self, hosts: &[usize], version: &str) -> Vec<Vec<String>> {
        let mut exprs = Vec::new();
        for &h in hosts {
            for n in &self.names[h] {
                exprs.push((
                    n.clone(),
                    format!(
                        "inx.lib.mkContainer {{ toplevel = sys \"{version}-{n}\"; {} }}",
                        HOSTS[h].1
                    ),
                ));
            }
        }
        self.bed.declare_parts("", &exprs, "");
        hosts
            .iter()
            .map(|&h| self.bed.build(&self.names[h]))
            .collect()
    }

    fn inx(&self, args: &[&str]) {
        self.bed.fx.inx_with(args, |c| self.env(c)).ok();
    }

    /// Removes the declared containers wherever they are (untimed).
    fn destroy(&self, hosts: &[usize]) {
        let mut args = vec!["destroy", "--force"];
        for &h in hosts {
            args.extend(self.names[h].iter().map(String::as_str));
        }
        self.inx(&args);
    }

    fn copy(&self, h: usize, paths: &[String]) -> Command {
        let mut c = Command::new("nix");
        c.args(super::bed::NIX_FEATURES)
            .args(["copy", "--to", &format!("ssh://root@{}", HOSTS[h].2)])
            .args(paths);
        self.env(&mut c);
        c
    }
}

impl Hosts<'_> {
    /// Deletes any instance of the bench's names on the bed's servers, ignoring errors: what
    /// an interrupted bench may have left.
    fn sweep(&self) {
        for (h, names) in self.names.iter().enumerate() {
            let remote = if h == 0 { "h4" } else { "h2" };
            for n in names {
                let mut c = Command::new("incus");
                c.args(["delete", "--force", &format!("{remote}:{n}")]);
                self.env(&mut c);
                let _ = c.output();
            }
        }
    }
}

impl Drop for Hosts<'_> {
    fn drop(&mut self) {
        self.sweep();
    }
}

pub fn compare(bed: &Bed, per_host: usize, runs: usize, root: PathBuf) -> Table {
    eprintln!("bench: up of {per_host} containers on each of 3 other hosts ({runs} runs)");
    let hosts = Hosts {
        bed,
        root,
        names: HOSTS
            .iter()
            .map(|(p, _, _)| {
                (1..=per_host)
                    .map(|i| format!("bench-{p}-{i:03}"))
                    .collect()
            })
            .collect(),
    };
    let all = [0, 1, 2];
    hosts.sweep();
    let nonce = std::process::id();
    let (mut together, mut alone) = (Vec::new(), vec![Vec::new(); 3]);
    let (mut copy_together, mut copy_alone) = (Vec::new(), vec![Vec::new(); 3]);
    for run in 0..runs {
        hosts.declare(&all, &format!("all{run}x{nonce}"));
        together.push(timed(|| hosts.inx(&["up"])));
        hosts.destroy(&all);
        for h in all {
            hosts.declare(&[h], &format!("alone{run}x{nonce}"));
            alone[h].push(timed(|| hosts.inx(&["up"])));
            hosts.destroy(&[h]);
        }
        // The raw copies, of systems no host has yet: each share alone, then all side by side.
        let shares = hosts.declare(&all, &format!("copy{run}x{nonce}"));
        for h in all {
            copy_alone[h].push(timed(|| drop(checked(&mut hosts.copy(h, &shares[h])))));
        }
        let shares = hosts.declare(&all, &format!("par{run}x{nonce}"));
        copy_together.push(timed(|| {
            let children: Vec<_> = all
                .iter()
                .map(|&h| {
                    hosts
                        .copy(h, &shares[h])
                        .stderr(std::process::Stdio::null())
                        .spawn()
                        .unwrap()
                })
                .collect();
            for mut c in children {
                assert!(c.wait().unwrap().success(), "nix copy failed");
            }
        }));
    }
    hosts.bed.declare_parts("", &[], "");

    let median_of = |v: &Vec<Duration>| median(v.clone());
    let (t, a): (Duration, Vec<Duration>) =
        (median(together), alone.iter().map(median_of).collect());
    let slowest = *a.iter().max().unwrap();
    let (ct, ca): (Duration, Vec<Duration>) = (
        median(copy_together),
        copy_alone.iter().map(median_of).collect(),
    );
    let copy_slowest = *ca.iter().max().unwrap();
    let copy_sum: Duration = ca.iter().sum();
    let sum: Duration = a.iter().sum();
    let mut table = Table::new(
        &format!(
            "**Several hosts**: {per_host} new containers on each of `h4`, `h2/member2` and `h2/member3` (the multi-host bed: three hosts on this machine's cores); each host's share alone is the same `inx up` with only its containers declared"
        ),
        &[
            "measurement",
            "3 hosts at once",
            "slowest host alone",
            "ratio",
            "the 3 alone, one after another",
            "target ≤ 1.20x",
        ],
    );
    table.row(vec![
        format!("`inx up` of {} containers", 3 * per_host),
        secs(t),
        secs(slowest),
        ratio(t, slowest),
        secs(sum),
        verdict(ratio_of(t, slowest) <= 1.20).to_string(),
    ]);
    table.row(vec![
        format!("raw `nix copy` of {per_host} systems per host"),
        secs(ct),
        secs(copy_slowest),
        ratio(ct, copy_slowest),
        secs(copy_sum),
        "-".into(),
    ]);
    for (h, d) in a.iter().enumerate() {
        table.row(vec![
            format!(
                "`inx up` on {} alone (its `nix copy` alone: {})",
                ["h4", "h2/member2", "h2/member3"][h],
                secs(ca[h])
            ),
            "-".into(),
            secs(*d),
            "-".into(),
            "-".into(),
            "-".into(),
        ]);
    }
    table
}
