//! Resolving a path inside a container's root without ever leaving it.
//!
//! The host must read links that a container (an untrusted user) wrote. Paths handed to the
//! kernel would follow an absolute link, or `..`, out of the container into the host, so the
//! walk is done here one name at a time: each name is looked up with `openat`/`readlinkat`
//! relative to an open directory, never following a link, and `..` is our own stack, which
//! cannot go above the root. The only paths accepted as answers are store paths.

use crate::name::StorePath;
use rustix::fs::{openat, readlinkat, statat, AtFlags, FileType, Mode, OFlags, CWD};
use rustix::io::Errno;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

/// As the kernel does: more links than this in one resolution is a loop.
const MAX_LINKS: usize = 40;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// The path leads to this store path (or into it).
    Store(StorePath),
    /// It certainly does not: missing, a file or directory outside the store, or a loop.
    Not(String),
    /// It could not be read (permissions, an I/O error, the container went away): keep what
    /// was known.
    Unknown(String),
}

/// Resolves `path` (absolute, as the container sees it) inside the directory `root`.
pub fn resolve(root: &Path, path: &str) -> Resolved {
    Resolver::new(root).resolve(path)
}

/// Resolves many paths inside one root. A full sync asks every container about every auto
/// link on the host (a thousand on a busy one), and most lead nowhere in most containers: the
/// resolver opens the root once, keeps the plain directories it walked (reached by names
/// alone, no link or `..` on the way) open, and once a directory has been asked about many
/// names, reads its names once and answers a missing one without a lookup. So a path costs
/// about one lookup instead of one per name, and a missing one under a listed directory none.
/// Answers are the same as one walk each: everything past a link or `..` is walked as before.
pub struct Resolver {
    root: Result<Rc<OwnedFd>, String>,
    dirs: HashMap<Vec<OsString>, Plain>,
    /// Directories kept open: at most `MAX_OPEN`, past which they are walked as before (a
    /// container with thousands of build links must not run the watcher out of descriptors).
    open: usize,
}

/// The most directories one resolver keeps open.
const MAX_OPEN: usize = 256;

/// What the resolver knows of a path below the root.
enum Plain {
    /// A directory, open, with how often a name in it was looked up and, past `LIST_AFTER`
    /// lookups, its names.
    Dir {
        fd: Rc<OwnedFd>,
        lookups: usize,
        names: Option<HashSet<OsString>>,
    },
    /// Not there.
    Missing,
    /// Something else (a link, a file, unreadable): walked without the cache.
    Other,
}

/// Lookups in one directory after which reading its names is cheaper than looking up more.
const LIST_AFTER: usize = 16;

impl Resolver {
    pub fn new(root: &Path) -> Self {
        let root = openat(
            CWD,
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map(Rc::new)
        .map_err(|e| format!("cannot open {}: {e}", root.display()));
        Resolver {
            root,
            dirs: HashMap::new(),
            open: 0,
        }
    }

    pub fn resolve(&mut self, path: &str) -> Resolved {
        let root_fd = match &self.root {
            Ok(fd) => Rc::clone(fd),
            Err(e) => return Resolved::Unknown(e.clone()),
        };
        let mut todo: VecDeque<OsString> = components(path.as_bytes()).collect();
        // The directories walked so far below the root, with their names.
        let mut stack: Vec<(OsString, Rc<OwnedFd>)> = Vec::new();
        // Plain names first, through what is known.
        let mut prefix: Vec<OsString> = Vec::new();
        while let Some(name) = todo.front() {
            if matches!(name.as_bytes(), b"." | b"..") || at_store(&stack) {
                break;
            }
            let dir = stack.last().map_or(&root_fd, |(_, fd)| fd);
            if let Some(Plain::Dir {
                names: Some(names), ..
            }) = self.dirs.get(&prefix)
            {
                if !names.contains(name) {
                    return error(Errno::NOENT, name);
                }
            }
            prefix.push(name.clone());
            if !self.dirs.contains_key(&prefix) {
                let known = self.look_up(dir, &prefix);
                self.dirs.insert(prefix.clone(), known);
            }
            match &self.dirs[&prefix] {
                Plain::Dir { fd, .. } => {
                    let fd = Rc::clone(fd);
                    stack.push((todo.pop_front().expect("a name"), fd));
                }
                Plain::Missing => return error(Errno::NOENT, name),
                Plain::Other => break,
            }
        }
        walk(&root_fd, stack, todo)
    }

    /// Looks up the last name of `path` in `dir` (the directory `path`'s parent), counting the
    /// lookup against the parent and reading the parent's names once it had enough.
    fn look_up(&mut self, dir: &OwnedFd, path: &[OsString]) -> Plain {
        let (name, parent) = path.split_last().expect("a name");
        if let Some(Plain::Dir { lookups, names, .. }) = self.dirs.get_mut(parent) {
            *lookups += 1;
            if names.is_none() && *lookups > LIST_AFTER {
                *names = list(dir);
            }
        } else if parent.is_empty() {
            // The root itself: counted like any directory.
            let fd = Rc::clone(self.root.as_ref().expect("an open root"));
            self.dirs.insert(
                Vec::new(),
                Plain::Dir {
                    fd,
                    lookups: 1,
                    names: None,
                },
            );
        }
        match statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(_) if self.open >= MAX_OPEN => Plain::Other,
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => {
                self.open += 1;
                match openat(
                    dir,
                    name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => Plain::Dir {
                        fd: Rc::new(fd),
                        lookups: 0,
                        names: None,
                    },
                    Err(_) => Plain::Other,
                }
            }
            Err(Errno::NOENT) => Plain::Missing,
            _ => Plain::Other,
        }
    }
}

