//! A container's GC roots folder as the executor writes it (`Action::WriteRoots`,
//! `WriteSnapshotRoots`, `RemoveRoots`): its `r-*` links and their index, its snapshot links.
//! Which roots a container has is decided in the roots domain.

use crate::name::StorePath;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

pub const INDEX: &str = "roots.json";
const LINK_PREFIX: &str = "r-";

/// What a container's roots are: the path inside the container each came from, and the
/// store path it led to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    pub roots: BTreeMap<String, StorePath>,
}

/// The link's name: a hash of the path it came from, so the same path always has the same one.
pub fn link_name(origin: &str) -> String {
    // FNV-1a, 64 bits: stable across versions and platforms, which std's hasher is not.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in origin.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{LINK_PREFIX}{h:016x}")
}

/// Makes the directory hold exactly `index`'s links: new ones first, then the index, then
/// the removals, so a crash leaves extra roots, never missing ones. Links named `r-*` that the
/// index does not list (left by an interrupted run) are ours and go too.
pub fn write(dir: &Path, index: &Index) -> io::Result<()> {
    let wanted: BTreeMap<String, &StorePath> = index
        .roots
        .iter()
        .map(|(origin, path)| (link_name(origin), path))
        .collect();
    if !wanted.is_empty() {
        crate::host_files::create_dir_all(dir)?;
    }
    for (link, path) in &wanted {
        let at = dir.join(link);
        if std::fs::read_link(&at).ok().as_deref() == Some(Path::new(path.as_str())) {
            continue;
        }
        let tmp = dir.join(format!(".{link}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(path.as_str(), &tmp)?;
        std::fs::rename(&tmp, &at)?;
    }
    if wanted.is_empty() {
        match std::fs::remove_file(dir.join(INDEX)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    } else {
        let tmp = dir.join(format!(".{INDEX}.tmp"));
        std::fs::write(&tmp, serde_json::to_string_pretty(index)?)?;
        std::fs::rename(&tmp, dir.join(INDEX))?;
    }
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let ours = name.starts_with(LINK_PREFIX) && entry.file_type().is_ok_and(|t| t.is_symlink());
        if ours && !wanted.contains_key(name) {
            std::fs::remove_file(entry.path())?;
        }
    }
    if wanted.is_empty() {
        // Only when nothing else is in it: inx never removes what it did not make.
        let _ = std::fs::remove_dir(dir);
    }
    Ok(())
}

/// The snapshot roots in `dir` now: each link's name and where it leads.
pub fn read_links(dir: &Path) -> BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_symlink()))
        .filter_map(|e| {
            let target = std::fs::read_link(e.path()).ok()?;
            Some((
                e.file_name().to_str()?.to_string(),
                target.to_str()?.to_string(),
            ))
        })
        .collect()
}

/// Makes `dir` hold exactly `links` (name -> store path): new and changed ones first, by
/// rename, then the others go; with none left, the folder goes too. Only links are removed.
pub fn write_links(dir: &Path, links: &BTreeMap<String, StorePath>) -> io::Result<()> {
    if !links.is_empty() {
        crate::host_files::create_dir_all(dir)?;
    }
    let now = read_links(dir);
    for (name, path) in links {
        if now.get(name).map(String::as_str) == Some(path.as_str()) {
            continue;
        }
        let tmp = dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(path.as_str(), &tmp)?;
        std::fs::rename(&tmp, dir.join(name))?;
    }
    for name in now.keys().filter(|n| !links.contains_key(*n)) {
        std::fs::remove_file(dir.join(name))?;
    }
    if links.is_empty() {
        match std::fs::remove_dir(dir) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// What `write_links` does, as a script.
pub fn links_to_shell(dir: &Path, links: &BTreeMap<String, StorePath>) -> String {
    let q = |p: &Path| crate::cmd::quote(&p.display().to_string());
    if links.is_empty() {
        return format!("rm -rf {}", q(dir));
    }
    let mut lines = vec![format!("mkdir -p {}", q(dir))];
    for (name, path) in links {
        lines.push(format!("ln -sfn {} {}", path.as_str(), q(&dir.join(name))));
    }
    lines.join("\n")
}

/// What `write` does, as a script a user could read: the links, then the index (an empty
/// index removes them all).
pub fn to_shell(dir: &Path, index: &Index) -> String {
    let q = |p: &Path| crate::cmd::quote(&p.display().to_string());
    let d = q(dir);
    if index.roots.is_empty() {
        return format!("rm -f {d}/{LINK_PREFIX}* {d}/{INDEX} && rmdir {d}");
    }
    let mut lines = vec![format!("mkdir -p {d}")];
    for (origin, path) in &index.roots {
        lines.push(format!(
            "ln -sfn {} {}",
            path.as_str(),
            q(&dir.join(link_name(origin)))
        ));
    }
    let json = serde_json::to_string_pretty(index).expect("an index serialises");
    lines.push(format!("cat >{d}/{INDEX} <<'INX_EOF'\n{json}\nINX_EOF"));
    lines.join("\n")
}
