//! README's "Try it", checked as a new user meets it. scripts/test.sh runs `scripts/try.sh`
//! twice before anything else (on CI's fresh machine: before Nix or Incus is installed) and
//! keeps what each run printed in `$INX_TEST_TRY_LOG.{1,2}.{out,err,rc}`. This test reads
//! those, checks that the example's container runs and serves its page, then runs
//! `try.sh --undo` and checks that nothing of it is left. Without those logs (a plain
//! `cargo test`) it is skipped, or fails in CI.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

#[path = "e2e/skips.rs"]
mod skips;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const CONTAINER: &str = "demo";
const PAGE: &str = "hello from inx (system 1)";

struct TryRun {
    n: u32,
    out: String,
    err: String,
    rc: String,
}

impl TryRun {
    fn read(base: &Path, n: u32) -> TryRun {
        let part = |ext: &str| {
            let file = PathBuf::from(format!("{}.{n}.{ext}", base.display()));
            std::fs::read_to_string(&file)
                .unwrap_or_else(|e| panic!("try.sh run {n}: cannot read {}: {e}", file.display()))
        };
        TryRun {
            n,
            out: part("out"),
            err: part("err"),
            rc: part("rc").trim().to_string(),
        }
    }

    fn assert_printed(&self, what: &str, text: &str) {
        assert!(
            self.out.contains(text) || self.err.contains(text),
            "try.sh run {} did not print {what} ({text:?}):\n--- stdout\n{}\n--- stderr\n{}",
            self.n,
            self.out,
            self.err
        );
    }
}

/// The body of `GET /` on the host's loopback port, where the example's proxy device listens.
fn page_on_loopback() -> std::io::Result<String> {
    let mut conn = std::net::TcpStream::connect("127.0.0.1:8080")?;
    conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))?;
    conn.write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut reply = String::new();
    conn.read_to_string(&mut reply)?;
    Ok(reply
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_string())
        .unwrap_or_default())
}

fn incus_state(name: &str) -> String {
    let out = Command::new("incus")
        .args(["list", "--format", "csv", "--columns", "ns"])
        .arg(format!("^{name}$"))
        .output()
        .expect("incus runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// try.sh's commands with the Nix it ran with (Debian's, in /usr/bin) first on PATH: a lock
/// file written by one Nix may be refused by an older one.
fn user_path() -> String {
    let old = std::env::var("INX_TEST_NIX_OLD").unwrap_or_else(|_| "/usr/bin".into());
    format!("{old}:{}", std::env::var("PATH").unwrap_or_default())
}

#[test]
fn try_it_brings_up_the_offline_example_twice_and_undo_removes_it() {
    let test = "try_it_brings_up_the_offline_example_twice_and_undo_removes_it";
    let Some(base) = std::env::var_os("INX_TEST_TRY_LOG").map(PathBuf::from) else {
        skips::record(
            "try-it",
            test,
            &format!("try_it::{test}"),
            "INX_TEST_TRY_LOG is not set: scripts/test.sh (as root) runs scripts/try.sh and sets it",
        );
        return;
    };
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));

    // The first run: the host prepared, inx built, the container created and started.
    let first = TryRun::read(&base, 1);
    assert_eq!(
        first.rc, "0",
        "try.sh run 1 failed:\n{}\n{}",
        first.out, first.err
    );
    for step in ["1/4 the host", "2/4 inx", "3/4", "4/4 inx up"] {
        first.assert_printed("its step", step);
    }
    // Created then, or by an earlier try on this host: either way `list` shows it running.
    first.assert_printed("the list", "NAME  STATE    GEN  SYSTEM");
    first.assert_printed("the container running", "demo  running");
    first.assert_printed("the page it fetched", PAGE);
    for next in [
        "inx shell demo",
        "then: inx up",
        "inx rollback demo",
        "inx destroy demo",
        "scripts/try.sh --undo",
    ] {
        first.assert_printed("what to type next", next);
    }
    // No network here: the NixOS examples are not offered as ready to run.
    first.assert_printed("where the NixOS examples run", "need nixpkgs");

    // The second run changes nothing.
    let second = TryRun::read(&base, 2);
    assert_eq!(
        second.rc, "0",
        "try.sh run 2 failed:\n{}\n{}",
        second.out, second.err
    );
    second.assert_printed("that nothing changed", "demo: up to date");
    for change in ["create the instance", "switch to", "demo: start"] {
        assert!(
            !second.err.contains(change),
            "try.sh run 2 changed something ({change}):\n{}",
            second.err
        );
    }

    // What it left running: the container, its profile, and the page through the proxy.
    assert_eq!(incus_state(CONTAINER), "demo,RUNNING");
    assert!(Path::new("/nix/var/nix/profiles/inx/demo/system").exists());
    assert_eq!(page_on_loopback().expect("GET 127.0.0.1:8080"), PAGE);
    let list = Command::new(env!("CARGO_BIN_EXE_inx"))
        .arg("list")
        .env("PATH", user_path())
        .current_dir("/var/lib/inx-try/offline")
        .output()
        .expect("inx runs");
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.status.success() && listed.contains("demo  running  1"),
        "inx list in /var/lib/inx-try/offline: {listed}{}",
        String::from_utf8_lossy(&list.stderr)
    );

    // What the next steps say: edit the page in the copy, `inx up` (with the Nix try.sh
    // used, after the checkout's target/ changed under it), and the page follows in place.
    let work = Path::new("/var/lib/inx-try/offline");
    let flake = std::fs::read_to_string(work.join("flake.nix")).unwrap();
    assert!(flake.contains("hello from inx"), "{flake}");
    std::fs::write(
        work.join("flake.nix"),
        flake.replace("hello from inx", "hello again from inx"),
    )
    .unwrap();
    let up = Command::new(env!("CARGO_BIN_EXE_inx"))
        .arg("up")
        .env("PATH", user_path())
        .current_dir(work)
        .output()
        .expect("inx runs");
    assert!(
        up.status.success(),
        "inx up after editing the page: {}",
        String::from_utf8_lossy(&up.stderr)
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let page = page_on_loopback().unwrap_or_default();
        if page == "hello again from inx (system 1)" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page did not change after the edit: {page:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // Undo: no container, no profile, no roots, no link, no state.
    let undo = Command::new(repo.join("scripts/try.sh"))
        .arg("--undo")
        .env("PATH", user_path())
        .output()
        .expect("try.sh runs");
    let said = String::from_utf8_lossy(&undo.stderr);
    assert!(undo.status.success(), "try.sh --undo failed:\n{said}");
    assert_eq!(incus_state(CONTAINER), "", "after undo:\n{said}");
    for gone in [
        "/nix/var/nix/profiles/inx/demo",
        "/nix/var/nix/gcroots/inx/demo",
        "/var/lib/inx-try",
    ] {
        assert!(
            std::fs::symlink_metadata(gone).is_err(),
            "{gone} is left after try.sh --undo:\n{said}"
        );
    }
    // The link try.sh made (another inx found there would have been left alone).
    assert_ne!(
        std::fs::read_link("/usr/local/bin/inx").ok(),
        Some(PathBuf::from(env!("CARGO_BIN_EXE_inx"))),
        "try.sh --undo left its link in /usr/local/bin"
    );
    assert!(
        page_on_loopback().is_err(),
        "127.0.0.1:8080 still answers after undo"
    );
}
