//! One inx at a time changes a host's containers and profiles.

use crate::error::{Error, Kind, Result};
use std::fs::{File, TryLockError};
use std::path::Path;

/// Held until dropped; the kernel releases it if inx dies.
pub struct Lock(#[allow(dead_code)] File);

pub fn acquire(path: &Path) -> Result<Lock> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Lock(file)),
        Err(TryLockError::WouldBlock) => Err(Error::new(
            Kind::Locked,
            format!(
                "another inx is changing containers on this host (it holds {})",
                path.display()
            ),
        )
        .with_hint("wait for it to finish and run this again")),
        Err(TryLockError::Error(e)) => Err(cannot(path, e)),
    }
}

/// Waits for the lock: for short, repeatable work (a roots sync) that may queue.
pub fn wait(path: &Path) -> Result<Lock> {
    let file = open(path)?;
    file.lock().map_err(|e| cannot(path, e))?;
    Ok(Lock(file))
}

fn cannot(path: &Path, e: std::io::Error) -> Error {
    Error::new(
        Kind::Failed,
        format!("cannot open the lock file {}: {e}", path.display()),
    )
    .with_hint("inx keeps its locks under /nix/var/nix: run it as root, or as a member of the group that owns that folder (incus-admin with nixosModules.host)")
}

fn open(path: &Path) -> Result<File> {
    let cannot = |e| cannot(path, e);
    if let Some(dir) = path.parent() {
        crate::host_files::create_dir_all(dir).map_err(cannot)?;
    }
    crate::host_files::open_lock_file(path).map_err(cannot)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/.lock");
        let first = acquire(&path).unwrap();
        assert_eq!(acquire(&path).err().unwrap().kind, Kind::Locked);
        drop(first);
        assert!(acquire(&path).is_ok());
    }
}
