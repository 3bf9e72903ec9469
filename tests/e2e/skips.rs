//! One way for every test suite to skip: a test this host cannot run fails in CI, and outside
//! CI it is skipped loudly. cargo test captures a passing test's stderr, so each skip also goes
//! as one line into the file INX_TEST_SKIPS names (default: the target dir's
//! tmp/inx-test-skips), which scripts/test.sh prints after the run.

use std::path::{Path, PathBuf};

/// `kind` names the suite in the messages ("end-to-end", "flake"); `line` is what the list gets.
pub fn record(kind: &str, test: &str, line: &str, why: &str) {
    if in_ci(std::env::var_os("CI").as_deref()) {
        panic!("{kind} test {test} cannot run in CI: {why}");
    }
    eprintln!(
        "\n*** SKIPPED {kind} test {test}: {why}.\n*** Run README's test command (it provisions Nix, Incus and the rest) to run it.\n"
    );
    let file = std::env::var_os("INX_TEST_SKIPS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("inx-test-skips"));
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&file)
        .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}: {why}\n").as_bytes()));
    if let Err(e) = written {
        eprintln!("*** cannot record the skip in {}: {e}", file.display());
    }
}

/// CI systems set `CI` to `true` (or `1`); `CI=false`, `CI=0` or an empty `CI` is a user's
/// shell saying it is not CI.
pub fn in_ci(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !matches!(v.to_str(), Some("" | "0" | "false" | "no")))
}

#[test]
fn ci_means_a_ci_value_not_just_a_set_variable() {
    use std::ffi::OsStr;
    assert!(in_ci(Some(OsStr::new("true"))));
    assert!(in_ci(Some(OsStr::new("1"))));
    assert!(!in_ci(Some(OsStr::new("false"))));
    assert!(!in_ci(Some(OsStr::new("0"))));
    assert!(!in_ci(Some(OsStr::new(""))));
    assert!(!in_ci(None));
}
