//! GC roots for what a command builds, from the moment the build makes it until a profile holds
//! it (or the command ends). A path that exists but nothing roots is fair game for the host's
//! garbage collector: without these, a GC between `nix-store --realise` and `nix-env --set`
//! would delete the systems inx is about to deploy.
//!
//! Each running inx owns `ROOT/.builds/PID/` (the build adds its links there with `--add-root`)
//! and holds `ROOT/.builds/PID.lock` while it lives. The folder goes when the command ends; one
//! left by an inx that was killed is removed by the next inx that finds its lock free.

use crate::error::{Error, Kind, Result};
use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where this process's build roots go: `base/PID/`. Pure, so plans can name it.
pub fn dir_for(base: &Path) -> PathBuf {
    base.join(std::process::id().to_string())
}

/// The link `nix-store --add-root` is given; it adds `-2`, `-3`, ... for further paths.
pub fn link_for(base: &Path) -> PathBuf {
    dir_for(base).join("r")
}

/// This process's build roots folder, made and owned until dropped.
pub struct BuildRoots {
    dir: PathBuf,
    lock_path: PathBuf,
    _lock: File,
}

impl BuildRoots {
    pub fn hold(base: &Path) -> Result<Self> {
        let cannot = |what: &str, p: &Path, e: std::io::Error| {
            Error::new(Kind::Failed, format!("cannot {what} {}: {e}", p.display()))
                .with_hint("inx keeps build roots under /nix/var/nix/profiles/inx: run it as root, or as a member of the group that owns that folder (incus-admin with nixosModules.host)")
        };
        crate::host_files::create_dir_all(base).map_err(|e| cannot("create", base, e))?;
        sweep(base);
        let dir = dir_for(base);
        let lock_path = dir.with_extension("lock");
        // A sweeper may take and unlink a lock file between our open and our lock: then the
        // file we hold is gone, and we make a new one.
        let lock = loop {
            let file = crate::host_files::open_lock_file(&lock_path)
                .map_err(|e| cannot("create", &lock_path, e))?;
            file.lock().map_err(|e| cannot("lock", &lock_path, e))?;
            if file.metadata().is_ok_and(|m| m.nlink() > 0) {
                break file;
            }
        };
        // Left by a killed inx that had our PID.
        let _ = std::fs::remove_dir_all(&dir);
        crate::host_files::create_dir(&dir).map_err(|e| cannot("create", &dir, e))?;
        Ok(BuildRoots {
            dir,
            lock_path,
            _lock: lock,
        })
    }
}

impl Drop for BuildRoots {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_file(&self.lock_path);
    }
}

/// Removes the build roots of every inx that is gone (its lock is free). A folder without a
/// lock file is gone too: a build that outlived its inx (interrupted, say) can make its
/// folder again with `--add-root` after that inx removed it. The sweeper takes such a
/// folder's lock itself, so an inx that is making it right then (lock first, folder next)
/// either holds the lock already or finds its lock file unlinked and makes a new one.
pub fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    let owners: std::collections::BTreeSet<std::ffi::OsString> = entries
        .flatten()
        .filter_map(|e| {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "lock") {
                path.file_stem().map(|s| s.to_os_string())
            } else if e.file_type().is_ok_and(|t| t.is_dir()) {
                Some(e.file_name())
            } else {
                None
            }
        })
        .collect();
    for owner in owners {
        let dir = base.join(&owner);
        let lock_path = dir.with_extension("lock");
        let Ok(file) = crate::host_files::open_lock_file(&lock_path) else {
            continue;
        };
        match file.try_lock() {
            Ok(()) => {
                let _ = std::fs::remove_dir_all(&dir);
                let _ = std::fs::remove_file(&lock_path);
            }
            Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_roots_survive_a_sweep_and_go_when_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join(".builds");
        let held = BuildRoots::hold(&base).unwrap();
        std::os::unix::fs::symlink("/nix/store/x", link_for(&base)).unwrap();
        sweep(&base);
        assert!(
            link_for(&base).symlink_metadata().is_ok(),
            "a live inx keeps its roots"
        );
        drop(held);
        assert!(!dir_for(&base).exists());
        assert!(!dir_for(&base).with_extension("lock").exists());
    }

    #[test]
    fn roots_of_a_dead_inx_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join(".builds");
        // What a killed inx leaves: its folder and an unlocked lock file.
        std::fs::create_dir_all(base.join("999999999")).unwrap();
        std::os::unix::fs::symlink("/nix/store/x", base.join("999999999/r")).unwrap();
        std::fs::write(base.join("999999999.lock"), "").unwrap();
        let held = BuildRoots::hold(&base).unwrap();
        assert!(!base.join("999999999").exists());
        assert!(!base.join("999999999.lock").exists());
        assert!(dir_for(&base).is_dir());
        drop(held);
    }

    #[test]
    fn a_folder_without_a_lock_file_is_swept_and_a_held_one_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join(".builds");
        // What a build that outlived its inx leaves: the folder `--add-root` made again.
        std::fs::create_dir_all(base.join("999999998")).unwrap();
        std::os::unix::fs::symlink("/nix/store/x", base.join("999999998/r")).unwrap();
        let held = BuildRoots::hold(&base).unwrap();
        std::os::unix::fs::symlink("/nix/store/x", link_for(&base)).unwrap();
        sweep(&base);
        assert!(!base.join("999999998").exists(), "the orphan folder goes");
        assert!(
            !base.join("999999998.lock").exists(),
            "and the lock it took"
        );
        assert!(
            link_for(&base).symlink_metadata().is_ok(),
            "a live inx keeps its roots"
        );
        drop(held);
    }
}
