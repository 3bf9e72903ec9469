//! Writing folders so that a failure leaves nothing half-written: files go into a temporary
//! folder on the same file system, which is renamed into place last, and removed if anything
//! fails before that.

use crate::error::{Error, Kind, Result};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

pub struct Staging {
    dir: PathBuf,
    /// Folders made for the target's parent (`mkdir -p`), deepest first: removed again, when
    /// empty, if nothing is committed.
    made: Vec<PathBuf>,
    done: bool,
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::new(
        Kind::Failed,
        format!("cannot {what} {}: {e}", path.display()),
    )
    .with_hint("nothing was written; give a folder on a writable file system")
}

impl Staging {
    /// A temporary folder beside `target` (which is not there yet, or is an empty folder).
    /// Missing parent folders of `target` are made, as `mkdir -p` does.
    pub fn beside(target: &Path) -> Result<Self> {
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "out".into());
        let made: Vec<PathBuf> = parent
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && a.symlink_metadata().is_err())
            .map(Path::to_path_buf)
            .collect();
        let mut staging = Staging {
            dir: parent.join(format!(".{name}.inx-tmp-{}", std::process::id())),
            made,
            done: false,
        };
        std::fs::create_dir_all(&parent).map_err(|e| io_error("create", &parent, e))?;
        staging.make()?;
        Ok(staging)
    }

    /// A temporary folder inside an existing folder, for adding to it.
    pub fn inside(dir: &Path) -> Result<Self> {
        let mut staging = Staging {
            dir: dir.join(format!(".inx-tmp-{}", std::process::id())),
            made: Vec::new(),
            done: false,
        };
        staging.make()?;
        Ok(staging)
    }

    fn make(&mut self) -> Result<()> {
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir(&self.dir).map_err(|e| io_error("create", &self.dir, e))
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    fn parent_of(&self, rel: &str) -> Result<PathBuf> {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
        }
        Ok(path)
    }

    /// Copies a file in; files from the store are read-only, copies are not.
    /// Copying and writing are where a Ctrl-C stops (the staged folder then goes with
    /// `Drop`); the renames that publish it are quick and always run to the end.
    pub fn copy(&self, from: &Path, rel: &str) -> Result<()> {
        super::interrupt::check()?;
        let to = self.parent_of(rel)?;
        std::fs::copy(from, &to).map_err(|e| io_error("write", &to, e))?;
        std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o644))
            .map_err(|e| io_error("write", &to, e))
    }

    pub fn write(&self, rel: &str, contents: &[u8]) -> Result<()> {
        super::interrupt::check()?;
        let to = self.parent_of(rel)?;
        std::fs::write(&to, contents).map_err(|e| io_error("write", &to, e))
    }

    /// Renames one staged file or folder to `to` (its parent folders are made).
    pub fn move_out(&self, rel: &str, to: &Path) -> Result<()> {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_error("create", parent, e))?;
        }
        std::fs::rename(self.path(rel), to).map_err(|e| io_error("write", to, e))
    }

    /// The whole staged folder becomes `target` (rename(2) replaces an empty folder).
    pub fn commit_as(mut self, target: &Path) -> Result<()> {
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io_error("write", &self.dir, e))?;
        std::fs::rename(&self.dir, target).map_err(|e| io_error("write", target, e))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.dir);
            for dir in &self.made {
                let _ = std::fs::remove_dir(dir);
            }
        }
    }
}

