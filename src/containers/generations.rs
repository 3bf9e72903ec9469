//! A container's system generations (`system-N-link` in its host profile) and the plan of a
//! rollback: point the profile at an earlier generation, and switch a running container to it.

use crate::error::{Error, Result};
use crate::name::{ContainerName, StorePath};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Generation {
    pub number: u32,
    pub system: StorePath,
    /// When the generation was made (the link's time), in seconds since the epoch.
    pub created: i64,
    /// The profile points at it: the container boots it.
    pub current: bool,
    /// The container runs it now (`/run/current-system`).
    pub running: bool,
    /// The container booted it (`/run/booted-system`).
    pub booted: bool,
}

/// The generations in the profile directory `dir`, oldest first.
pub fn read(dir: &Path) -> Vec<Generation> {
    use std::os::unix::fs::MetadataExt;
    let current = std::fs::read_link(dir.join("system")).ok();
    let mut found: Vec<Generation> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let number = name
                .strip_prefix("system-")?
                .strip_suffix("-link")?
                .parse()
                .ok()?;
            let target = std::fs::read_link(entry.path()).ok()?;
            let system = StorePath::parse(target.to_str()?).ok()?;
            let created = entry.path().symlink_metadata().ok()?.mtime();
            Some(Generation {
                number,
                system,
                created,
                current: current.as_deref() == Some(Path::new(&name)),
                running: false,
                booted: false,
            })
        })
        .collect();
    found.sort_by_key(|g| g.number);
    found
}

/// Marks what the container runs and booted. A system that several generations share marks
/// only the newest of them, the one a user means.
pub fn mark(gens: &mut [Generation], running: Option<&StorePath>, booted: Option<&StorePath>) {
    let newest = |gens: &[Generation], p: Option<&StorePath>| {
        p.and_then(|p| gens.iter().rposition(|g| &g.system == p))
    };
    if let Some(i) = newest(gens, running) {
        gens[i].running = true;
    }
    if let Some(i) = newest(gens, booted) {
        gens[i].booted = true;
    }
}

/// Which generation a rollback goes to: `to`, or the one before the current one.
pub fn choose(gens: &[Generation], to: Option<u32>, name: &ContainerName) -> Result<Generation> {
    let numbers = || {
        gens.iter()
            .map(|g| g.number.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(n) = to {
        return gens.iter().find(|g| g.number == n).cloned().ok_or_else(|| {
            Error::input(format!("{name} has no generation {n}"))
                .with_hint(format!("its generations: {}", numbers()))
        });
    }
    let current = gens.iter().position(|g| g.current).ok_or_else(|| {
        Error::input(format!("{name}'s profile points at no generation")).with_hint("pass --to N")
    })?;
    match current {
        0 => Err(Error::input(format!(
            "generation {} is {name}'s oldest; there is nothing to roll back to",
            gens[current].number
        ))),
        i => Ok(gens[i - 1].clone()),
    }
}

/// `YYYY-MM-DD HH:MM` in UTC, for a table.
pub fn format_time(secs: i64) -> String {
    let (year, month, day, hour, minute, _) = crate::utc::civil(secs);
    format!("{year:04}-{month:02}-{day:02} {hour:02}:{minute:02}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::incus::{Client, Instance};
    use crate::plan::{rollback as rollback_plan, What};
    use std::os::unix::fs::symlink;

    const S1: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web-1";
    const S2: &str = "/nix/store/1123456789abcdfghijklmnpqrsvwxyz-nixos-system-web-2";

    fn sp(s: &str) -> StorePath {
        StorePath::parse(s).unwrap()
    }

    fn web() -> ContainerName {
        ContainerName::parse("web").unwrap()
    }

    fn profile(current: u32) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        symlink(S1, dir.path().join("system-1-link")).unwrap();
        symlink(S2, dir.path().join("system-2-link")).unwrap();
        symlink(S1, dir.path().join("system-3-link")).unwrap();
        symlink(format!("system-{current}-link"), dir.path().join("system")).unwrap();
        std::fs::write(dir.path().join("system-x-link"), "").unwrap();
        dir
    }

    /// An instance of `web` on which inx recorded `S1` as deployed.
    fn instance(status: &str) -> Instance {
        serde_json::from_value(serde_json::json!({
            "name": "web", "status": status, "config": {"user.inx.system": S1}
        }))
        .unwrap()
    }

    #[test]
    fn reads_and_marks_generations() {
        let dir = profile(3);
        let mut gens = read(dir.path());
        assert_eq!(gens.iter().map(|g| g.number).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(
            gens.iter().map(|g| g.current).collect::<Vec<_>>(),
            [false, false, true]
        );
        mark(&mut gens, Some(&sp(S1)), Some(&sp(S2)));
        assert_eq!(
            gens.iter().map(|g| g.running).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(
            gens.iter().map(|g| g.booted).collect::<Vec<_>>(),
            [false, true, false]
        );
    }

    #[test]
    fn chooses_the_previous_generation_or_the_one_asked_for() {
        let gens = read(profile(3).path());
        assert_eq!(choose(&gens, None, &web()).unwrap().number, 2);
        assert_eq!(choose(&gens, Some(1), &web()).unwrap().number, 1);
        let e = choose(&gens, Some(9), &web()).unwrap_err();
        assert_eq!(e.hint.as_deref(), Some("its generations: 1, 2, 3"));
        let first = read(profile(1).path());
        assert!(choose(&first, None, &web())
            .unwrap_err()
            .message
            .contains("oldest"));
    }

    #[test]
    fn rollback_switches_a_running_container_and_repoints_and_records_a_stopped_one() {
        let gens = read(profile(3).path());
        let dir = Path::new("/nix/var/nix/profiles/inx/web");
        let incus = Client::default();
        let running = rollback_plan(
            &web(),
            dir,
            &gens[1],
            gens.last(),
            &instance("Running"),
            Some(&sp(S1)),
            &incus,
        );
        insta::assert_snapshot!(running.to_shell());
        let stopped = rollback_plan(
            &web(),
            dir,
            &gens[1],
            gens.last(),
            &instance("Stopped"),
            None,
            &incus,
        );
        assert_eq!(
            stopped.steps.iter().map(|s| s.what).collect::<Vec<_>>(),
            [What::Profile, What::Config]
        );
        // Back to the system the record already names (a stopped container): the profile only.
        let back = rollback_plan(
            &web(),
            dir,
            &gens[0],
            gens.last(),
            &instance("Stopped"),
            None,
            &incus,
        );
        assert_eq!(
            back.steps.iter().map(|s| s.what).collect::<Vec<_>>(),
            [What::Profile]
        );
        // Already there and running it: nothing to do.
        let same = rollback_plan(
            &web(),
            dir,
            &gens[2],
            gens.last(),
            &instance("Running"),
            Some(&sp(S1)),
            &incus,
        );
        assert!(same.steps.is_empty() && same.unchanged == [web()]);
    }

    #[test]
    fn formats_times_in_utc() {
        assert_eq!(format_time(0), "1970-01-01 00:00");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00");
        assert_eq!(format_time(1_795_262_460), "2026-11-21 12:01");
    }
}
