//! GC roots for what containers build.
//!
//! A build made inside a container through the host daemon leaves
//! `gcroots/auto/<hash> -> /path/in/the/container/result`. The host cannot resolve that path,
//! so its next GC (or root query) deletes the link and collects the result. inx resolves each
//! such path inside each of its containers (see `confine`) and keeps what it finds as a direct
//! root, `gcroots/inx/NAME/r-<hash of the path>`, with an index (`roots.json`) of where each
//! came from, so it can tell when the container's link is gone even after the auto link is.
//! A snapshot's system is kept too, for as long as the snapshot exists:
//! `gcroots/inx/NAME/snapshots/SNAP` links to the system the container ran when it was taken
//! (the `user.inx.system` of the snapshot's config), so a restore finds it.
//! Nothing here writes outside `gcroots/inx`, and only links named `r-*` and the links in
//! `snapshots/` are ever removed.

pub mod build_roots;
pub mod confine;

// A container's roots folder is written by the executor, as a plan's step.
use crate::execute::roots::INDEX;
pub use crate::execute::roots::{read_links, Index};

use crate::name::{ContainerName, StorePath};
use confine::Resolved;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

const SNAPSHOTS: &str = "snapshots";

/// Nix's state directory (`NIX_STATE_DIR`, as Nix reads it), `/nix/var/nix` by default.
pub fn nix_state_dir() -> PathBuf {
    std::env::var_os("NIX_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/nix/var/nix"))
}

/// Where inx keeps roots, and where Nix keeps the links it calls indirect roots.
#[derive(Debug, Clone)]
pub struct Layout {
    pub base: PathBuf,
    pub auto: PathBuf,
}

/// One inx container as far as roots go. `root` is where its filesystem can be read now;
/// `None` means it cannot be (then its roots are kept as they are).
#[derive(Debug, Clone)]
pub struct Container {
    pub project: String,
    pub name: ContainerName,
    pub root: Option<PathBuf>,
    /// Its storage volume's root filesystem as the host sees it (if the pool shows it).
    pub volume: PathBuf,
    /// Whether it carries inx's marker now; an instance without it gets no new roots but
    /// keeps the ones it has.
    pub managed: bool,
    /// Its snapshots and the system each was taken with (`user.inx.system` in its config).
    pub snapshots: BTreeMap<String, StorePath>,
}

#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub total: usize,
    /// Roots not made because the container reached the cap.
    pub over_cap: usize,
    /// Why roots were kept without being checked, if they were.
    pub kept_unchecked: Option<String>,
}

impl Layout {
    pub fn new() -> Self {
        let gcroots = nix_state_dir().join("gcroots");
        Layout {
            base: gcroots.join("inx"),
            auto: gcroots.join("auto"),
        }
    }

    /// The layout on another host: always under Nix's default state folder there.
    pub fn on_other_host() -> Self {
        let gcroots = PathBuf::from("/nix/var/nix/gcroots");
        Layout {
            base: gcroots.join("inx"),
            auto: gcroots.join("auto"),
        }
    }

    /// `inx/NAME` for the default project, `inx/.projects/PROJECT/NAME` for others, as the
    /// profiles are laid out.
    pub fn dir(&self, project: &str, name: &ContainerName) -> PathBuf {
        if project == "default" {
            self.base.join(name.as_str())
        } else {
            self.base
                .join(".projects")
                .join(project)
                .join(name.as_str())
        }
    }

    pub fn lock_file(&self) -> PathBuf {
        self.base.join(".lock")
    }

    /// Where a container's snapshots keep their systems: a link per snapshot, named after it.
    pub fn snapshots_dir(&self, project: &str, name: &ContainerName) -> PathBuf {
        self.dir(project, name).join(SNAPSHOTS)
    }

    /// The paths Nix was asked to keep (the targets of `gcroots/auto`), read as they are now.
    pub fn auto_origins(&self) -> BTreeSet<String> {
        let Ok(entries) = std::fs::read_dir(&self.auto) else {
            return BTreeSet::new();
        };
        entries
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter_map(|t| t.to_str().map(str::to_string))
            .filter(|t| t.starts_with('/'))
            .collect()
    }

    /// Every container that has a roots directory, as (project, name).
    pub fn known(&self) -> Vec<(String, ContainerName)> {
        let mut found = Vec::new();
        let names = |dir: &Path| -> Vec<ContainerName> {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .filter_map(|e| ContainerName::parse(e.file_name().to_str()?).ok())
                .collect()
        };
        for name in names(&self.base) {
            found.push(("default".to_string(), name));
        }
        let projects = self.base.join(".projects");
        for project in std::fs::read_dir(&projects).into_iter().flatten().flatten() {
            let Some(p) = project.file_name().to_str().map(str::to_string) else {
                continue;
            };
            for name in names(&project.path()) {
                found.push((p.clone(), name));
            }
        }
        found
    }
}

