//! What must hold when things go wrong around a command: Ctrl-C and kills during `up`, a host
//! GC between a build and its profile, and the project a user switched to.

use super::harness::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `inx --flake USER up` started as a shell starts a job: in a process group of its own, whose
/// id is its pid, so a signal to the group is what Ctrl-C on a terminal sends. `path` goes
/// first on its PATH.
fn spawn_up(fx: &Fixture, path: Option<&Path>) -> Child {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_inx"));
    if let Some(dir) = path {
        cmd.env(
            "PATH",
            format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()),
        );
    }
    cmd.arg("--flake")
        .arg(fx.user_dir())
        .arg("up")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("start inx")
}

/// Reads inx's stderr until a line contains `needle`; returns what was read.
fn read_until(child: &mut Child, needle: &str) -> (BufReader<std::process::ChildStderr>, String) {
    let mut reader = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        seen.push_str(&line);
        if line.contains(needle) {
            return (reader, seen);
        }
        line.clear();
    }
    panic!("inx ended before printing {needle:?}:\n{seen}");
}

fn signal(target: &str, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, "--", target])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {target}");
}

fn build_roots_of(pid: u32) -> PathBuf {
    Path::new(PROFILES).join(".builds").join(pid.to_string())
}

/// Waits until no process mentions `word` on its command line (what a killed inx started
/// finishes by itself).
fn wait_no_process(word: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let found = Command::new("pgrep")
            .args(["-f", word])
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .code();
        match found {
            Some(1) => return,
            Some(0) => assert!(Instant::now() < deadline, "{word} still busy"),
            other => panic!("pgrep -f {word:?} failed: {other:?}"),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn declare_four(fx: &Fixture, version: &str) -> Vec<String> {
    let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| fx.name(s)).collect();
    let decls: Vec<(&str, String)> = names
        .iter()
        .map(|n| {
            (
                n.as_str(),
                format!("inx.lib.mkContainer {{ toplevel = sys \"{version}\"; }}"),
            )
        })
        .collect();
    let decls: Vec<(&str, &str)> = decls.iter().map(|(n, e)| (*n, e.as_str())).collect();
    fx.declare(&decls);
    names
}

fn converged(fx: &Fixture, names: &[String]) {
    fx.up(&[]);
    for name in names {
        assert_eq!(status(name), "Running", "{name}");
        let (_, system) = profile(name).expect("a profile");
        assert_eq!(
            config(name, "user.inx.system").as_deref(),
            Some(system.as_str())
        );
    }
    up_again_changes_nothing(fx, names);
}

/// Ctrl-C during `up` of several containers: the steps already running end (Incus is never cut
/// off mid-create), no new one starts, inx exits 130 and removes its build roots; the next
/// `up` finishes every container.
#[test]
fn ctrl_c_during_up_lets_running_steps_end_exits_130_and_up_again_converges() {
    let _host = host!("ctrl_c_during_up");
    let fx = Fixture::new("sigint");
    let names = declare_four(&fx, "sigint");
    // `incus create` takes two seconds longer here, so Ctrl-C surely comes while it runs.
    let slow = fx.path().join("slow-create");
    std::fs::create_dir_all(&slow).unwrap();
    write_script(
        &slow.join("incus"),
        &format!(
            "case \" $* \" in *' create '*) sleep 2;; esac\nexec {} \"$@\"\n",
            which("incus").display()
        ),
    );
    let mut child = spawn_up(&fx, Some(&slow));
    let pid = child.id();
    let (mut reader, mut seen) = read_until(&mut child, "create the instance");
    std::thread::sleep(Duration::from_millis(500));
    signal(&format!("-{pid}"), "-INT");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
    seen.push_str(&rest);
    let code = child.wait().unwrap().code();
    assert_eq!(code, Some(130), "{seen}");
    assert!(seen.contains("interrupted"), "{seen}");
    assert!(
        !seen.contains(": start\n"),
        "no start after Ctrl-C:\n{seen}"
    );
    let states: Vec<String> = names.iter().map(|n| status(n)).collect();
    assert!(
        states.iter().all(|s| s == "absent" || s == "Stopped"),
        "nothing new started: {states:?}"
    );
    assert!(
        states.iter().any(|s| s == "Stopped"),
        "the creates that were running when Ctrl-C came ran to their end: {states:?}\n{seen}"
    );
    assert!(!build_roots_of(pid).exists(), "build roots removed");
    converged(&fx, &names);
}

/// A kill (-9) during `up`: nothing inx started is cut off (the steps run in their own process
/// groups), the build roots it leaves are swept by the next changing command, and the next
/// `up` finishes every container.
#[test]
fn a_killed_up_is_finished_by_the_next_and_its_build_roots_are_swept() {
    let _host = host!("killed_up");
    let fx = Fixture::new("sigkill");
    let names = declare_four(&fx, "sigkill");
    let mut child = spawn_up(&fx, None);
    let pid = child.id();
    let _ = read_until(&mut child, "create the instance");
    assert!(
        build_roots_of(pid).is_dir(),
        "the systems are rooted while up runs"
    );
    signal(&pid.to_string(), "-KILL");
    assert_eq!(child.wait().unwrap().code(), None, "killed");
    // The create that was running goes on by itself; the user's next `up` comes after it.
    for name in &names {
        wait_no_process(&format!("create --empty {name}"));
    }
    assert!(build_roots_of(pid).is_dir(), "left by the killed inx");
    converged(&fx, &names);
    assert!(!build_roots_of(pid).exists(), "swept by the next up");
}

/// A host GC that runs between the build and `nix-env --set` (here: `nix-store --delete` of
/// the new system, in a wrapper around nix-env) cannot take the system: the build rooted it.
#[test]
fn a_gc_between_build_and_profile_cannot_take_the_new_system() {
    let _host = host!("gc_between_build_and_profile");
    let fx = Fixture::new("rooted");
    let web = fx.name("web");
    let version = format!("rooted-{}", std::process::id());
    fx.declare(&[(
        &web,
        &format!("inx.lib.mkContainer {{ toplevel = sys \"{version}\"; }}"),
    )]);
    let real = which("nix-env");
    let bin = fx.path().join("gc-window");
    std::fs::create_dir_all(&bin).unwrap();
    let log = fx.path().join("deleted");
    write_script(
        &bin.join("nix-env"),
        &format!(
            "for a in \"$@\"; do case $a in /nix/store/*) nix-store --delete \"$a\" >>{log} 2>&1 && echo DELETED >>{log};; esac; done\nexec {real} \"$@\"\n",
            log = log.display(),
            real = real.display()
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let run = fx.inx_with(&["up"], |c| {
        c.env("PATH", &path);
    });
    let tried = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        tried.contains("still alive") || tried.contains("alive"),
        "the GC tried and was refused: {tried}"
    );
    assert!(
        !tried.contains("DELETED"),
        "the GC took the system: {tried}"
    );
    run.ok();
    let (_, system) = profile(&web).unwrap();
    assert!(system.ends_with(&version), "{system}");
    wait_active(&web, &system);
}

/// After `incus project switch`, inx works in that project without --project: the instance is
/// created there and its profile goes to that project's directory, apart from a container of
/// the same name in the default project. A client config of the test's own keeps the switch
/// away from everything else on the host.
#[test]
fn the_clients_current_project_holds_the_container_and_its_profile() {
    let _host = host!("current_project");
    let fx = Fixture::new("curproj");
    let web = fx.name("web");
    let project = "inx-e2e-current";
    let conf = fx.path().join("incus-client");
    std::fs::create_dir_all(&conf).unwrap();
    let incus = |args: &[&str]| incus_with(Some(&conf), args);
    test_project(project, &web, Some(&conf));
    let switched = incus(&["project", "switch", project]);
    assert!(switched.status.success(), "{switched:?}");
    let dir = Path::new(PROFILES)
        .join(".projects")
        .join(project)
        .join(&web);
    let _ = std::fs::remove_dir_all(&dir);
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);

    let env = |c: &mut Command| {
        c.env("INCUS_CONF", &conf);
    };
    fx.inx_with(&["up"], env).ok();
    let listed = incus(&["list", "--format", "json"]);
    let instances: Vec<serde_json::Value> = serde_json::from_slice(&listed.stdout).unwrap();
    let instance = instances.iter().find(|i| i["name"] == web.as_str());
    assert_eq!(
        instance.expect("listed in the project")["status"],
        "Running"
    );
    assert_eq!(status(&web), "absent", "nothing in the default project");
    assert!(
        dir.join("system").exists(),
        "profile under .projects/{project}/"
    );
    assert!(!Path::new(PROFILES).join(&web).exists());
    let list = fx.inx_with(&["--json", "list"], env).ok().json();
    assert_eq!(row(&list, &web)["state"], "running");

    fx.inx_with(&["destroy", "--force", &web], env).ok();
    assert!(!dir.exists());
    incus(&["project", "switch", "default"]);
    incus(&["project", "delete", project]);
}