/// The names in a directory, or none when it cannot be read.
fn list(dir: &OwnedFd) -> Option<HashSet<OsString>> {
    let readable = openat(
        dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .ok()?;
    let mut names = HashSet::new();
    for entry in rustix::fs::Dir::read_from(&readable).ok()? {
        let entry = entry.ok()?;
        names.insert(OsString::from(std::ffi::OsStr::from_bytes(
            entry.file_name().to_bytes(),
        )));
    }
    Some(names)
}

/// Whether the walk stands in /nix/store, where the next name is the answer.
fn at_store(stack: &[(OsString, Rc<OwnedFd>)]) -> bool {
    stack.len() == 2 && stack[0].0 == "nix" && stack[1].0 == "store"
}

/// The walk, one name at a time, from `stack` (directories already walked) with `todo` left.
fn walk(
    root_fd: &OwnedFd,
    mut stack: Vec<(OsString, Rc<OwnedFd>)>,
    mut todo: VecDeque<OsString>,
) -> Resolved {
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        match name.as_bytes() {
            b"." => continue,
            b".." => {
                stack.pop();
                continue;
            }
            _ => {}
        }
        // Below /nix/store, the name is the answer: the host store is what the container sees
        // there (bound read-only), and a stopped container's mount point is empty.
        if at_store(&stack) {
            let candidate = format!("/nix/store/{}", name.to_string_lossy());
            return match StorePath::parse(&candidate) {
                Ok(p) => Resolved::Store(p),
                Err(_) => Resolved::Not(format!("{candidate} is not a store path")),
            };
        }
        let dir = stack.last().map_or(root_fd.as_fd(), |(_, fd)| fd.as_fd());
        let stat = match statat(dir, &name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(s) => s,
            Err(e) => return error(e, &name),
        };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::Symlink => {
                links += 1;
                if links > MAX_LINKS {
                    return Resolved::Not("too many links (a loop)".into());
                }
                let target = match readlinkat(dir, &name, Vec::new()) {
                    Ok(t) => t.into_bytes(),
                    Err(e) => return error(e, &name),
                };
                if target.first() == Some(&b'/') {
                    stack.clear();
                }
                for (i, part) in components(&target).enumerate() {
                    todo.insert(i, part);
                }
            }
            FileType::Directory => {
                let fd = match openat(
                    dir,
                    &name,
                    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                    Mode::empty(),
                ) {
                    Ok(fd) => fd,
                    Err(e) => return error(e, &name),
                };
                stack.push((name, Rc::new(fd)));
            }
            _ if todo.is_empty() => return Resolved::Not("a file outside the store".into()),
            _ => return Resolved::Not(format!("{} is not a directory", name.to_string_lossy())),
        }
    }
    Resolved::Not("a directory outside the store".into())
}

fn components(path: &[u8]) -> impl Iterator<Item = OsString> + '_ {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| OsString::from(std::ffi::OsStr::from_bytes(c)))
}

