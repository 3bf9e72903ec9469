//! inx itself across the bed: one flake's containers on the local server, on the remote `h4`
//! and on the cluster `h2`'s members, each fed from its own host's store over ssh.

use super::harness::{Fixture, Run};
use super::{check, Bed};
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs the real inx against the bed: its Incus remotes and its ssh config.
fn inx(fx: &Fixture, bed: &Bed, args: &[&str]) -> Run {
    let conf = bed.incus_conf();
    let opts = bed.nix_sshopts();
    fx.inx_with(args, |c: &mut Command| {
        c.env("INCUS_CONF", &conf).env("NIX_SSHOPTS", &opts);
    })
}

/// One test's share of the bed: the bed and the end-to-end host (both held), a fixture, and
/// its containers' names, whose instances and folders go on every host when the test ends.
struct Case {
    bed: Bed,
    _host: std::sync::MutexGuard<'static, ()>,
    fx: Fixture,
    names: Vec<String>,
}

/// The case of `test`, or `None` (after a loud skip; in CI a failure) when the bed or this
/// host cannot run it.
fn case(test: &str, prefix: &str, shorts: &[&str]) -> Option<Case> {
    let bed = Bed::get(test)?;
    let host = super::harness::host(test)?;
    let fx = Fixture::new(prefix);
    let names = shorts.iter().map(|s| fx.name(s)).collect();
    Some(Case {
        bed,
        _host: host,
        fx,
        names,
    })
}

impl Drop for Case {
    fn drop(&mut self) {
        for name in &self.names {
            for remote in ["h2", "h4"] {
                let _ = self
                    .bed
                    .incus()
                    .args(["delete", "--force", &format!("{remote}:{name}")])
                    .output();
            }
            for n in [2, 3, 4] {
                let _ = std::fs::remove_dir_all(self.bed.profiles(n).join(name));
                let _ = std::fs::remove_dir_all(self.bed.gcroots(n).join(name));
            }
        }
    }
}

/// The instance as `incus list REMOTE:` shows it.
fn listed(bed: &Bed, remote: &str, name: &str) -> Option<serde_json::Value> {
    let out = check(
        "incus list",
        bed.incus()
            .args(["list", &format!("{remote}:"), "--format", "json"])
            .output()
            .unwrap(),
    );
    let list: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    list.into_iter().find(|i| i["name"] == name)
}

fn system_of(i: &serde_json::Value) -> String {
    i["config"]["user.inx.system"].as_str().unwrap().to_string()
}

