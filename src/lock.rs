//! One inx at a time changes a host's containers and profiles.

use crate::error::{Error, Kind, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// Held until dropped; the kernel releases it if inx dies.
pub struct Lock(#[allow(dead_code)] File);

pub fn acquire(path: &Path) -> Result<Lock> {
    let cannot = |e: std::io::Error| {
        Error::new(
            Kind::Failed,
            format!("cannot open the lock file {}: {e}", path.display()),
        )
        .with_hint(
            "inx keeps its host profiles and lock under /nix/var/nix/profiles/inx: run it as root",
        )
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(cannot)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(cannot)?;
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
        Err(TryLockError::Error(e)) => Err(cannot(e)),
    }
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
