//! What inx runs to reach another host's store, as data: `nix copy --to ssh://` for closures and
//! one `ssh HOST -- sh -c SCRIPT` per host for its profiles. ssh gets `NIX_SSHOPTS`, as Nix's
//! own ssh does, so one setting serves both.

use crate::clients::nix::FEATURES;
use crate::cmd::{quote, Cmd, Output};
use crate::containers::profile::ProfileState;
use crate::error::{Error, Kind, Result};
use crate::execute::hold::{HELD, LOCKED, LOCK_FILE};
use crate::name::{HostWord, StorePath};
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SshDest {
    pub user: HostWord,
    pub host: HostWord,
    pub port: Option<u16>,
    /// `NIX_SSHOPTS`, split on whitespace (as Nix does).
    pub opts: Vec<String>,
}

/// The last line of every script: a host that printed it ran the whole script.
const DONE: &str = "inx-done";

/// Where `hold` keeps its roots there: the build roots folder of that host's own inx, in the
/// same layout (`NAME/` held by the lock on `NAME.lock`; see `roots::build_roots`), so that
/// host's inx sweeps what a killed session left and leaves a live one alone.
const BUILDS: &str = "/nix/var/nix/profiles/inx/.builds";

impl SshDest {
    /// `USER@HOST`, as ssh and Nix's store URL take it.
    pub fn login(&self) -> String {
        format!("{}@{}", self.user, self.host)
    }

    fn ssh_opts(&self) -> Vec<String> {
        let mut opts = self.opts.clone();
        if let Some(port) = self.port {
            opts.extend(["-p".to_string(), port.to_string()]);
        }
        opts
    }

    /// `ssh` that never prompts (a password prompt would hang a deploy) and gives up on a host
    /// that does not answer, then runs `script` with the remote's `sh`.
    pub fn run(&self, script: &str) -> Cmd {
        self.ssh(&[], script)
    }

    fn ssh(&self, extra: &[&str], script: &str) -> Cmd {
        Cmd::new("ssh")
            .args(self.ssh_opts())
            .args(["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"])
            .args(extra.iter().copied())
            .args([self.login(), "--".to_string()])
            .arg(format!("sh -c {}", quote(script)))
    }

    /// The session that holds the host for the length of its steps (see `Runner::hold`):
    /// it takes the host lock there (exit 9 when another inx has it) and roots `systems`
    /// there, prints `HELD`, and keeps both until its stdin ends: when inx is done with the
    /// host, or dies (then ssh ends and the session with it; its trap removes the roots).
    ///
    /// The roots are made before the copy, while the systems are not there yet: Nix's GC
    /// skips a root whose path is invalid, so they count from the moment the copy makes each
    /// path valid. While the copy runs, `nix-store --serve` on the host holds what it added as
    /// temporary roots (a GC running then keeps them to its end); once it has exited, these
    /// links root the systems, and their closures with them, until `nix-env --set` makes the
    /// profiles hold them. There is no moment in between when nothing roots them.
    ///
    /// What it makes is shared with the folder's group, as `host_files` makes it here (umask
    /// 007; the setgid folders keep the group). Keep-alives end the session within a minute
    /// of a host that stopped answering.
    pub fn hold(&self, systems: &[&StorePath]) -> Cmd {
        let links: String = systems
            .iter()
            .enumerate()
            .map(|(i, s)| format!("ln -s {} \"$d/r-{}\"; ", quote(s.as_str()), i + 1))
            .collect();
        // In order: the host lock (fd 8), or exit 9; this session's build roots lock (fd 7),
        // taken again if a sweeper unlinked the file between the open and the lock (as
        // `BuildRoots::hold` does); the folder, which the trap removes however the shell
        // ends; the folders of sessions and inx runs that are gone (their lock is free); the
        // links; then `HELD`, and the wait for stdin to end.
        let script = format!(
            "set -e; umask 007; b={BUILDS}; mkdir -p \"$b\"; exec 8>>{LOCK_FILE}; \
             flock -n 8 || {{ r=$?; [ $r -eq 1 ] && echo {LOCKED} && exit 9; exit $r; }}; \
             while :; do exec 7>>\"$b/$$.lock\"; flock 7; \
             [ \"$(stat -L -c %h /proc/$$/fd/7)\" -gt 0 ] && break; done; \
             d=$b/$$; let_go() {{ rm -rf \"$d\" \"$d.lock\"; }}; trap let_go EXIT; \
             trap \"exit 1\" HUP INT TERM PIPE; \
             rm -rf \"$d\"; mkdir \"$d\"; \
             for o in \"$b\"/*; do [ -e \"$o\" ] || continue; o=${{o%.lock}}; \
             [ \"$o\" = \"$d\" ] || flock -n \"$o.lock\" rm -rf \"$o\" \"$o.lock\" || :; done; \
             {links}echo {HELD}; read _ || :"
        );
        self.ssh(
            &[
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=3",
            ],
            &script,
        )
    }

