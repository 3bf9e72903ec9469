//! What tests/flake.rs shares: finding the two Nix versions and the vendored nixpkgs lib,
//! preparing the nixpkgs stand-in, copying the repository, and running Nix with a failure
//! message that says what ran.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[path = "../e2e/skips.rs"]
mod skips;

/// A test's prerequisite, or why it is missing: a missing one skips the test as the end-to-end
/// tests skip (listed after the run; in CI it fails).
pub fn require<T>(test: &str, found: Result<T, String>) -> Option<T> {
    let why = match found {
        Ok(t) => return Some(t),
        Err(why) => why,
    };
    skips::record("flake", test, &format!("flake::{test}"), &why);
    None
}

/// `let x = need!(test, result);`: the value, or return from the test (see `require`).
macro_rules! need {
    ($test:expr, $found:expr) => {
        match support::require($test, $found) {
            Some(v) => v,
            None => return,
        }
    };
}

fn dir_from_env(var: &str, default: &str) -> PathBuf {
    std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(default))
}

#[derive(Clone, Debug)]
pub struct Nix {
    program: PathBuf,
    pub version: String,
}

impl Nix {
    fn find(var: &str, default: &str) -> Result<Nix, String> {
        let program = dir_from_env(var, default).join("nix");
        let out = Command::new(&program)
            .arg("--version")
            .output()
            .map_err(|e| {
                format!(
                    "cannot run {} ({e}); set {var} to a bin directory with Nix",
                    program.display()
                )
            })?;
        let said = String::from_utf8_lossy(&out.stdout);
        let version = said
            .split_whitespace()
            .last()
            .filter(|_| out.status.success())
            .ok_or_else(|| {
                format!(
                    "{} --version failed: {}",
                    program.display(),
                    String::from_utf8_lossy(&out.stderr)
                )
            })?
            .to_string();
        Ok(Nix { program, version })
    }

    /// Nix 2.18 or later (what current nixpkgs and lib.fileset need).
    pub fn modern() -> Result<Nix, String> {
        let nix = Nix::find("INX_TEST_NIX_MODERN", "/var/lib/inx-test/nix-2.26/bin")?;
        let minor = nix
            .version
            .split('.')
            .nth(1)
            .and_then(|m| m.parse::<u32>().ok());
        match (nix.version.starts_with("2."), minor) {
            (true, Some(m)) if m >= 18 => Ok(nix),
            _ => Err(format!(
                "{} is Nix {}, not 2.18 or later (INX_TEST_NIX_MODERN)",
                nix.program.display(),
                nix.version
            )),
        }
    }

    /// Whether this is Nix 2.`minor` or later.
    pub fn at_least(&self, minor: u32) -> bool {
        let mut parts = self
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        matches!((parts.next(), parts.next()), (Some(major), Some(m)) if major > 2 || (major == 2 && m >= minor))
    }

    /// The old Nix that the `toplevel` path must keep working on (Debian 12's 2.8).
    pub fn old() -> Result<Nix, String> {
        Nix::find("INX_TEST_NIX_OLD", "/usr/bin")
    }

    /// Runs `nix ARGS` in `cwd`: flakes on, no binary cache (there is no network), no eval
    /// cache (it would hide warnings on a second run). NIX_CONFIG is left as it is: these are
    /// flags, and `extra-` ones, so they add to it.
    pub fn run(&self, cwd: &Path, args: &[&str]) -> Ran {
        self.run_with_env(cwd, args, &[])
    }

    /// `run` with these environment variables set as well.
    pub fn run_with_env(&self, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut cmd = Command::new(&self.program);
        cmd.envs(env.iter().copied());
        cmd.args(["--extra-experimental-features", "nix-command flakes"])
            .args(["--option", "substituters", ""])
            .args(["--option", "eval-cache", "false"])
            .args(args)
            .current_dir(cwd);
        // A newer Nix must not open the store database itself: it would migrate the schema
        // under the system's older daemon.
        if std::env::var_os("NIX_REMOTE").is_none()
            && Path::new("/nix/var/nix/daemon-socket/socket").exists()
        {
            cmd.env("NIX_REMOTE", "daemon");
        }
        Ran::of(&format!("nix {}", self.version), cmd)
    }
}

/// A finished process, with what to say if it did not do what was expected.
pub struct Ran {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn of(label: &str, mut cmd: Command) -> Ran {
        let argv: Vec<String> = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let what = format!(
            "({label}) {}",
            shlex::try_join(argv.iter().map(String::as_str)).unwrap_or_else(|_| argv.join(" "))
        );
        let started = Instant::now();
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        eprintln!("[{:.1} s] {what}", started.elapsed().as_secs_f64());
        Ran {
            what,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(self) -> Ran {
        assert!(
            self.code == Some(0),
            "`{}` exited {:?}\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}):\n{}", self.what, self.stdout))
    }

    /// Nix's warnings (`warning:`, `evaluation warning:`, `trace: evaluation warning:`), less
    /// the `allowed` lines.
    pub fn warnings_except(&self, allowed: &[&str]) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.contains("warning:") && !allowed.contains(&l.trim_end()))
            .collect()
    }

    pub fn assert_no_warnings_except(&self, allowed: &[&str]) {
        let warnings = self.warnings_except(allowed);
        assert!(
            warnings.is_empty(),
            "`{}` printed warnings:\n{}\nfull stderr:\n{}",
            self.what,
            warnings.join("\n"),
            self.stderr
        );
    }
}