/// How deep a sync looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// Every root is checked again, and every candidate.
    Full,
    /// Only the candidates (links that just appeared): the fast path of the watcher, which
    /// must root a build before the host's next root query deletes its link.
    NewOnly,
}

/// Decides a container's roots: each candidate path is resolved inside its root. A root stays
/// while its path still leads to a store path the host has; "cannot tell" keeps it; the cap
/// keeps old roots before new ones.
pub fn decide(
    old: &Index,
    root: Option<&Path>,
    candidates: &BTreeSet<String>,
    depth: Depth,
    host_has: &dyn Fn(&StorePath) -> bool,
    cap: usize,
) -> (Index, Change) {
    let mut change = Change::default();
    let Some(root) = root else {
        change.total = old.roots.len();
        change.kept_unchecked = Some("its filesystem cannot be read now".into());
        return (old.clone(), change);
    };
    // The fast path starts from what is known and only adds or moves roots.
    let (mut found, to_check): (BTreeMap<String, StorePath>, BTreeSet<&String>) = match depth {
        Depth::Full => (
            BTreeMap::new(),
            old.roots.keys().chain(candidates).collect(),
        ),
        Depth::NewOnly => (old.roots.clone(), candidates.iter().collect()),
    };
    let mut unknown = Vec::new();
    // One resolver for all: the same directories are asked about again and again.
    let mut resolver = confine::Resolver::new(root);
    for origin in to_check {
        match resolver.resolve(origin) {
            Resolved::Store(path) if host_has(&path) => {
                found.insert(origin.clone(), path);
            }
            Resolved::Store(_) | Resolved::Not(_) => {}
            Resolved::Unknown(why) => {
                if let Some(path) = old.roots.get(origin) {
                    found.insert(origin.clone(), path.clone());
                    unknown.push(why);
                }
            }
        }
    }
    let (kept, new): (Vec<_>, Vec<_>) = found
        .into_iter()
        .partition(|(origin, _)| old.roots.contains_key(origin));
    let mut next = Index::default();
    for (origin, path) in kept.into_iter().chain(new) {
        if next.roots.len() >= cap {
            change.over_cap += 1;
            continue;
        }
        next.roots.insert(origin, path);
    }
    for (origin, path) in &next.roots {
        if old.roots.get(origin) != Some(path) {
            change.added.push(origin.clone());
        }
    }
    for origin in old.roots.keys() {
        if !next.roots.contains_key(origin) {
            change.removed.push(origin.clone());
        }
    }
    change.total = next.roots.len();
    if !unknown.is_empty() {
        change.kept_unchecked = Some(unknown.join("; "));
    }
    (next, change)
}

/// Reads a container's index; a missing one is empty. A damaged one is an error, so the
/// caller keeps that container's roots rather than guess.
pub fn read_index(dir: &Path) -> io::Result<Index> {
    match std::fs::read_to_string(dir.join(INDEX)) {
        Ok(text) => serde_json::from_str(&text).map_err(io::Error::other),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Index::default()),
        Err(e) => Err(e),
    }
}