    /// One copy of everything the host lacks of these closures (Nix skips what it has).
    pub fn copy(&self, paths: &[&StorePath]) -> Cmd {
        let copy = |cmd: Cmd| {
            cmd.args(FEATURES)
                .args(["copy", "--to", &format!("ssh://{}", self.login())])
                .args(paths.iter().map(|p| p.to_string()))
        };
        match self.port {
            // Nix's ssh store takes no port; ssh takes it from NIX_SSHOPTS.
            Some(_) => copy(
                Cmd::new("env")
                    .arg(format!("NIX_SSHOPTS={}", self.ssh_opts().join(" ")))
                    .arg("nix"),
            ),
            None => copy(Cmd::new("nix")),
        }
    }

    /// A copy from another host's store to this one, through this machine (`nix copy --from
    /// ssh://A --to ssh://B`), for a system this machine no longer has.
    pub fn copy_from(&self, from: &SshDest, paths: &[&StorePath]) -> Cmd {
        let copy = self.copy(paths);
        let at = copy
            .args
            .iter()
            .position(|a| a == "--to")
            .expect("copy has --to");
        let mut args = copy.args.clone();
        args.splice(
            at..at,
            ["--from".to_string(), format!("ssh://{}", from.login())],
        );
        Cmd { args, ..copy }
    }

    /// Reads each profile directory: one line each, in order (see `parse_profiles`).
    pub fn read_profiles(&self, dirs: &[PathBuf]) -> Cmd {
        let dirs: Vec<String> = dirs
            .iter()
            .map(|d| quote(&d.display().to_string()))
            .collect();
        self.run(&format!(
            "for d in {}; do if [ -d \"$d\" ]; then g=$(readlink \"$d/system\"); s=; \
             [ -n \"$g\" ] && s=$(readlink \"$d/$g\"); echo \"profile $g $s\"; else echo none; fi; \
             done; echo {DONE}",
            dirs.join(" ")
        ))
    }

    /// Points each profile at its system, the profile directory made first: run right after
    /// the copy, under `hold`, whose roots keep the systems until the profiles do.
    pub fn set_profiles(&self, sets: &[(PathBuf, StorePath)]) -> Cmd {
        let mut script = String::from("set -e");
        for (dir, system) in sets {
            let d = quote(&dir.display().to_string());
            let p = quote(&dir.join("system").display().to_string());
            script.push_str(&format!(
                "; mkdir -p {d}; nix-env --profile {p} --set {}",
                quote(system.as_str())
            ));
        }
        self.run(&script)
    }

    /// Removes folders (a profile, a container's GC roots) on the host.
    pub fn remove(&self, dirs: &[PathBuf]) -> Cmd {
        let dirs: Vec<String> = dirs
            .iter()
            .map(|d| quote(&d.display().to_string()))
            .collect();
        self.run(&format!("rm -rf {}", dirs.join(" ")))
    }
}