/// The vendored nixpkgs lib: `$INX_TEST_NIXPKGS_LIB`, or `../shared/vendor/nixpkgs-lib-*.tar.gz`
/// beside the repository (a dependency kept out of it).
pub fn nixpkgs_lib_tarball() -> Result<PathBuf, String> {
    if let Some(given) = std::env::var_os("INX_TEST_NIXPKGS_LIB") {
        let given = PathBuf::from(given);
        return if given.is_file() {
            Ok(given)
        } else {
            Err(format!(
                "INX_TEST_NIXPKGS_LIB={} does not exist",
                given.display()
            ))
        };
    }
    let vendor = repo().join("../shared/vendor");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&vendor)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("nixpkgs-lib-") && n.ends_with(".tar.gz"))
        })
        .collect();
    found.sort();
    found.pop().ok_or_else(|| {
        format!(
            "no nixpkgs-lib-*.tar.gz in {} (set INX_TEST_NIXPKGS_LIB to the vendored nixpkgs lib)",
            vendor.display()
        )
    })
}

/// tests/nix/nixpkgs with the real lib unpacked into it as `lib/`: made once per test process,
/// in a dir named after the content of both under the target's tmp dir, which later runs reuse.
pub fn stand_in(tarball: &Path) -> PathBuf {
    static ONCE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ONCE.get_or_init(|| prepare_stand_in(tarball)).clone()
}

fn prepare_stand_in(tarball: &Path) -> PathBuf {
    use sha2::{Digest, Sha256};
    let source = repo().join("tests/nix/nixpkgs");
    let mut files = Vec::new();
    walk(&source, &mut files);
    files.sort();
    let mut hash = Sha256::new();
    hash.update(std::fs::read(tarball).expect("read the nixpkgs lib tarball"));
    for f in &files {
        hash.update(
            f.strip_prefix(&source)
                .unwrap()
                .to_string_lossy()
                .as_bytes(),
        );
        hash.update([0]);
        hash.update(std::fs::read(f).unwrap());
    }
    let digest = format!("{:x}", hash.finalize());
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.join(format!("flake-nixpkgs-{}", &digest[..16]));
    if dir.join("lib/default.nix").exists() {
        return dir;
    }
    // Made beside it and renamed into place, so a concurrent test process never sees half.
    std::fs::create_dir_all(tmp).unwrap();
    let building = tempfile::Builder::new()
        .prefix("flake-nixpkgs-")
        .tempdir_in(tmp)
        .unwrap();
    copy_tree(&source, building.path());
    let mut tar = Command::new("tar");
    tar.arg("-xzf")
        .arg(tarball)
        .arg("-C")
        .arg(building.path())
        .args(["--strip-components=1", "--wildcards", "*/lib"]);
    Ran::of("tar", tar).ok();
    assert!(
        building.path().join("lib/default.nix").exists(),
        "{} has no lib/default.nix",
        tarball.display()
    );
    if std::fs::rename(building.path(), &dir).is_ok() {
        std::mem::forget(building);
    }
    dir
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.file_type().unwrap().is_dir() {
            walk(&e.path(), out);
        } else {
            out.push(e.path());
        }
    }
}

fn copy_tree(from: &Path, to: &Path) {
    let mut files = Vec::new();
    walk(from, &mut files);
    for f in files {
        let target = to.join(f.strip_prefix(from).unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&f, &target).unwrap();
    }
}

/// A temp dir holding a copy of the repository as git sees it (tracked files and untracked
/// ones that are not ignored: never target/) and the stand-in's path.
pub struct Bed {
    pub dir: tempfile::TempDir,
    pub inx: PathBuf,
    pub nixpkgs: PathBuf,
}

impl Bed {
    pub fn new(tarball: &Path) -> Bed {
        let dir = tempfile::Builder::new()
            .prefix("inx-flake-")
            .tempdir()
            .unwrap();
        let inx = dir.path().join("inx");
        let mut git = Command::new("git");
        git.arg("-C").arg(repo()).args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ]);
        let listed = Ran::of("git", git).ok().stdout;
        for rel in listed.split('\0').filter(|r| !r.is_empty()) {
            let from = repo().join(rel);
            let Ok(meta) = std::fs::symlink_metadata(&from) else {
                continue; // deleted in the work tree, still in the index
            };
            let to = inx.join(rel);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            if meta.file_type().is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(&from).unwrap(), &to).unwrap();
            } else {
                std::fs::copy(&from, &to).unwrap();
            }
        }
        Bed {
            dir,
            inx,
            nixpkgs: stand_in(tarball),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn inx_ref(&self) -> String {
        flake_ref(&self.inx)
    }

    pub fn nixpkgs_ref(&self) -> String {
        flake_ref(&self.nixpkgs)
    }
}

/// Always `path:`: a bare directory inside a git work tree would be read as that tree.
pub fn flake_ref(dir: &Path) -> String {
    format!("path:{}", dir.display())
}
