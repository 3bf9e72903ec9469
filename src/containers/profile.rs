//! Host-owned system profiles, one per container. Each is a GC root on the host (Nix scans
//! /nix/var/nix/profiles), so the system a container runs can never be collected, and it is
//! bound into the container at /nix/var/nix/profiles, so the container boots what it points at.

use crate::name::{ContainerName, ProjectName, StorePath};
use serde::Serialize;
use std::path::PathBuf;

use crate::host_files::PROFILES_ROOT;

#[derive(Debug, Clone)]
pub struct Profiles {
    root: PathBuf,
    project: Option<ProjectName>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ProfileState {
    /// The system the profile points at now.
    pub system: Option<StorePath>,
    pub generation: Option<u32>,
}

impl Profiles {
    pub fn new(project: Option<ProjectName>) -> Self {
        Profiles {
            root: Self::root(),
            project: project.filter(|p| !p.is_default()),
        }
    }

    /// The profiles of another host: always under the default root there.
    pub fn on_other_host(&self) -> Profiles {
        Profiles {
            root: PathBuf::from(PROFILES_ROOT),
            project: self.project.clone(),
        }
    }

    /// `INX_PROFILES_DIR` moves the root, for tests that must not touch the host's profiles.
    pub fn root() -> PathBuf {
        crate::host_files::profiles_root()
    }

    /// `ROOT/NAME` for the default project; `ROOT/.projects/PROJECT/NAME` for others (a name
    /// that starts with '.' cannot be a container's, so the two never meet).
    pub fn dir(&self, name: &ContainerName) -> PathBuf {
        match &self.project {
            None => self.root.join(name.as_str()),
            Some(p) => self
                .root
                .join(".projects")
                .join(p.as_str())
                .join(name.as_str()),
        }
    }

    /// Where running commands root what they build (see `build_roots`).
    pub fn builds_base() -> PathBuf {
        Self::root().join(".builds")
    }

    /// The host lock: one changing inx at a time, whatever the project.
    pub fn lock_file() -> PathBuf {
        Self::root().join(".lock")
    }

    /// Reads `system -> system-N-link -> /nix/store/...`; a missing or odd profile reads as empty.
    pub fn read(&self, name: &ContainerName) -> ProfileState {
        let dir = self.dir(name);
        let Ok(gen_link) = std::fs::read_link(dir.join("system")) else {
            return ProfileState::default();
        };
        let system = std::fs::read_link(dir.join(&gen_link)).unwrap_or_default();
        ProfileState::from_links(
            gen_link.to_str().unwrap_or(""),
            system.to_str().unwrap_or(""),
        )
    }
}

impl ProfileState {
    /// From the profile's two links, `system -> system-N-link -> /nix/store/...` (read here or
    /// over ssh on another host).
    pub fn from_links(gen_link: &str, system: &str) -> ProfileState {
        let generation = gen_link
            .strip_prefix("system-")
            .and_then(|s| s.strip_suffix("-link"))
            .and_then(|n| n.parse().ok());
        ProfileState {
            system: StorePath::parse(system).ok(),
            generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn reads_generation_and_system() {
        let tmp = tempfile::tempdir().unwrap();
        let profiles = Profiles {
            root: tmp.path().to_path_buf(),
            project: None,
        };
        let web = ContainerName::parse("web").unwrap();
        assert_eq!(profiles.read(&web), ProfileState::default());
        let dir = profiles.dir(&web);
        std::fs::create_dir_all(&dir).unwrap();
        let path = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web";
        std::os::unix::fs::symlink(path, dir.join("system-3-link")).unwrap();
        std::os::unix::fs::symlink("system-3-link", dir.join("system")).unwrap();
        let state = profiles.read(&web);
        assert_eq!(state.generation, Some(3));
        assert_eq!(state.system.unwrap().as_str(), path);
    }

    #[test]
    fn projects_get_their_own_directory() {
        let web = ContainerName::parse("web").unwrap();
        let lab = Profiles {
            root: "/r".into(),
            project: Some(ProjectName::parse("lab").unwrap()),
        };
        assert_eq!(lab.dir(&web), Path::new("/r/.projects/lab/web"));
        let default = Profiles {
            root: "/r".into(),
            project: None,
        };
        assert_eq!(default.dir(&web), Path::new("/r/web"));
    }
}