/// The output of `read_profiles`: each directory's state (`None`: no such directory).
pub fn parse_profiles(cmd: &Cmd, out: &Output, count: usize) -> Result<Vec<Option<ProfileState>>> {
    let lines: Vec<&str> = out.stdout.lines().collect();
    if lines.last() != Some(&DONE) || lines.len() != count + 1 {
        return Err(Error::new(
            Kind::Failed,
            format!(
                "cannot read the host profiles over ssh ({}): unexpected output {:?}",
                cmd.to_shell(),
                crate::cmd::tail(&out.stdout, 3)
            ),
        ));
    }
    Ok(lines[..count]
        .iter()
        .map(|line| {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("profile") => Some(ProfileState::from_links(
                    words.next().unwrap_or(""),
                    words.next().unwrap_or(""),
                )),
                _ => None,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(port: Option<u16>) -> SshDest {
        SshDest {
            user: HostWord::ssh("root").unwrap(),
            host: HostWord::ssh("127.0.0.3").unwrap(),
            port,
            opts: vec!["-F".into(), "/r/ssh config".into()],
        }
    }

    #[test]
    fn commands_carry_nix_sshopts_and_the_port() {
        let s = dest(Some(2222))
            .copy(&[&StorePath::parse("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-s").unwrap()])
            .to_shell();
        assert!(
            s.starts_with(
                "env 'NIX_SSHOPTS=-F /r/ssh config -p 2222' nix --extra-experimental-features"
            ),
            "{s}"
        );
        assert!(
            s.contains("copy --to ssh://root@127.0.0.3 /nix/store/"),
            "{s}"
        );
        let r = dest(None).run("true").to_shell();
        assert_eq!(r, "ssh -F '/r/ssh config' -o 'BatchMode=yes' -o 'ConnectTimeout=10' root@127.0.0.3 -- 'sh -c true'");
    }

    #[test]
    fn profiles_read_in_order_and_a_short_answer_is_an_error() {
        let cmd = dest(None).read_profiles(&["/p/a".into(), "/p/b".into()]);
        let out = |stdout: &str| Output {
            code: Some(0),
            stdout: stdout.into(),
            stderr: String::new(),
        };
        let got = parse_profiles(&cmd, &out("profile system-2-link /nix/store/0123456789abcdfghijklmnpqrsvwxyz-s\nnone\ninx-done\n"), 2).unwrap();
        assert_eq!(got[0].as_ref().unwrap().generation, Some(2));
        assert!(got[1].is_none());
        assert!(parse_profiles(&cmd, &out("none\ninx-done\n"), 2).is_err());
        assert!(parse_profiles(&cmd, &out("none\nnone\n"), 2).is_err());
    }

    #[test]
    fn the_hold_takes_the_lock_before_it_roots_every_system_and_waits_for_its_stdin_to_end() {
        let a = StorePath::parse("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-a").unwrap();
        let b = StorePath::parse("/nix/store/zyxwvsrqpnmlkjihgfdcba9876543210-b").unwrap();
        let cmd = dest(None).hold(&[&a, &b]);
        let script = cmd.args.last().unwrap();
        let at = |needle: &str| {
            script
                .find(needle)
                .unwrap_or_else(|| panic!("{needle:?} not in {script}"))
        };
        assert!(at("flock -n 8") < at(&format!("ln -s {a}")));
        assert!(at(&format!("ln -s {a} \"$d/r-1\"")) < at(&format!("ln -s {b} \"$d/r-2\"")));
        assert!(at(&format!("echo {HELD}")) < at("read _"));
        assert!(script.ends_with("read _ || :'"), "{script}");
        assert!(cmd.args.iter().any(|a| a == "ServerAliveInterval=15"));
        // What the host's sh gets parses, with systems or none.
        for systems in [&[&a, &b][..], &[]] {
            let words = shlex::split(dest(None).hold(systems).args.last().unwrap()).unwrap();
            let parsed = std::process::Command::new("sh")
                .args(["-n", "-c", &words[2]])
                .status()
                .unwrap();
            assert!(parsed.success(), "{}", words[2]);
        }
    }

    #[test]
    fn a_hold_refused_for_the_lock_is_exit_9_naming_the_host() {
        use crate::execute::hold::hold_failed;
        let cmd = dest(None).hold(&[]);
        let out = |code: i32, stdout: &str| Output {
            code: Some(code),
            stdout: stdout.into(),
            stderr: "boom\n".into(),
        };
        let e = hold_failed(&cmd, &out(9, "inx-locked\n"));
        assert_eq!(e.kind, Kind::Locked);
        assert!(
            e.message
                .starts_with("another inx is changing containers on root@127.0.0.3"),
            "{}",
            e.message
        );
        // The marker makes it the lock: another exit 9, or ssh's 255, is a failure.
        assert_eq!(hold_failed(&cmd, &out(9, "")).kind, Kind::Failed);
        assert_eq!(hold_failed(&cmd, &out(255, "")).kind, Kind::Failed);
    }

    mod executed {
        use crate::cmd::Cmd;
        use crate::error::Kind;
        use crate::execute::process::Runner;
        use crate::plan::{Action, Plan, Step, What};

        fn host_step(what: What, script: String) -> Step {
            Step {
                container: None,
                host: Some("h4".into()),
                what,
                description: script.clone(),
                action: Action::Run(Cmd::new("sh").args(["-c".to_string(), script])),
            }
        }

        /// A host's steps run while its hold lives; it lets go (its stdin ends) once they
        /// are done, before `execute` returns.
        #[test]
        fn a_hosts_steps_run_inside_its_hold_which_lets_go_after_them() {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path().display();
            let plan = Plan {
                steps: vec![
                    host_step(
                        What::Hold,
                        format!("touch {d}/holding; echo {}; read _; rm {d}/holding; touch {d}/released", super::HELD),
                    ),
                    host_step(What::Copy, format!("test -e {d}/holding")),
                    host_step(What::Profile, format!("test -e {d}/holding && touch {d}/profiled")),
                ],
                ..Plan::default()
            };
            crate::execute::execute(&Runner::default(), &plan).unwrap();
            assert!(tmp.path().join("profiled").exists());
            assert!(
                tmp.path().join("released").exists(),
                "the hold did not let go"
            );
            assert!(!tmp.path().join("holding").exists());
        }

        /// A hold refused for the lock ends the command with exit 9 before the host's other
        /// steps; a hold that ends early stops the host's steps at the next one.
        #[test]
        fn a_refused_or_lost_hold_stops_the_hosts_steps() {
            let tmp = tempfile::tempdir().unwrap();
            let d = tmp.path().display();
            let plan = |hold: &str| Plan {
                steps: vec![
                    host_step(What::Hold, hold.to_string()),
                    host_step(What::Copy, "sleep 0.5".to_string()),
                    host_step(What::Profile, format!("touch {d}/profiled")),
                ],
                ..Plan::default()
            };
            let e = crate::execute::execute(&Runner::default(), &plan("echo inx-locked; exit 9"))
                .unwrap_err();
            assert_eq!(e.kind, Kind::Locked, "{e}");
            let e = crate::execute::execute(
                &Runner::default(),
                &plan(&format!("echo {}", super::HELD)),
            )
            .unwrap_err();
            assert_eq!(e.kind, Kind::Failed, "{e}");
            assert!(!tmp.path().join("profiled").exists());
        }
    }
}