/// Whether the link at `path` was made in the last minute (see the snapshot roots in
/// `commands::roots`).
pub fn is_recent(path: &Path) -> bool {
    std::fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execute::roots::{link_name, write};
    use std::os::unix::fs::symlink;

    const A: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-a";
    const B: &str = "/nix/store/1123456789abcdfghijklmnpqrsvwxyz-b";

    fn sp(s: &str) -> StorePath {
        StorePath::parse(s).unwrap()
    }

    fn container_root() -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("nix/store")).unwrap();
        std::fs::create_dir_all(root.path().join("root")).unwrap();
        root
    }

    fn set(items: &[&str]) -> BTreeSet<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn roots_follow_the_containers_links() {
        let root = container_root();
        symlink(A, root.path().join("root/result")).unwrap();
        symlink("/etc/shadow", root.path().join("root/evil")).unwrap();
        let all = |_: &StorePath| true;
        let candidates = set(&["/root/result", "/root/evil", "/nowhere"]);

        let (first, change) = decide(
            &Index::default(),
            Some(root.path()),
            &candidates,
            Depth::Full,
            &all,
            10,
        );
        assert_eq!(
            first.roots,
            BTreeMap::from([("/root/result".into(), sp(A))])
        );
        assert_eq!(change.added, vec!["/root/result"]);

        // The auto link is gone (the host deleted it as stale): the index still knows.
        let (again, change) = decide(&first, Some(root.path()), &set(&[]), Depth::Full, &all, 10);
        assert_eq!(again, first);
        assert!(change.added.is_empty() && change.removed.is_empty());

        // A new build moved the link: the root moves with it.
        std::fs::remove_file(root.path().join("root/result")).unwrap();
        symlink(B, root.path().join("root/result")).unwrap();
        let (moved, _) = decide(&first, Some(root.path()), &set(&[]), Depth::Full, &all, 10);
        assert_eq!(moved.roots["/root/result"], sp(B));

        // The watcher's fast path adds and moves, and never drops: a link it was not told
        // about is left to the next full sync.
        symlink(A, root.path().join("root/other")).unwrap();
        let (fast, change) = decide(
            &first,
            Some(root.path()),
            &set(&["/root/other", "/root/result", "/nowhere"]),
            Depth::NewOnly,
            &all,
            10,
        );
        assert_eq!(fast.roots["/root/other"], sp(A));
        assert_eq!(fast.roots["/root/result"], sp(B), "a rebuilt result moves");
        assert_eq!(change.added, vec!["/root/other", "/root/result"]);
        std::fs::remove_file(root.path().join("root/other")).unwrap();
        let (fast, _) = decide(
            &fast,
            Some(root.path()),
            &set(&["/root/x"]),
            Depth::NewOnly,
            &all,
            10,
        );
        assert!(
            fast.roots.contains_key("/root/other"),
            "the fast path dropped a root"
        );

        // `rm result`: the root goes.
        std::fs::remove_file(root.path().join("root/result")).unwrap();
        let (gone, change) = decide(&moved, Some(root.path()), &set(&[]), Depth::Full, &all, 10);
        assert!(gone.roots.is_empty());
        assert_eq!(change.removed, vec!["/root/result"]);
    }

    #[test]
    fn what_cannot_be_read_is_kept() {
        let old = Index {
            roots: BTreeMap::from([("/root/result".into(), sp(A))]),
        };
        let all = |_: &StorePath| true;
        let (next, change) = decide(&old, None, &set(&["/x"]), Depth::Full, &all, 10);
        assert_eq!(next, old);
        assert!(change.kept_unchecked.is_some());
        let (next, _) = decide(
            &old,
            Some(Path::new("/nonexistent")),
            &set(&[]),
            Depth::Full,
            &all,
            10,
        );
        assert_eq!(next, old);
    }

    #[test]
    fn paths_the_host_lacks_are_not_rooted_and_the_cap_keeps_old_roots() {
        let root = container_root();
        symlink(A, root.path().join("root/a")).unwrap();
        symlink(B, root.path().join("root/b")).unwrap();
        let only_a = |p: &StorePath| p.as_str() == A;
        let (next, _) = decide(
            &Index::default(),
            Some(root.path()),
            &set(&["/root/a", "/root/b"]),
            Depth::Full,
            &only_a,
            10,
        );
        assert_eq!(next.roots.keys().collect::<Vec<_>>(), ["/root/a"]);

        let all = |_: &StorePath| true;
        let old = Index {
            roots: BTreeMap::from([("/root/b".into(), sp(B))]),
        };
        let (capped, change) = decide(
            &old,
            Some(root.path()),
            &set(&["/root/a"]),
            Depth::Full,
            &all,
            1,
        );
        assert_eq!(capped, old);
        assert_eq!(change.over_cap, 1);
    }

    #[test]
    fn write_makes_the_links_and_removes_only_its_own() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("web");
        let index = Index {
            roots: BTreeMap::from([("/root/result".into(), sp(A))]),
        };
        write(&d, &index).unwrap();
        let link = d.join(link_name("/root/result"));
        assert_eq!(std::fs::read_link(&link).unwrap(), Path::new(A));
        assert_eq!(read_index(&d).unwrap(), index);

        symlink(B, d.join("someone-elses")).unwrap();
        symlink(B, d.join("r-0000000000000000")).unwrap();
        write(&d, &Index::default()).unwrap();
        assert!(std::fs::symlink_metadata(&link).is_err());
        assert!(std::fs::symlink_metadata(d.join("someone-elses")).is_ok());
        assert!(std::fs::symlink_metadata(d.join("r-0000000000000000")).is_err());
        std::fs::remove_file(d.join("someone-elses")).unwrap();
        write(&d, &Index::default()).unwrap();
        assert!(!d.exists());
    }

    #[test]
    fn link_names_are_stable() {
        assert_eq!(link_name("/result"), link_name("/result"));
        assert_ne!(link_name("/result"), link_name("/result2"));
        assert_eq!(link_name("").len(), 18);
    }
}