/// Waits until the container at `at` (`REMOTE:NAME`) has activated `system` (its
/// /run/current-system points there), through its own system's readlink.
fn wait_active(bed: &Bed, at: &str, system: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = bed
            .incus()
            .args([
                "exec",
                at,
                "--",
                &format!("{system}/sw/bin/readlink"),
                "/run/current-system",
            ])
            .output()
            .unwrap();
        if String::from_utf8_lossy(&o.stdout).trim() == system {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{at} did not activate {system}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn profile_target(bed: &Bed, n: u8, name: &str) -> Option<String> {
    let dir = bed.profiles(n).join(name);
    let generation = std::fs::read_link(dir.join("system")).ok()?;
    Some(
        std::fs::read_link(dir.join(generation))
            .ok()?
            .display()
            .to_string(),
    )
}

/// The flake of the test: `local` here, `rem` on h4, `m2` and `m3` on the cluster's members
/// and `any` where the cluster puts it; each system's version names the container and `v`.
/// `run` (see `super::unique`) makes the systems paths no earlier run made: the bed's stores
/// outlive a test.
fn declare(fx: &Fixture, run: &str, names: &[String; 5], versions: [&str; 5], extra_rem: &str) {
    let [local, rem, m2, m3, any] = names;
    let versions = versions.map(|v| format!("{v}-{run}"));
    fx.write_flake(&format!(
        r#"
        {local} = inx.lib.mkContainer {{ toplevel = sys "{local}-{v0}"; }};
        {rem} = inx.lib.mkContainer {{ toplevel = sys "{rem}-{v1}"; incus.remote = "h4"; {extra_rem} }};
        {m2} = inx.lib.mkContainer {{ toplevel = sys "{m2}-{v2}"; incus = {{ remote = "h2"; target = "member2"; }}; }};
        {m3} = inx.lib.mkContainer {{ toplevel = sys "{m3}-{v3}"; incus = {{ remote = "h2"; target = "member3"; }}; }};
        {any} = inx.lib.mkContainer {{ toplevel = sys "{any}-{v4}"; incus.remote = "h2"; }};
"#,
        v0 = versions[0],
        v1 = versions[1],
        v2 = versions[2],
        v3 = versions[3],
        v4 = versions[4],
    ));
}

#[test]
fn one_up_runs_containers_here_on_a_remote_and_on_cluster_members_each_from_its_own_store() {
    let test =
        "one_up_runs_containers_here_on_a_remote_and_on_cluster_members_each_from_its_own_store";
    let Some(case) = case(test, "mh", &["loc", "rem", "m2", "m3", "any"]) else {
        return;
    };
    let (bed, fx) = (&case.bed, &case.fx);
    let names: [String; 5] = case.names.clone().try_into().unwrap();
    let [local, rem, m2, m3, any] = &names;
    let run = super::unique("v");
    declare(fx, &run, &names, ["v1"; 5], "");

    let first = inx(fx, bed, &["--json", "up"]).ok();
    // One plan document for the whole command, the second round (for `any`, once the cluster
    // placed it) included.
    let plan = first.json();
    let on = |remote: &str, name: &str| {
        listed(bed, remote, name).unwrap_or_else(|| panic!("{name} is not on {remote}"))
    };
    let (i_rem, i_m2, i_m3, i_any) = (on("h4", rem), on("h2", m2), on("h2", m3), on("h2", any));
    assert_eq!(i_m2["location"], "member2");
    assert_eq!(i_m3["location"], "member3");
    let any_member: u8 = match i_any["location"].as_str().unwrap() {
        "member2" => 2,
        "member3" => 3,
        other => panic!("{any} landed on {other}"),
    };
    for i in [&i_rem, &i_m2, &i_m3, &i_any] {
        assert_eq!(i["status"], "Running", "{}: {}", i["name"], first.stderr);
    }
    // Each system is in its own host's store only (the paths are unique to this run), and
    // its host's profile points at it.
    let placed = [
        (rem, &i_rem, 4u8),
        (m2, &i_m2, 2),
        (m3, &i_m3, 3),
        (any, &i_any, any_member),
    ];
    for (name, i, n) in placed {
        let system = system_of(i);
        assert!(bed.has_path(n, &system), "host{n} lacks {name}'s system");
        for other in [2u8, 3, 4].into_iter().filter(|o| *o != n) {
            assert!(
                !bed.has_path(other, &system),
                "host{other} got {name}'s system too"
            );
        }
        assert_eq!(
            profile_target(bed, n, name).as_deref(),
            Some(system.as_str())
        );
        wait_active(
            bed,
            &format!("{}:{name}", if n == 4 { "h4" } else { "h2" }),
            &system,
        );
    }
    assert_eq!(super::harness::status(local), "Running");
    let steps = plan["steps"].as_array().unwrap();
    let copies: Vec<&str> = steps
        .iter()
        .filter(|s| s["what"] == "copy")
        .map(|s| s["host"].as_str().unwrap())
        .collect();
    // One copy per host in the first round (h4, member2, member3), one more to the member the
    // cluster put `any` on.
    let mut sorted = copies.clone();
    sorted.sort();
    let mut want = vec!["h2/member2", "h2/member3", "h4"];
    let any_host = format!("h2/member{any_member}");
    want.push(&any_host);
    want.sort();
    assert_eq!(sorted, want, "copies: {copies:?}");
    let of_any: Vec<&str> = steps
        .iter()
        .filter(|s| s["container"] == any.as_str())
        .map(|s| s["what"].as_str().unwrap())
        .collect();
    assert_eq!(of_any, ["create", "devices", "start"], "{plan}");

    // `list` shows each with its host, from one listing per server.
    let list = inx(fx, bed, &["list", "--json"]).ok().json();
    let host_of = |name: &str| {
        list["containers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .map(|r| {
                (
                    r["host"].as_str().unwrap().to_string(),
                    r["state"].as_str().unwrap().to_string(),
                )
            })
            .unwrap()
    };
    assert_eq!(host_of(local), ("local".into(), "running".into()));
    assert_eq!(host_of(rem), ("h4".into(), "running".into()));
    assert_eq!(host_of(m3), ("h2/member3".into(), "running".into()));
    assert_eq!(
        host_of(any),
        (format!("h2/member{any_member}"), "running".into())
    );

    // The other commands find them where the flake puts them.
    inx(fx, bed, &["exec", m3, "--", "true"]).ok();
    inx(fx, bed, &["stop", rem]).ok();
    assert_eq!(on("h4", rem)["status"], "Stopped");
    inx(fx, bed, &["start", rem]).ok();
    assert_eq!(on("h4", rem)["status"], "Running");
    wait_active(bed, &format!("h4:{rem}"), &system_of(&on("h4", rem)));
    inx(fx, bed, &["rollback", m2])
        .code(3)
        .stderr_has(&format!("{m2} runs on h2/member2"));

    // A second `up` copies nothing and changes nothing: one read per host, no copy.
    let again = inx(fx, bed, &["-v", "up"]).ok();
    let traced = again.traced();
    assert!(!traced.iter().any(|c| c.contains(" copy ")), "{traced:?}");
    let reads = traced.iter().filter(|c| c.starts_with("ssh ")).count();
    assert_eq!(reads, 3, "one ssh read per other host: {traced:?}");
    for name in &names {
        assert!(
            again.stderr.contains(&format!("{name}: up to date")),
            "{}",
            again.stderr
        );
    }

    // A changed system is copied to its host alone and switched in place there.
    let pid_before = on("h2", m3)["state"]["pid"].as_i64().unwrap();
    declare(fx, &run, &names, ["v1", "v1", "v1", "v2", "v1"], "");
    let change = inx(fx, bed, &["-v", "up"]).ok();
    let copies: Vec<String> = change
        .traced()
        .into_iter()
        .filter(|c| c.contains(" copy "))
        .collect();
    assert_eq!(copies.len(), 1, "{copies:?}");
    assert!(copies[0].contains("ssh://root@127.0.0.3"), "{copies:?}");
    let i_m3 = on("h2", m3);
    let v2 = system_of(&i_m3);
    assert!(v2.contains(&format!("{m3}-v2-")), "{v2}");
    assert!(bed.has_path(3, &v2) && !bed.has_path(2, &v2));
    assert_eq!(
        i_m3["state"]["pid"].as_i64().unwrap(),
        pid_before,
        "m3 was restarted"
    );
    wait_active(bed, &format!("h2:{m3}"), &v2);
    assert_eq!(profile_target(bed, 3, m3).as_deref(), Some(v2.as_str()));
}

#[test]
fn a_host_whose_sshd_does_not_answer_is_a_clear_error_before_anything_changes() {
    let test = "a_host_whose_sshd_does_not_answer_is_a_clear_error_before_anything_changes";
    let Some(case) = case(test, "mhdown", &["loc", "rem", "m2", "m3", "any"]) else {
        return;
    };
    let (bed, fx) = (&case.bed, &case.fx);
    let names: [String; 5] = case.names.clone().try_into().unwrap();
    // host4's store through a port where no sshd listens: as a host whose sshd is down.
    declare(fx, &super::unique("v"), &names, ["v1"; 5], "ssh.port = 2;");
    let run = inx(fx, bed, &["up"])
        .code(13)
        .stderr_has("cannot reach root@127.0.0.4 over ssh");
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert_eq!(super::harness::status(&names[0]), "absent");
    // `list` still lists: that host's containers say they are unreachable, the rest as usual.
    let list = inx(fx, bed, &["list", "--json"]).ok();
    assert!(
        list.stderr.contains("cannot reach root@127.0.0.4 over ssh"),
        "{}",
        list.stderr
    );
    let states: Vec<(String, String)> = list.json()["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // Only this test's rows: other managed instances on this machine list as orphans.
    let mine: Vec<&(String, String)> = states.iter().filter(|(n, _)| names.contains(n)).collect();
    assert_eq!(mine.len(), names.len(), "{states:?}");
    for (name, state) in mine {
        let want = if *name == names[1] {
            "unreachable"
        } else {
            "missing"
        };
        assert_eq!(state, want, "{name}: {states:?}");
    }
    for (remote, name) in [
        ("h4", &names[1]),
        ("h2", &names[2]),
        ("h2", &names[3]),
        ("h2", &names[4]),
    ] {
        assert!(
            listed(bed, remote, name).is_none(),
            "{name} was created on {remote}"
        );
    }
    for n in [2, 3, 4] {
        for name in &names {
            assert!(
                !bed.profiles(n).join(name).exists(),
                "host{n} got a profile for {name}"
            );
        }
    }
}

#[test]
fn evacuate_stops_a_container_in_place_and_move_takes_it_with_its_files_to_another_member() {
    let test =
        "evacuate_stops_a_container_in_place_and_move_takes_it_with_its_files_to_another_member";
    let Some(case) = case(test, "mhmove", &["web"]) else {
        return;
    };
    let (bed, fx) = (&case.bed, &case.fx);
    let name = case.names[0].clone();
    fx.write_flake(&format!(
        r#"{name} = inx.lib.mkContainer {{ toplevel = sys "{name}-v1"; incus.remote = "h2"; }};"#
    ));
    inx(fx, bed, &["up", "--target", "member2"]).ok();
    let at = format!("h2:{name}");
    let i = listed(bed, "h2", &name).unwrap();
    assert_eq!(i["location"], "member2");
    let system = system_of(&i);
    wait_active(bed, &at, &system);
    let sh = format!("{system}/sw/bin/sh");
    check(
        "write a file in the container",
        bed.incus()
            .args(["exec", &at, "--", &sh, "-c", "echo kept > /root/data"])
            .output()
            .unwrap(),
    );
    // What `incus cluster evacuate` does instead: it stops the container where it is (a disk
    // from a host path cannot migrate), and `restore` starts it there again.
    let cluster = |verb: &str| {
        check(
            &format!("incus cluster {verb}"),
            bed.incus()
                .args(["cluster", verb, "h2:member2", "--force"])
                .output()
                .unwrap(),
        )
    };
    cluster("evacuate");
    let i = listed(bed, "h2", &name).unwrap();
    assert_eq!(
        (i["location"].as_str(), i["status"].as_str()),
        (Some("member2"), Some("Stopped"))
    );
    cluster("restore");
    let i = listed(bed, "h2", &name).unwrap();
    assert_eq!(
        (i["location"].as_str(), i["status"].as_str()),
        (Some("member2"), Some("Running"))
    );
    wait_active(bed, &at, &system);

    // Roots the old member keeps for the container, which the move must release.
    std::fs::create_dir_all(bed.gcroots(2).join(&name)).unwrap();

    inx(fx, bed, &["move", &name, "--to", "member3"]).ok();
    let i = listed(bed, "h2", &name).unwrap();
    assert_eq!(i["location"], "member3");
    assert_eq!(i["status"], "Running");
    assert!(bed.has_path(3, &system), "member3's store lacks the system");
    assert_eq!(
        profile_target(bed, 3, &name).as_deref(),
        Some(system.as_str())
    );
    wait_active(bed, &at, &system);
    let data = check(
        "read the file",
        bed.incus()
            .args(["exec", &at, "--", &sh, "-c", "cat /root/data"])
            .output()
            .unwrap(),
    );
    assert_eq!(data.trim(), "kept");
    assert!(
        !bed.profiles(2).join(&name).exists(),
        "member2 still has its profile"
    );
    assert!(
        !bed.gcroots(2).join(&name).exists(),
        "member2 still has its roots"
    );

    // Again: nothing to do. Then `up` (no target declared) leaves it where it is.
    let again = inx(fx, bed, &["move", &name, "--to", "member3"]).ok();
    assert!(
        again.stderr.contains("already on member3"),
        "{}",
        again.stderr
    );
    let up = inx(fx, bed, &["up"]).ok();
    assert!(
        up.stderr.contains(&format!("{name}: up to date")),
        "{}",
        up.stderr
    );
    // A declared target elsewhere is refused, with the way out.
    inx(fx, bed, &["up", "--target", "member2"])
        .code(3)
        .stderr_has(&format!("inx move {name} --to member2"));
}

#[test]
fn a_declared_ssh_port_reaches_the_remote_and_destroy_removes_the_instance_its_profile_and_roots_there(
) {
    let test = "a_declared_ssh_port_reaches_the_remote_and_destroy_removes_the_instance_its_profile_and_roots_there";
    let Some(case) = case(test, "mhdestroy", &["db"]) else {
        return;
    };
    let (bed, fx) = (&case.bed, &case.fx);
    let name = case.names[0].clone();
    // host4's sshd also listens on 2222: the declared port carries the copy (through
    // NIX_SSHOPTS) and inx's own ssh calls; the command line's --ssh names the host.
    fx.write_flake(&format!(
        r#"{name} = inx.lib.mkContainer {{ toplevel = sys "{name}-v1"; incus.remote = "h4"; ssh.port = 2222; }};"#
    ));
    let up = inx(fx, bed, &["-v", "up", "--ssh", "root@127.0.0.4"]).ok();
    let traced = up.traced();
    assert!(
        traced
            .iter()
            .any(|c| c.contains("NIX_SSHOPTS=") && c.contains("-p 2222") && c.contains(" copy ")),
        "{traced:?}"
    );
    assert!(
        traced.iter().any(|c| c.starts_with("ssh ")
            && c.contains("-p 2222")
            && c.contains("root@127.0.0.4")),
        "{traced:?}"
    );
    assert!(listed(bed, "h4", &name).is_some());
    assert!(bed.profiles(4).join(&name).exists());
    // What host4's own roots watcher would have written for the container's builds.
    std::fs::create_dir_all(bed.gcroots(4).join(&name)).unwrap();

    inx(fx, bed, &["destroy", "--force", &name]).ok();
    assert!(
        listed(bed, "h4", &name).is_none(),
        "the instance is still on h4"
    );
    assert!(
        !bed.profiles(4).join(&name).exists(),
        "host4 still has the profile"
    );
    assert!(
        !bed.gcroots(4).join(&name).exists(),
        "host4 still has the roots"
    );
    inx(fx, bed, &["destroy", "--force", &name])
        .code(3)
        .stderr_has("no container named");
}

/// `nix-build` inside the container at `at` (`REMOTE:NAME`) through its host's daemon, as
/// `builds::nix_build` does on the main host; the `result` link is `link`. Returns the path.
fn build_in(bed: &Bed, at: &str, client: &str, link: &str, tag: &str) -> String {
    let system = profile_system_in(bed, at);
    let sh = format!("{system}/sw/bin/sh");
    check(
        "write the expression",
        bed.incus()
            .args(["exec", at, "--", &sh, "-c"])
            .arg(format!(
                "mkdir -p /root/src && cat > /root/src/{tag}.nix <<'EOF'\n{}\nEOF",
                super::builds::derivation(&system, tag)
            ))
            .output()
            .unwrap(),
    );
    check(
        "nix-build in the container",
        bed.incus()
            .args(["exec", at])
            .args(super::builds::nix_build_exec(client, tag, link))
            .output()
            .unwrap(),
    );
    let path = check(
        "readlink",
        bed.incus()
            .args(["exec", at, "--", &format!("{system}/sw/bin/readlink"), link])
            .output()
            .unwrap(),
    );
    path.trim().to_string()
}

fn profile_system_in(bed: &Bed, at: &str) -> String {
    let remote = at.split(':').next().unwrap();
    let name = at.split(':').nth(1).unwrap();
    system_of(&listed(bed, remote, name).unwrap())
}

/// Host N's collector aimed at one path (Debian's Nix, as the host's daemon): whether it
/// survived.
fn gc_on(bed: &Bed, n: u8, path: &str) -> bool {
    let _ = bed
        .on_host(n, "/usr/bin/nix-store")
        .args(["--delete", path])
        .output()
        .unwrap();
    bed.has_path(n, path)
}

#[test]
fn builds_in_a_container_on_a_member_survive_that_members_gc_with_its_own_roots_watcher() {
    let test =
        "builds_in_a_container_on_a_member_survive_that_members_gc_with_its_own_roots_watcher";
    let Some(case) = case(test, "mhgc", &["c3", "c2"]) else {
        return;
    };
    let (bed, fx) = (&case.bed, &case.fx);
    let (c3, c2) = (case.names[0].clone(), case.names[1].clone());
    fx.write_flake(&format!(
        r#"
        {c3} = inx.lib.mkContainer {{ toplevel = sys "{c3}-v1"; incus = {{ remote = "h2"; target = "member3"; }}; }};
        {c2} = inx.lib.mkContainer {{ toplevel = sys "{c2}-v1"; incus = {{ remote = "h2"; target = "member2"; }}; }};
"#
    ));
    inx(fx, bed, &["up"]).ok();
    let at = format!("h2:{c3}");
    wait_active(bed, &at, &profile_system_in(bed, &at));
    // The Nix client the container builds with, in member3's store.
    let client = super::builds::nix_client();
    bed.copy_to(3, client);
    let nonce = super::unique("b");

    // The control: no roots watcher on member3; its GC takes what the container built.
    let plain = build_in(bed, &at, client, "/root/plain", &format!("plain-{nonce}"));
    assert!(
        bed.has_path(3, &plain),
        "the build is not in member3's store"
    );
    assert!(
        !gc_on(bed, 3, &plain),
        "the problem did not reproduce on member3"
    );

    // member3's own `inx roots watch` (what the host module runs there): Debian's tools, its
    // Incus and its /nix, as a service on that host would have.
    let mut watcher = bed
        .on_host(3, env!("CARGO_BIN_EXE_inx"))
        .args(["roots", "watch"])
        .env("PATH", "/usr/bin:/bin:/usr/sbin:/sbin")
        .env_remove("INCUS_CONF")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    struct Stop(std::process::Child);
    impl Drop for Stop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stderr = watcher.stderr.take().unwrap();
    let _stop = Stop(watcher);
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut { stderr }, &mut s);
        s
    });
    // A link of the same name in member2's container, to a path both members have: member3
    // lists
    // that container too (a cluster lists every member's instances), but its PID and files are
    // member2's, so member3 must not read it.
    bed.copy_to(2, client);
    let at2 = format!("h2:{c2}");
    let sys2 = profile_system_in(bed, &at2);
    wait_active(bed, &at2, &sys2);
    check(
        "link in member2's container",
        bed.incus()
            .args([
                "exec",
                &at2,
                "--",
                &format!("{sys2}/sw/bin/ln"),
                "-s",
                client,
                "/root/kept",
            ])
            .output()
            .unwrap(),
    );
    let kept = build_in(bed, &at, client, "/root/kept", &format!("kept-{nonce}"));

    let roots = bed.gcroots(3).join(&c3);
    let deadline = Instant::now() + Duration::from_secs(20);
    let rooted = |p: &str| {
        std::fs::read_dir(&roots)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t.display().to_string() == p))
    };
    while !rooted(&kept) {
        assert!(
            Instant::now() < deadline,
            "member3's watcher did not root {kept}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(gc_on(bed, 3, &kept), "member3's GC took a rooted build");
    // The other member's container is not member3's business: no roots for it there.
    assert!(
        !bed.gcroots(3).join(&c2).exists(),
        "member3 made roots for member2's container"
    );
    drop(_stop);
    let log = log.join().unwrap();
    assert!(
        !log.contains("error"),
        "the watcher on member3 failed: {log}"
    );
}

/// inx as `inx` runs it, as a command to start in the background or to run once, as if on
/// a machine of its own: its lock and build roots here in `profiles`, not this machine's
/// (which other inx runs take), so only another host's lock can hold it up.
fn inx_cmd(fx: &Fixture, bed: &Bed, profiles: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_inx"));
    c.arg("--flake")
        .arg(fx.user_dir())
        .args(args)
        .stdin(std::process::Stdio::null())
        .env("INCUS_CONF", bed.incus_conf())
        .env("NIX_SSHOPTS", bed.nix_sshopts())
        .env("INX_PROFILES_DIR", profiles);
    c
}

/// A `PATH` whose `nix` runs `before` and `after` (shell) around each `nix copy` and is the
/// real one otherwise: how a test gets between inx's copy to a host and what comes next.
fn path_with_nix_wrapper(dir: &std::path::Path, before: &str, after: &str) -> String {
    let real = check(
        "command -v nix",
        Command::new("sh")
            .args(["-c", "command -v nix"])
            .output()
            .unwrap(),
    );
    let script = format!(
        "#!/bin/sh\ncase \" $* \" in\n  *\" copy \"*) {before}\n    {real} \"$@\"; rc=$?\n    {after}\n    exit $rc ;;\nesac\nexec {real} \"$@\"\n",
        real = real.trim()
    );
    let nix = dir.join("nix");
    std::fs::write(&nix, script).unwrap();
    let mut perms = std::fs::metadata(&nix).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&nix, perms).unwrap();
    format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The flake of one container on h4 whose system is a path no earlier run made.
fn declare_on_h4(fx: &Fixture, name: &str) -> String {
    let version = super::unique("v");
    fx.write_flake(&format!(
        r#"{name} = inx.lib.mkContainer {{ toplevel = sys "{name}-{version}"; incus.remote = "h4"; }};"#
    ));
    version
}

#[test]
fn a_gc_on_the_host_between_the_copy_and_the_profile_leaves_the_copied_system_in_place() {
    let test =
        "a_gc_on_the_host_between_the_copy_and_the_profile_leaves_the_copied_system_in_place";
    let Some(case) = case(test, "mhgcwin", &["rem"]) else {
        return;
    };
    let (bed, fx) = (&case.bed, &case.fx);
    let name = case.names[0].clone();
    declare_on_h4(fx, &name);
    // Right after the copy (once host4's `nix-store --serve`, whose temporary roots hold what
    // it added, has gone): host4's garbage collector, as a timer there would run it.
    let wrap = tempfile::tempdir().unwrap();
    let host4 = std::fs::read_to_string(bed.root.join("host4/holder.pid")).unwrap();
    let gc = format!(
        "i=0; while pgrep -f 'nix-store --serve' >/dev/null && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
         nsenter -t {} -m -- /usr/bin/nix-store --gc >{log} 2>&1; echo $? >>{log}",
        host4.trim(),
        log = wrap.path().join("gc.log").display()
    );
    let path = path_with_nix_wrapper(wrap.path(), ":", &gc);
    let machine = tempfile::tempdir().unwrap();
    let up = inx_cmd(fx, bed, machine.path(), &["up"])
        .env("PATH", &path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&up.stderr);
    let log = std::fs::read_to_string(wrap.path().join("gc.log")).unwrap_or_default();
    assert!(
        log.contains("store paths deleted") && log.trim_end().ends_with('0'),
        "host4's GC did not run after the copy: {log}\n{stderr}"
    );
    assert_eq!(up.status.code(), Some(0), "inx up failed:\n{stderr}");
    let i = listed(bed, "h4", &name).expect("the instance is on h4");
    let system = system_of(&i);
    assert!(bed.has_path(4, &system), "host4's GC took the system");
    assert_eq!(
        profile_target(bed, 4, &name).as_deref(),
        Some(system.as_str())
    );
    wait_active(bed, &format!("h4:{name}"), &system);
    // The session's roots went with it: only the profile holds the system now.
    let builds = bed.profiles(4).join(".builds");
    let left: Vec<_> = std::fs::read_dir(&builds)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert!(left.is_empty(), "roots left on host4: {left:?}");
}

#[test]
fn two_ups_from_two_machines_against_one_host_one_deploys_and_the_other_exits_9_having_changed_nothing(
) {
    let test = "two_ups_from_two_machines_against_one_host_one_deploys_and_the_other_exits_9_having_changed_nothing";
    let Some(case) = case(test, "mhlock", &["rem"]) else {
        return;
    };
    let (bed, fx) = (&case.bed, &case.fx);
    let name = case.names[0].clone();
    declare_on_h4(fx, &name);
    // The first inx stops before its copy until the test lets it go on.
    let wrap = tempfile::tempdir().unwrap();
    let (copying, go) = (wrap.path().join("copying"), wrap.path().join("go"));
    let wait = format!(
        "touch {}; i=0; while [ ! -e {go} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done;",
        copying.display(),
        go = go.display()
    );
    let path = path_with_nix_wrapper(wrap.path(), &wait, ":");
    let (one, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut first = inx_cmd(fx, bed, one.path(), &["up"])
        .env("PATH", &path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Let the first go on however this test ends.
    struct Go(std::path::PathBuf);
    impl Drop for Go {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, "");
        }
    }
    let release = Go(go.clone());
    let deadline = Instant::now() + Duration::from_secs(120);
    while !copying.exists() {
        if let Some(status) = first.try_wait().unwrap() {
            panic!("the first inx ended ({status}) before its copy");
        }
        assert!(
            Instant::now() < deadline,
            "the first inx never got to its copy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Another machine, the same host4.
    let second = inx_cmd(fx, bed, other.path(), &["-v", "up"])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(9), "the second inx:\n{said}");
    assert!(
        said.contains("another inx is changing containers on root@127.0.0.4"),
        "{said}"
    );
    assert!(
        !said
            .lines()
            .any(|l| l.starts_with("+ ") && l.contains(" copy ")),
        "the second inx copied: {said}"
    );
    assert!(
        listed(bed, "h4", &name).is_none(),
        "the second inx created the instance"
    );
    assert!(
        profile_target(bed, 4, &name).is_none(),
        "the second inx set the profile"
    );
    drop(release);
    let out = first.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the first inx:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let i = listed(bed, "h4", &name).expect("the instance is on h4");
    let system = system_of(&i);
    assert_eq!(
        profile_target(bed, 4, &name).as_deref(),
        Some(system.as_str())
    );
    wait_active(bed, &format!("h4:{name}"), &system);
    // Once the first is done, the host is free again: the second goes through (nothing to do).
    let again = inx_cmd(fx, bed, other.path(), &["up"]).output().unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// nixos-container's `autoStart` on Incus: a container declared with it comes back when its
/// host's Incus daemon starts (here host4's, restarted as a reboot would), one declared
/// without it stays as it was (stopped). Both were stopped before the restart, so only
/// `boot.autostart` can start one.
#[test]
fn an_autostart_container_comes_back_when_its_incus_daemon_restarts_and_another_stays_stopped() {
    let test = "an_autostart_container_comes_back_when_its_incus_daemon_restarts";
    let Some(case) = case(test, "mhauto", &["auto", "manual"]) else {
        return;
    };
    let (bed, fx) = (&case.bed, &case.fx);
    let (auto, manual) = (&case.names[0], &case.names[1]);
    let version = super::unique("v");
    fx.write_flake(&format!(
        r#"{auto} = inx.lib.mkContainer {{ toplevel = sys "{auto}-{version}"; incus.remote = "h4"; autoStart = true; }};
        {manual} = inx.lib.mkContainer {{ toplevel = sys "{manual}-{version}"; incus.remote = "h4"; autoStart = false; }};"#
    ));
    inx(fx, bed, &["up"]).ok();
    let status = |name: &str| {
        listed(bed, "h4", name).map(|i| i["status"].as_str().unwrap_or_default().to_string())
    };
    let key = |name: &str| {
        listed(bed, "h4", name)
            .and_then(|i| i["config"]["boot.autostart"].as_str().map(String::from))
    };
    assert_eq!(key(auto).as_deref(), Some("true"));
    assert_eq!(key(manual).as_deref(), Some("false"));
    inx(fx, bed, &["stop", auto, manual]).ok();
    assert_eq!(status(auto).as_deref(), Some("Stopped"));
    let restarted = Command::new(super::repo().join("scripts/hosts.sh"))
        .args(["restart-incus", "4"])
        .env("INX_HOSTS_ROOT", &bed.root)
        .output()
        .unwrap();
    check("scripts/hosts.sh restart-incus 4", restarted);
    let deadline = Instant::now() + Duration::from_secs(60);
    while status(auto).as_deref() != Some("Running") {
        assert!(
            Instant::now() < deadline,
            "{auto} did not come back after host4's incusd restarted: {:?}",
            status(auto)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(status(manual).as_deref(), Some("Stopped"));
}