/// A folder to write, as a plan's step (`Action::WriteFolder`): made whole (staged beside it,
/// then renamed into place) or added to (staged inside it, then each of `publish` renamed into
/// place in order, so readers of its index files, which go last, never see a half-written
/// entry).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Folder {
    pub dir: PathBuf,
    pub new: bool,
    pub files: Vec<FolderFile>,
    /// For a folder added to: what is renamed into place, in order.
    pub publish: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FolderFile {
    /// Relative to the folder.
    pub path: String,
    #[serde(flatten)]
    pub content: Content,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Content {
    /// A copy of this file (from the store: the copy is made writable).
    Copy(PathBuf),
    Text(String),
    /// `sha256sum` lines of these files of the folder (hashed when written, not planned).
    Sha256Sums(Vec<String>),
}

/// Carries out a `Folder`: nothing is half-written, and a failure (or Ctrl-C) leaves nothing.
pub fn write(folder: &Folder) -> Result<()> {
    let staged = if folder.new {
        Staging::beside(&folder.dir)?
    } else {
        Staging::inside(&folder.dir)?
    };
    for file in &folder.files {
        match &file.content {
            Content::Copy(from) => staged.copy(from, &file.path)?,
            Content::Text(text) => staged.write(&file.path, text.as_bytes())?,
            Content::Sha256Sums(of) => {
                let mut sums = String::new();
                for rel in of {
                    let hash = crate::digest::sha256_file(&staged.path(rel))?;
                    sums.push_str(&format!("{hash}  {rel}\n"));
                }
                staged.write(&file.path, sums.as_bytes())?
            }
        }
    }
    if folder.new {
        return staged.commit_as(&folder.dir);
    }
    for rel in &folder.publish {
        staged.move_out(rel, &folder.dir.join(rel))?;
    }
    Ok(())
}

/// What `write` does, as a script a user could read.
pub fn to_shell(folder: &Folder) -> String {
    let q = |p: &Path| crate::cmd::quote(&p.display().to_string());
    let stage = if folder.new {
        let parent = folder.dir.parent().unwrap_or(Path::new("."));
        format!("stage=$(mktemp -d {}/.inx-tmp-XXXXXX)", q(parent))
    } else {
        format!("stage=$(mktemp -d {}/.inx-tmp-XXXXXX)", q(&folder.dir))
    };
    let mut lines = vec![stage];
    for file in &folder.files {
        let at = format!("\"$stage\"/{}", crate::cmd::quote(&file.path));
        let dir = Path::new(&file.path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty());
        if let Some(dir) = dir {
            lines.push(format!("mkdir -p \"$stage\"/{}", q(dir)));
        }
        lines.push(match &file.content {
            Content::Copy(from) => format!("cp {} {at}", q(from)),
            Content::Text(text) => {
                format!("cat >{at} <<'INX_EOF'\n{}\nINX_EOF", text.trim_end())
            }
            Content::Sha256Sums(of) => format!(
                "(cd \"$stage\" && sha256sum {}) >{at}",
                of.iter()
                    .map(|f| crate::cmd::quote(f))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
        });
    }
    if folder.new {
        lines.push(format!("mv \"$stage\" {}", q(&folder.dir)));
    } else {
        for rel in &folder.publish {
            lines.push(format!(
                "mv \"$stage\"/{} {}",
                crate::cmd::quote(rel),
                q(&folder.dir.join(rel))
            ));
        }
        lines.push("rm -rf \"$stage\"".to_string());
    }
    lines.join("\n")
}

/// Whether `dir` is missing or an empty folder (a target a staged folder can replace).
pub fn free_target(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir).map(|mut entries| entries.next().is_none()) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::input(format!(
            "{} already exists and is not empty",
            dir.display()
        ))
        .with_hint("give a new folder (inx never writes over files)")),
        Err(e) => Err(io_error("use", dir, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_staging_leaves_nothing_and_a_commit_replaces_an_empty_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("out");
        {
            let s = Staging::beside(&target).unwrap();
            s.write("a/b.txt", b"x").unwrap();
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

        std::fs::create_dir(&target).unwrap();
        free_target(&target).unwrap();
        let s = Staging::beside(&target).unwrap();
        s.write("a/b.txt", b"x").unwrap();
        s.commit_as(&target).unwrap();
        assert_eq!(std::fs::read(target.join("a/b.txt")).unwrap(), b"x");
        assert_eq!(free_target(&target).unwrap_err().kind, Kind::Input);
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    }

    /// A target in folders that do not exist yet gets them (as `mkdir -p`); if nothing is
    /// committed, the folders made for it go again.
    #[test]
    fn missing_parents_are_made_and_removed_again_when_nothing_is_committed() {
        let tmp = tempfile::tempdir().unwrap();
        let target = tmp.path().join("a/b/out");
        {
            let s = Staging::beside(&target).unwrap();
            s.write("x.txt", b"x").unwrap();
            assert!(tmp.path().join("a/b").is_dir());
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);

        let s = Staging::beside(&target).unwrap();
        s.write("x.txt", b"x").unwrap();
        s.commit_as(&target).unwrap();
        assert_eq!(std::fs::read(target.join("x.txt")).unwrap(), b"x");
        assert_eq!(
            std::fs::read_dir(tmp.path().join("a/b")).unwrap().count(),
            1
        );
    }

    fn file(path: &str, content: Content) -> FolderFile {
        FolderFile {
            path: path.to_string(),
            content,
        }
    }

    /// A new folder gets its copies, texts and sums, all at once; a folder added to gets the
    /// new parts, and nothing of the staging is left in it.
    #[test]
    fn a_folder_is_written_whole_or_added_to() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("src");
        std::fs::write(&src, "abc").unwrap();
        let dir = tmp.path().join("out/new");
        let folder = Folder {
            dir: dir.clone(),
            new: true,
            files: vec![
                file("a/copy", Content::Copy(src.clone())),
                file("text", Content::Text("hi\n".into())),
                file("SUMS", Content::Sha256Sums(vec!["a/copy".into()])),
            ],
            publish: Vec::new(),
        };
        write(&folder).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("a/copy")).unwrap(), "abc");
        assert_eq!(std::fs::read_to_string(dir.join("text")).unwrap(), "hi\n");
        assert_eq!(
            std::fs::read_to_string(dir.join("SUMS")).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad  a/copy\n"
        );
        let added = Folder {
            dir: dir.clone(),
            new: false,
            files: vec![
                file("v2/copy", Content::Copy(src)),
                file("text", Content::Text("v2\n".into())),
            ],
            publish: vec!["v2".into(), "text".into()],
        };
        write(&added).unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("text")).unwrap(), "v2\n");
        assert!(dir.join("v2/copy").is_file() && dir.join("a/copy").is_file());
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "staging left behind: {left:?}");
        let script = to_shell(&added);
        assert!(
            script.contains("cp ") && script.ends_with("rm -rf \"$stage\""),
            "{script}"
        );
    }
}
