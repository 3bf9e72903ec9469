//! The plan of `inx move NAME --to MEMBER`. Incus does not move a container whose disk comes
//! from a host path (it is not migratable; `incus cluster evacuate` stops it instead), so inx
//! does: its system reaches the new member's store and profile (under that member's hold, as
//! `up` copies: see `SshDest::hold`), the container stops, Incus moves the stopped instance
//! (its root filesystem with it), it starts again, and only then is the old member's profile
//! (a GC root there) released.

use super::{run, start, Action, Plan, Step, What};
use crate::clients::incus::Client;
use crate::hosts::SshDest;
use crate::name::{ContainerName, StorePath};
use std::path::PathBuf;

/// What `move` knows before it plans.
#[derive(Debug, Clone)]
pub struct Move<'a> {
    pub name: &'a ContainerName,
    pub incus: &'a Client,
    pub running: bool,
    pub member: &'a str,
    /// The new member as plans name a host (see `hosts::label`).
    pub host: String,
    /// The system its profile points at now, on the old member.
    pub system: &'a StorePath,
    pub from: &'a SshDest,
    pub to: &'a SshDest,
    /// Whether this machine's store has the system (then it is copied from here, else from
    /// the old member's store through this machine).
    pub here: bool,
    pub profile_dir: PathBuf,
    pub roots_dir: PathBuf,
}

pub fn relocate(m: &Move) -> Plan {
    let mut plan = Plan::default();
    let name = m.name;
    // The new member's steps: they run before the container's (nothing stops if they fail).
    let host = Some(m.host.clone());
    plan.steps
        .push(super::remote::hold(m.to, host.clone(), &[m.system]));
    let copy = if m.here {
        m.to.copy(&[m.system])
    } else {
        m.to.copy_from(m.from, &[m.system])
    };
    plan.steps.push(Step {
        container: None,
        host: host.clone(),
        what: What::Copy,
        description: format!("copy {} to {}", m.system.base_name(), m.to.login()),
        action: Action::Run(copy),
    });
    plan.steps.push(Step {
        container: None,
        host,
        what: What::Profile,
        description: format!("point the host profile of {name} on {} at it", m.to.login()),
        action: Action::Run(m.to.set_profiles(&[(m.profile_dir.clone(), m.system.clone())])),
    });
    if m.running {
        plan.steps.push(super::step(
            name,
            What::Stop,
            "stop",
            super::Shutdown::default().stop(m.incus, name),
        ));
    }
    plan.steps.push(run(
        name,
        What::Move,
        format!("move the instance and its root filesystem to {}", m.member),
        m.incus.move_to(name, m.member),
    ));
    if m.running {
        plan.steps.push(start(name, "start", m.incus));
    }
    plan.steps.push(run(
        name,
        What::RemoveProfile,
        format!(
            "release its host profile and GC roots on {}",
            m.from.login()
        ),
        m.from.remove(&[m.profile_dir.clone(), m.roots_dir.clone()]),
    ));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::HostWord;

    fn dest(host: &str) -> SshDest {
        SshDest {
            user: HostWord::ssh("root").unwrap(),
            host: HostWord::ssh(host).unwrap(),
            port: None,
            opts: Vec::new(),
        }
    }

    #[test]
    fn a_move_copies_to_the_new_member_under_its_hold_then_stops_moves_starts_and_releases_the_old_one(
    ) {
        let name = ContainerName::parse("web").unwrap();
        let incus = Client::default().on(Some(&crate::name::RemoteName::parse("h2").unwrap()));
        let system =
            StorePath::parse("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-nixos-system-web")
                .unwrap();
        let (from, to) = (dest("127.0.0.2"), dest("127.0.0.3"));
        let m = Move {
            name: &name,
            incus: &incus,
            running: true,
            member: "member3",
            host: "h2/member3".into(),
            system: &system,
            from: &from,
            to: &to,
            here: false,
            profile_dir: "/nix/var/nix/profiles/inx/web".into(),
            roots_dir: "/nix/var/nix/gcroots/inx/web".into(),
        };
        insta::assert_snapshot!(relocate(&m).to_shell());
        let stopped = relocate(&Move {
            running: false,
            here: true,
            ..m
        });
        let whats: Vec<What> = stopped.steps.iter().map(|s| s.what).collect();
        assert_eq!(
            whats,
            [
                What::Hold,
                What::Copy,
                What::Profile,
                What::Move,
                What::RemoveProfile
            ]
        );
        // The new member's steps are that host's (the executor runs them first, held).
        assert!(stopped.steps[..3]
            .iter()
            .all(|s| s.container.is_none() && s.host.as_deref() == Some("h2/member3")));
    }
}