/// A name that is not there (or stopped being a directory) answers the question; any other
/// error leaves it open.
fn error(e: Errno, name: &std::ffi::OsStr) -> Resolved {
    let what = format!("{}: {e}", name.to_string_lossy());
    match e {
        Errno::NOENT | Errno::NOTDIR => Resolved::Not(what),
        _ => Resolved::Unknown(what),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    const STORE: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-result";

    /// A container root at `OUTER/c`; `OUTER` has a /nix/store of its own, so a walk that
    /// escaped the root would find a store path where a confined walk finds nothing.
    struct Fixture {
        outer: tempfile::TempDir,
    }

    impl Fixture {
        fn new(store_inside: bool) -> Self {
            let outer = tempfile::tempdir().unwrap();
            let o = outer.path();
            std::fs::create_dir_all(o.join(STORE.trim_start_matches('/'))).unwrap();
            std::fs::create_dir_all(o.join("c/root/proj")).unwrap();
            std::fs::create_dir_all(o.join("c/etc")).unwrap();
            std::fs::write(o.join("c/etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
            if store_inside {
                std::fs::create_dir_all(o.join("c/nix/store")).unwrap();
            }
            Fixture { outer }
        }

        fn root(&self) -> std::path::PathBuf {
            self.outer.path().join("c")
        }

        fn link(&self, link: &str, target: &str) {
            symlink(target, self.root().join(link.trim_start_matches('/'))).unwrap();
        }

        fn resolve(&self, path: &str) -> Resolved {
            resolve(&self.root(), path)
        }
    }

    fn store() -> Resolved {
        Resolved::Store(StorePath::parse(STORE).unwrap())
    }

    #[test]
    fn follows_links_to_a_store_path() {
        let f = Fixture::new(true);
        f.link("/root/proj/result", STORE);
        f.link("/result", "root/proj/result");
        f.link("/root/up", "../root/proj/./result");
        f.link("/root/bin", &format!("{STORE}/bin/hello"));
        // `..` above the root stays at the root, as in a chroot.
        f.link("/root/store", &format!("../../../..{STORE}"));
        for path in [
            "/result",
            "/root/proj/result",
            "/root/up",
            "//root/proj/../proj/result",
            "/root/bin",
            "/root/store",
        ] {
            assert_eq!(f.resolve(path), store(), "{path}");
        }
    }

    #[test]
    fn never_leaves_the_root() {
        let f = Fixture::new(false);
        let outer = f.outer.path().display().to_string();
        f.link("/root/dots", &format!("../..{STORE}"));
        f.link("/root/abs", &format!("{outer}{STORE}"));
        f.link("/root/dir", "..");
        f.link("/root/passwd", "/etc/passwd");
        f.link("/root/a", "/root/b");
        f.link("/root/b", "/root/a");
        f.link("/root/self", "/root/self/x");
        for path in [
            "/root/dots",
            "/root/abs",
            &format!("/root/dir/..{STORE}"),
            &format!("/..{STORE}"),
            "/root/passwd",
            "/root/a",
            "/root/self",
            "/etc/passwd/x",
            "/missing",
        ] {
            let got = f.resolve(path);
            assert!(matches!(got, Resolved::Not(_)), "{path}: {got:?}");
        }
        // The escape routes above were real: the same links in a root that has a store
        // lead there, so only confinement made them fail.
        let with_store = Fixture::new(true);
        with_store.link("/root/dots", &format!("../..{STORE}"));
        assert_eq!(with_store.resolve("/root/dots"), store());
    }

    #[test]
    fn a_name_under_the_store_that_is_no_store_path_is_refused() {
        let f = Fixture::new(true);
        f.link("/x", "/nix/store/not-a-store-path");
        assert!(matches!(f.resolve("/x"), Resolved::Not(_)));
        assert!(matches!(f.resolve("/nix/store"), Resolved::Not(_)));
    }

    /// One resolver asked about many paths (enough missing names under one directory that
    /// it reads that directory's names) answers each as a walk of its own does.
    #[test]
    fn a_resolver_reused_for_many_paths_answers_as_single_walks() {
        let f = Fixture::new(true);
        f.link("/root/proj/result", STORE);
        f.link("/root/up", "../root/proj/./result");
        f.link("/root/passwd", "/etc/passwd");
        f.link("/tmp", "root");
        let mut paths: Vec<String> = (0..3 * LIST_AFTER)
            .map(|i| format!("/root/missing-{i}/result"))
            .collect();
        paths.extend(
            [
                "/root/proj/result",
                "/root/up",
                "/root/passwd",
                "/tmp/proj/result",
                "/tmp/missing/result",
                "/root/proj/../proj/result",
                "/root/proj/result/bin",
                "/etc/passwd/x",
                "/nix/store",
            ]
            .map(String::from),
        );
        let mut resolver = Resolver::new(&f.root());
        // Twice over: the second round is answered from what the first one cached.
        for path in paths.iter().chain(&paths) {
            assert_eq!(resolver.resolve(path), f.resolve(path), "{path}");
        }
        assert!(
            matches!(
                resolver.dirs.get(&vec![OsString::from("root")]),
                Some(Plain::Dir { names: Some(_), .. })
            ),
            "/root was asked about enough names to be read once"
        );
        // A name made after the listing is not seen by this resolver (a sync is one moment),
        // but a new one sees it.
        f.link("/root/late", STORE);
        assert_eq!(Resolver::new(&f.root()).resolve("/root/late"), store());
    }

    /// Past `MAX_OPEN` directories a resolver walks as a single walk does, with the same
    /// answers and no more descriptors.
    #[test]
    fn a_resolver_past_its_open_directories_answers_the_same() {
        let f = Fixture::new(true);
        let mut paths = Vec::new();
        for i in 0..MAX_OPEN + 8 {
            std::fs::create_dir_all(f.root().join(format!("root/p{i}"))).unwrap();
            f.link(&format!("/root/p{i}/result"), STORE);
            paths.push(format!("/root/p{i}/result"));
            paths.push(format!("/root/p{i}/missing"));
        }
        let mut resolver = Resolver::new(&f.root());
        for path in &paths {
            assert_eq!(resolver.resolve(path), f.resolve(path), "{path}");
        }
        assert_eq!(resolver.open, MAX_OPEN);
    }

    #[test]
    fn an_unreadable_root_is_unknown_not_gone() {
        assert!(matches!(
            resolve(Path::new("/nonexistent-inx-root"), "/result"),
            Resolved::Unknown(_)
        ));
    }
}
