//! Throw-away containers (`inx run`). A run is an ephemeral Incus instance of a declared
//! container's system under a name of its own, with its own host profile,
//! `ROOT/.runs/RUN/system`; the inx that made it holds `ROOT/.runs/RUN.lock` for as long as
//! it lives. When it ends it deletes the instance and the profile. One that was killed leaves
//! both and a free lock: the next inx that changes things finds them (`stale`) and removes
//! them, with one `incus delete` per stale run and no listing.

use crate::containers::profile::Profiles;
use crate::error::{Error, Kind, Result};
use crate::name::{ContainerName, ProjectName};
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};

/// The instance's config key that marks a run (its value: the pid of the inx that made it).
pub const KEY_RUN: &str = "user.inx.run";

/// Where runs keep their profiles and locks.
pub fn base() -> PathBuf {
    Profiles::root().join(".runs")
}

/// `NAME-run-PID`, cut to fit Incus's 63 characters.
pub fn name_for(name: &ContainerName, pid: u32) -> ContainerName {
    let suffix = format!("-run-{pid}");
    let keep = 63 - suffix.len();
    let stem = name.as_str()[..name.as_str().len().min(keep)].trim_end_matches('-');
    ContainerName::parse(&format!("{stem}{suffix}")).expect("a run's name is a container name")
}

/// A throw-away run (`inx run`) that this inx holds, or a stale one that it took over to
/// remove.
pub struct Throwaway {
    pub name: ContainerName,
    pub project: ProjectName,
    /// Its host profile folder, bound into the instance.
    pub dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
    /// Keep the lock file and the project record when dropped: the run is not removed yet.
    pub keep: bool,
}

impl Throwaway {
    /// Takes the run's lock and records its project, before anything of it exists.
    pub fn hold(base: &Path, name: ContainerName, project: ProjectName) -> Result<Throwaway> {
        let cannot = |e: std::io::Error| {
            Error::new(
                Kind::Failed,
                format!("cannot prepare the run in {}: {e}", base.display()),
            )
            .with_hint("inx keeps host profiles under /nix/var/nix/profiles/inx: run it as root, or as a member of the group that owns that folder (incus-admin with nixosModules.host)")
        };
        crate::host_files::create_dir_all(base).map_err(cannot)?;
        let dir = base.join(name.as_str());
        let lock_path = dir.with_extension("lock");
        let lock = crate::host_files::open_lock_file(&lock_path).map_err(cannot)?;
        lock.lock().map_err(cannot)?;
        std::fs::write(base.join(format!("{name}.project")), project.as_str()).map_err(cannot)?;
        Ok(Throwaway {
            name,
            project,
            dir,
            lock_path,
            _lock: lock,
            keep: false,
        })
    }
}

impl Drop for Throwaway {
    /// The lock and the project record go last, after the cleanup removed the rest.
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let _ = std::fs::remove_file(self.lock_path.with_extension("project"));
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// The runs whose inx is gone (their lock is free), taken over so that nobody else removes
/// them at the same time. A run's folder without a lock file counts too (its lock is made
/// and taken here), as the build roots' sweep does.
pub fn stale(base: &Path) -> Vec<Throwaway> {
    let Ok(entries) = std::fs::read_dir(base) else {
        return Vec::new();
    };
    let names: std::collections::BTreeSet<ContainerName> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            let stem = if path.extension().is_some_and(|x| x == "lock") {
                path.file_stem()?.to_str()?.to_string()
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                e.file_name().to_str()?.to_string()
            } else {
                return None;
            };
            ContainerName::parse(&stem).ok()
        })
        .collect();
    let mut found = Vec::new();
    for name in names {
        let lock_path = base.join(format!("{name}.lock"));
        let Ok(file) = crate::host_files::open_lock_file(&lock_path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => continue,
        }
        let project = std::fs::read_to_string(lock_path.with_extension("project"))
            .ok()
            .and_then(|p| ProjectName::parse(p.trim()).ok())
            .unwrap_or_else(|| ProjectName::parse("default").expect("a project name"));
        found.push(Throwaway {
            dir: base.join(name.as_str()),
            name,
            project,
            lock_path,
            _lock: file,
            keep: false,
        });
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runs_name_fits_incus_and_ends_in_its_pid() {
        let short = ContainerName::parse("web").unwrap();
        assert_eq!(name_for(&short, 4821).as_str(), "web-run-4821");
        let long = ContainerName::parse(&"a".repeat(63)).unwrap();
        let run = name_for(&long, 4_194_304);
        assert!(run.as_str().len() <= 63, "{run}");
        assert!(run.as_str().ends_with("-run-4194304"), "{run}");
    }

    #[test]
    fn a_held_run_is_not_stale_and_a_dead_ones_is() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join(".runs");
        let project = ProjectName::parse("lab").unwrap();
        let held =
            Throwaway::hold(&base, ContainerName::parse("web-run-1").unwrap(), project).unwrap();
        // What a killed inx leaves: a free lock and the project record.
        std::fs::write(base.join("db-run-2.lock"), "").unwrap();
        std::fs::write(base.join("db-run-2.project"), "default").unwrap();
        let stale = stale(&base);
        let names: Vec<&str> = stale.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["db-run-2"]);
        assert_eq!(stale[0].project.as_str(), "default");
        drop(stale);
        assert!(
            !base.join("db-run-2.lock").exists(),
            "taken over, then let go"
        );
        drop(held);
        assert!(!base.join("web-run-1.lock").exists());
        assert!(!base.join("web-run-1.project").exists());
    }

    #[test]
    fn a_runs_folder_without_a_lock_is_stale() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join(".runs");
        std::fs::create_dir_all(base.join("web-run-3")).unwrap();
        let stale = stale(&base);
        let names: Vec<&str> = stale.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["web-run-3"]);
        assert_eq!(stale[0].project.as_str(), "default");
    }
}
