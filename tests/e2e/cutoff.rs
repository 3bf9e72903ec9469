//! Output a user cuts off or asks to be quiet: a reader that went away (`| head -1`) costs
//! the text, never the plan; `-q` hides Nix's build chatter and shows the log only when the
//! build fails; a Ctrl-C while `inx run` creates its instance never cuts the create.

use super::harness::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn declare_three(fx: &Fixture, version: &str) -> Vec<String> {
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| fx.name(s)).collect();
    let body: String = names
        .iter()
        .map(|n| {
            format!("        {n} = inx.lib.mkContainer {{ toplevel = sys \"{version}\"; }};\n")
        })
        .collect();
    fx.write_flake(&body);
    names
}

/// `inx up 2>&1 | head -1`: head leaves after one line, and inx's stdout and stderr are a
/// closed pipe from then on. inx still carries out its whole plan and exits 0; `up` again
/// finds nothing to do.
#[test]
fn up_whose_output_is_cut_off_finishes_its_plan_and_up_again_converges() {
    let _host = host!("up_output_cut_off");
    let fx = Fixture::new("cutoff");
    let version = format!("cutoff-{}", std::process::id());
    let names = declare_three(&fx, &version);
    let code_file = fx.path().join("inx-exit-code");
    let script = format!(
        "{} --flake {} up 2>&1 | head -1; echo \"${{PIPESTATUS[0]}}\" > {}",
        env!("CARGO_BIN_EXE_inx"),
        fx.user_dir().display(),
        code_file.display()
    );
    // Another inx on this host (exit 9) is waited for, as the harness does.
    let deadline = Instant::now() + Duration::from_secs(600);
    let (first, code) = loop {
        let out = Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let code = std::fs::read_to_string(&code_file).unwrap();
        if code.trim() != "9" || Instant::now() > deadline {
            break (String::from_utf8_lossy(&out.stdout).into_owned(), code);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(first.lines().count(), 1, "head printed one line: {first}");
    assert_eq!(code.trim(), "0", "inx's own exit code (101 is a panic)");
    for name in &names {
        assert_eq!(status(name), "Running", "{name}");
        let (_, system) = profile(name).expect("a profile");
        assert!(system.ends_with(&format!("inx-synthetic-system-{version}")));
    }
    up_again_changes_nothing(&fx, &names);
}

/// `-q`: a build's "will be built" / "building" lines are not shown when it succeeds (they
/// are without -q), and a failing build's log still is.
#[test]
fn quiet_up_hides_the_build_log_unless_the_build_fails() {
    let _host = host!("quiet_build_log");
    let fx = Fixture::new("quiet");
    let web = fx.name("web");
    let stamp = std::process::id();
    let decl = |v: &str| format!("inx.lib.mkContainer {{ toplevel = sys \"{v}\"; }}");
    fx.declare(&[(&web, &decl(&format!("quiet-{stamp}")))]);
    let quiet = fx.inx(&["up", "-q"]).ok();
    assert!(
        !quiet.stderr.contains("will be built") && !quiet.stderr.contains("building '"),
        "-q showed the build log:\n{}",
        quiet.stderr
    );
    assert_eq!(status(&web), "Running");
    // The same command without -q shows it (a new system, so there is a build).
    fx.declare(&[(&web, &decl(&format!("loud-{stamp}")))]);
    fx.inx(&["up"]).ok().stderr_has("building '");
    // A failing build: its log is shown with -q too, then the error (exit 5).
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = broken; }")]);
    fx.inx(&["up", "-q"])
        .code(5)
        .stderr_has("failing on purpose");
}

/// Ctrl-C while `inx run` creates its throw-away instance: the create (here slowed by a
/// wrapper) is not in the terminal's process group, so it runs to its end; inx then removes
/// the run and leaves nothing.
#[test]
fn ctrl_c_while_a_run_creates_its_instance_never_cuts_the_create() {
    use std::os::unix::process::CommandExt;
    let _host = host!("run_ctrl_c_create");
    let fx = Fixture::new("runcreate");
    let web = fx.name("web");
    fx.declare(&[(&web, "inx.lib.mkContainer { toplevel = sys \"1\"; }")]);
    let slow = fx.path().join("slow-create");
    std::fs::create_dir_all(&slow).unwrap();
    let created = fx.path().join("create-ran");
    write_script(
        &slow.join("incus"),
        &format!(
            "case \" $* \" in *' create '*) echo >{created}.started; sleep 2; {incus} \"$@\"; rc=$?; touch {created}; exit $rc;; esac\nexec {incus} \"$@\"\n",
            created = created.display(),
            incus = which("incus").display()
        ),
    );
    let child = Command::new(env!("CARGO_BIN_EXE_inx"))
        .env(
            "PATH",
            format!("{}:{}", slow.display(), std::env::var("PATH").unwrap()),
        )
        .arg("--flake")
        .arg(fx.user_dir())
        .args(["run", &web, "--", "/run/current-system/sw/bin/true"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    let started = created.with_extension("started");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !started.exists() {
        assert!(Instant::now() < deadline, "the run's create never began");
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(Command::new("kill")
        .args(["-INT", "--", &format!("-{}", child.id())])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(created.exists(), "the create was cut off:\n{stderr}");
    let left = leftovers(&format!("{web}-run-"));
    assert!(left.is_empty(), "left behind: {left:?}\n{stderr}");
}
