//! What inx makes under /nix/var/nix (host profiles, build roots, GC roots, locks) is shared
//! with the group of the folder above it: folders 2770, lock files 0660. With
//! `nixosModules.host` that group is incus-admin (lib/modules/inx.tmpfiles makes the top
//! folders so), and every member may run inx while other users get nothing; the setgid bit
//! keeps what is made inside in that group. The modes are set explicitly: a umask (022 by
//! default) would take the group's write, and the next member could not update a container
//! the first one made.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub const DIR_MODE: u32 = 0o2770;

/// inx's host profiles, where the executor makes folders shared (see `profiles_root`).
pub const PROFILES_ROOT: &str = "/nix/var/nix/profiles/inx";

/// `PROFILES_ROOT`, or where `INX_PROFILES_DIR` moves it, for tests that must not touch the
/// host's profiles.
pub fn profiles_root() -> PathBuf {
    std::env::var_os("INX_PROFILES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(PROFILES_ROOT))
}
pub const FILE_MODE: u32 = 0o660;

/// Nix's own folders, which every user must be able to enter (users' profiles and roots are
/// inside). A fresh Nix 2.34 store has no `profiles` until something makes a profile, so inx
/// may be the first to make it: as Nix does, 0755.
const NIX_DIRS: [&str; 5] = [
    "/nix",
    "/nix/var",
    "/nix/var/nix",
    "/nix/var/nix/profiles",
    "/nix/var/nix/gcroots",
];

/// The mode of a folder inx makes: Nix's own 0755, inx's shared.
fn dir_mode(path: &Path) -> u32 {
    if NIX_DIRS.iter().any(|d| path == Path::new(d)) {
        0o755
    } else {
        DIR_MODE
    }
}

/// `std::fs::create_dir_all`, with each folder it makes shared (DIR_MODE), but Nix's own.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    if path.as_os_str().is_empty() || path.is_dir() {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        create_dir_all(parent)?;
    }
    match std::fs::create_dir(path) {
        Ok(()) => std::fs::set_permissions(path, Permissions::from_mode(dir_mode(path))),
        // Made by another inx in the meantime.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => Ok(()),
        Err(e) => Err(e),
    }
}

/// `std::fs::create_dir`, the folder shared (DIR_MODE).
pub fn create_dir(path: &Path) -> io::Result<()> {
    std::fs::create_dir(path)?;
    std::fs::set_permissions(path, Permissions::from_mode(DIR_MODE))
}

/// Opens `path` for writing (a lock file), made shared (FILE_MODE) if this call made it.
pub fn open_lock_file(path: &Path) -> io::Result<File> {
    match OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => {
            file.set_permissions(Permissions::from_mode(FILE_MODE))?;
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            OpenOptions::new().write(true).open(path)
        }
        Err(e) => Err(e),
    }
}

/// Whether this process runs as root: what `roots` and `gc` need (see `commands::needs_root`).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn folders_and_lock_files_are_shared_with_the_group_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), Permissions::from_mode(0o700)).unwrap();
        use rustix::fs::Mode;
        // The usual umask; other tests in this process create nothing that minds it.
        let old = rustix::process::umask(Mode::from_raw_mode(0o022));
        let deep = tmp.path().join("a/b/c");
        create_dir_all(&deep).unwrap();
        let one = tmp.path().join("d");
        create_dir(&one).unwrap();
        let lock = deep.join(".lock");
        drop(open_lock_file(&lock).unwrap());
        rustix::process::umask(old);
        for dir in ["a", "a/b", "a/b/c", "d"] {
            assert_eq!(mode(&tmp.path().join(dir)), DIR_MODE, "{dir}");
        }
        assert_eq!(mode(&lock), FILE_MODE);
        // The folder that was there keeps its own mode.
        assert_eq!(mode(tmp.path()), 0o700);
    }

    #[test]
    fn nix_folders_that_inx_makes_stay_open_to_every_user() {
        assert_eq!(dir_mode(Path::new("/nix/var/nix/profiles")), 0o755);
        assert_eq!(dir_mode(Path::new("/nix/var/nix/gcroots")), 0o755);
        assert_eq!(dir_mode(Path::new("/nix/var/nix/profiles/inx")), DIR_MODE);
        assert_eq!(
            dir_mode(Path::new("/nix/var/nix/gcroots/inx/web")),
            DIR_MODE
        );
    }

    #[test]
    fn an_existing_lock_file_is_opened_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::set_permissions(tmp.path(), Permissions::from_mode(0o700)).unwrap();
        let lock = tmp.path().join(".lock");
        std::fs::write(&lock, "").unwrap();
        std::fs::set_permissions(&lock, Permissions::from_mode(0o600)).unwrap();
        drop(open_lock_file(&lock).unwrap());
        assert_eq!(mode(&lock), 0o600);
        create_dir_all(tmp.path()).unwrap();
        assert_eq!(mode(tmp.path()), 0o700, "an existing folder is left alone");
    }
}
