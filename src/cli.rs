//! Command-line interface: what users type. Parsing only; `commands` does the work.

use crate::clients::incus::Backend;
use clap::error::ErrorKind;
use clap::{ArgAction, Args, CommandFactory, Parser, Subcommand};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "inx",
    version,
    about = "NixOS containers on Incus that share the host's /nix/store",
    long_about = "inx runs the NixOS containers a flake declares as `inxContainers.<name> = \
inx.lib.mkContainer { ... }` on Incus. Each container shares the host's /nix/store (read-only) \
and boots the system its host profile points at (/nix/var/nix/profiles/inx/<name>/system), so \
creating one costs no image and an update is a switch in place.",
    after_help = "Exit codes: 0 ok, 1 a step failed, 2 usage, 3 bad input, 4 flake or evaluation error, \
5 build failed, 6 nix, incus or lxc missing, 7 Incus or LXD server down or refusing, 8 instance \
not managed by inx, 9 another inx is running, 10 unknown manifest schema, 11 no image outputs, \
12 needs root, 13 another host cannot be reached over ssh."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// Parses the command line (`argv`, with the program's name first), then checks what clap
    /// cannot: -q with -v on different sides of the command, and `gc`'s own --max-roots among
    /// the arguments for nix-collect-garbage. A usage error exits with code 2, as clap's do.
    pub fn from_argv(argv: &[OsString]) -> Cli {
        let mut cli = Cli::parse_from(argv);
        if cli.global.quiet && cli.global.verbose > 0 {
            Cli::command()
                .error(
                    ErrorKind::ArgumentConflict,
                    "the argument '--quiet' cannot be used with '--verbose'",
                )
                .exit();
        }
        if let Command::Gc { cap, args } = &mut cli.command {
            match gc_arguments(argv, cap.max_roots, args) {
                Ok((max_roots, rest)) => {
                    cap.max_roots = max_roots;
                    *args = rest;
                }
                Err(e) => {
                    let mut cmd = Cli::command();
                    cmd.build();
                    let gc = cmd.find_subcommand_mut("gc").expect("inx has gc");
                    gc.error(ErrorKind::InvalidValue, e).exit()
                }
            }
        }
        cli
    }
}

#[derive(Debug, Args)]
pub struct Global {
    /// The flake that declares the containers (its `inxContainers` output).
    #[arg(long, global = true, default_value = ".", value_name = "REF")]
    pub flake: String,
    /// The Incus project to work in (default: the client's current project).
    #[arg(long, global = true, value_name = "NAME")]
    pub project: Option<String>,
    /// Print what would be done, change nothing.
    #[arg(long, global = true)]
    pub dry_run: bool,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Print every command inx runs (on stderr); -vv is accepted and prints the same.
    #[arg(short, long, global = true, action = ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// No progress lines (steps, "up to date"); errors and warnings still print. Not with -v.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// Where the named containers run, over what mkContainer declares (`incus.remote`,
/// `incus.target`, `ssh`). Given to the commands that reach containers on other hosts.
#[derive(Debug, Clone, Default, Args)]
pub struct Place {
    /// The Incus remote the containers run on (as `incus remote list` names it).
    #[arg(long, value_name = "REMOTE")]
    pub remote: Option<String>,
    /// The cluster member the containers run on.
    #[arg(long, value_name = "MEMBER")]
    pub target: Option<String>,
    /// How to reach their host's store: [USER@]HOST[:PORT] for ssh.
    #[arg(long, value_name = "DEST")]
    pub ssh: Option<String>,
}

/// How long a clean shutdown may take (stop, restart, destroy, and `up` where a changed
/// setting needs a restart); see `plan::Shutdown`.
#[derive(Debug, Clone, Copy, Args)]
pub struct Timeout {
    /// Seconds a running container is given to shut down cleanly before it is killed.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = crate::containers::instance::STOP_TIMEOUT,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub timeout: u32,
}

impl Command {
    /// The placement given on the command line, for the commands that take one.
    pub fn place(&self) -> Option<&Place> {
        match self {
            Command::Up { place, .. }
            | Command::List { place }
            | Command::Status { place, .. }
            | Command::Start { place, .. }
            | Command::Stop { place, .. }
            | Command::Restart { place, .. }
            | Command::Exec { place, .. }
            | Command::Shell { place, .. }
            | Command::Destroy { place, .. }
            | Command::Move { place, .. } => Some(place),
            _ => None,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build, create, start and update declared containers (all when none is named).
    ///
    /// One evaluation and one build for all of them. A new system is switched in place
    /// (switch-to-configuration switch) without a restart; a changed Incus setting is applied
    /// live where Incus can, with a restart only where it must; nothing changed means nothing
    /// is done. The root filesystem is never recreated.
    Up {
        /// Containers to bring up.
        names: Vec<String>,
        /// Create the containers from their images instead of the shared store (as
        /// `fromImage = true` in mkContainer does), for hosts whose store is not shared.
        #[arg(long)]
        from_image: bool,
        #[command(flatten)]
        timeout: Timeout,
        #[command(flatten)]
        place: Place,
    },
    /// List declared and managed containers with their state.
    ///
    /// States: missing (declared, not created), stopped, running, outdated (running a system
    /// other than its profile's), drifted (running a system inx did not deploy, such as a
    /// `nixos-rebuild` inside), orphaned (managed but no longer declared), conflict (an
    /// instance inx does not manage has the name), unreachable (on another host that does not
    /// answer over ssh).
    List {
        #[command(flatten)]
        place: Place,
    },
    /// The state of some containers (all when none is named), like `list`.
    Status {
        names: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Start containers.
    Start {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Stop containers: a clean shutdown, and a kill if it takes longer than --timeout.
    ///
    /// Each container says how it stopped: cleanly, or killed after the timeout. A hung
    /// container holds up only itself. Ctrl-C stops the wait (Incus goes on with the clean
    /// shutdown, without a kill).
    Stop {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        timeout: Timeout,
        /// Kill at once, without a clean shutdown.
        #[arg(long, conflicts_with = "timeout")]
        force: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Restart containers (a stopped one is started), as `stop` stops them.
    Restart {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        timeout: Timeout,
        /// Kill at once, without a clean shutdown.
        #[arg(long, conflicts_with = "timeout")]
        force: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Run a command in a container, with PATH from its NixOS system.
    ///
    /// The exit code is the command's.
    Exec {
        name: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Open an interactive login shell (bash) as root in a container, or as --user.
    Shell {
        name: String,
        /// Log in as this user of the container (`su -l USER`), as `nixos-container login`.
        #[arg(long, value_name = "USER")]
        user: Option<String>,
        #[command(flatten)]
        place: Place,
    },
    /// Delete containers: the instance, its root filesystem and its host profile.
    ///
    /// Nothing else is touched. Deleting a root filesystem asks for confirmation on a
    /// terminal and needs --force otherwise.
    ///
    /// A running container is shut down cleanly first, and killed if that takes longer
    /// than --timeout.
    Destroy {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        timeout: Timeout,
        /// Do not ask; delete even though data in the root filesystem is lost.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        place: Place,
    },
    /// Move a container to another member of its Incus cluster, with its root filesystem.
    ///
    /// Incus cannot move a container that binds a host's /nix/store (`incus cluster evacuate`
    /// stops it instead). inx stops it, copies its system to the member's store and profile,
    /// moves it with `incus move --target`, starts it if it ran, then releases the old
    /// member's profile and GC roots.
    Move {
        name: String,
        /// The cluster member to move it to.
        #[arg(long, value_name = "MEMBER")]
        to: String,
        #[command(flatten)]
        place: Place,
    },
    /// List a container's system generations: which one it boots (current), runs and booted.
    Generations { name: String },
    /// Go back to an earlier system generation (the one before the current one, or --to N).
    ///
    /// The profile points at it from now on; a running container switches to it in place, a
    /// stopped one boots it at its next start. The next `inx up` deploys the flake's system
    /// again.
    Rollback {
        name: String,
        /// The generation to go to (see `inx generations NAME`).
        #[arg(long, value_name = "N")]
        to: Option<u32>,
    },
    /// Run a throw-away container of a declared container's system: a login shell, or CMD.
    ///
    /// A fresh ephemeral instance (named NAME-run-PID) with the declared container's settings
    /// (without its port forwards) boots the system from the shared store; the declared
    /// container is not touched and need not exist. When the shell or CMD ends, the instance
    /// and its profile go; after a kill, the next inx that changes things removes them. Exits
    /// with CMD's exit code.
    Run {
        name: String,
        /// The command and its arguments (default: a login shell).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Take a snapshot of a container: its root filesystem and config, and its system.
    ///
    /// Incus keeps the files; inx keeps the system the container runs from the host's GC
    /// (a root in /nix/var/nix/gcroots/inx/NAME/snapshots) for as long as the snapshot exists,
    /// so `inx restore` can bring back both.
    Snapshot {
        name: String,
        /// The snapshot's name (default: snap-YYYYMMDD-HHMMSS, UTC).
        snapshot: Option<String>,
    },
    /// List a container's snapshots, the system each keeps, and whether it is kept.
    Snapshots { name: String },
    /// Bring back a snapshot: its root filesystem and config, and the system it ran.
    ///
    /// A running container is stopped, its profile points at the snapshot's system (a new
    /// generation), the snapshot is restored, and the container starts again: it boots that
    /// system on its own files. The next `inx up` deploys the flake's system again.
    Restore { name: String, snapshot: String },
    /// Show what `inx up` would change in containers' closures (all when none is named).
    ///
    /// Builds the declared systems (one build), then compares each with the system its profile
    /// holds using `nix store diff-closures`. Changes nothing else.
    Diff { names: Vec<String> },
    /// Keep what containers build alive across the host's garbage collection.
    ///
    /// A `nix build` inside a container leaves a link in /nix/var/nix/gcroots/auto that the
    /// host cannot resolve, so the host's GC would delete it and the build. inx resolves each
    /// such link inside each inx container (never following a link out of it) and keeps what
    /// it finds as a root under /nix/var/nix/gcroots/inx/<name>/.
    Roots {
        #[command(subcommand)]
        command: RootsCommand,
    },
    /// Sync the roots, then collect garbage: `nix-collect-garbage ARGS`.
    ///
    /// inx's own --max-roots is taken from anywhere among the arguments; the others go to
    /// nix-collect-garbage (for example `inx gc --delete-older-than 30d --max-roots 500`).
    /// Everything after `--` goes to nix-collect-garbage, --max-roots too. Nothing is collected
    /// when the sync fails.
    Gc {
        #[command(flatten)]
        cap: Cap,
        /// Arguments for nix-collect-garbage (but inx's --max-roots; all of them after `--`).
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Build NixOS images of containers and get them to hosts without a shared store.
    ///
    /// Images come from the container's image outputs (docs/images.md): a squashfs root
    /// filesystem and metadata for containers, a qcow2 disk and metadata for VMs (--vm).
    Image(Image),
    /// Print a shell completion script.
    Completions { shell: clap_complete::Shell },
}

#[derive(Debug, Subcommand)]
pub enum RootsCommand {
    /// Bring the roots up to date once: add what containers' links lead to, drop what they
    /// no longer do, and all roots of containers that are gone.
    Sync {
        #[command(flatten)]
        cap: Cap,
    },
    /// Sync whenever a build adds a link or a container is created, started, stopped or
    /// deleted, and every --interval seconds; runs until stopped (a service on the host).
    Watch {
        #[command(flatten)]
        cap: Cap,
        /// Seconds between full syncs when nothing happens.
        #[arg(long, default_value_t = 60, value_name = "SECONDS")]
        interval: u64,
    },
}

#[derive(Debug, Args)]
pub struct Cap {
    /// Keep at most this many builds per container (older roots are kept first).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub max_roots: usize,
}
#[derive(Debug, Args)]
pub struct Image {
    #[command(subcommand)]
    pub command: ImageCommand,
}

/// What NAME is in every image command.
const IMAGE_NAME: &str = "A container declared in the flake's inxContainers";
/// What --vm means in every image command.
const IMAGE_VM: &str = "The virtual-machine image (a qcow2 disk) instead of the container image";
/// What --backend means in `import` and `publish`, the commands that talk to a server.
const IMAGE_BACKEND: &str = "The client to drive: incus, or lxc for LXD (as on ChromeOS)";

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the image files and print where they are, with the image's fingerprint.
    Build {
        #[arg(help = IMAGE_NAME)]
        name: String,
        #[arg(long, help = IMAGE_VM)]
        vm: bool,
        /// A folder whose links `metadata` and `rootfs` (or `disk`) keep the files from the
        /// host's GC, as `nix build`'s `result` does; made if missing, its links replaced by
        /// the next build.
        #[arg(long, value_name = "DIR", default_value = "result-image")]
        out_link: std::path::PathBuf,
        /// No links: the files may be collected by the host's next GC.
        #[arg(long, conflicts_with = "out_link")]
        no_link: bool,
    },
    /// Import the image into the local server, or into REMOTE: (a remote the client knows).
    ///
    /// Importing an image the server already has changes nothing (and says so); a new build
    /// takes the alias over from the old one, which stays.
    Import {
        #[arg(help = IMAGE_NAME)]
        name: String,
        /// A remote of the client, as REMOTE: (default: the local server).
        #[arg(value_name = "REMOTE:")]
        target: Option<String>,
        /// The image alias (default: nixos/NAME, or nixos/NAME/vm with --vm).
        #[arg(long)]
        alias: Option<String>,
        /// Make the image public (served to clients that are not trusted).
        #[arg(long)]
        public: bool,
        #[arg(long, help = IMAGE_VM)]
        vm: bool,
        #[arg(long, value_enum, default_value_t = Backend::Incus, help = IMAGE_BACKEND)]
        backend: Backend,
    },
    /// Import the image as a public image into a server that serves images over HTTPS.
    ///
    /// Other hosts then add that server with `incus remote add NAME https://HOST:8443
    /// --public` (or `lxc remote add`) and launch from it.
    Publish {
        #[arg(help = IMAGE_NAME)]
        name: String,
        /// The remote (as named by `incus remote list` or `lxc remote list`).
        #[arg(long, required = true)]
        remote: String,
        /// The image alias (default: nixos/NAME, or nixos/NAME/vm with --vm).
        #[arg(long)]
        alias: Option<String>,
        #[arg(long, help = IMAGE_VM)]
        vm: bool,
        #[arg(long, value_enum, default_value_t = Backend::Incus, help = IMAGE_BACKEND)]
        backend: Backend,
    },
    /// Write the image files into a new folder, with a text on importing them by hand.
    Export {
        #[arg(help = IMAGE_NAME)]
        name: String,
        /// A folder that does not exist yet (or is empty); missing parent folders are made.
        dir: PathBuf,
        #[arg(long, help = IMAGE_VM)]
        vm: bool,
    },
    /// Add the image to a static simplestreams tree in DIR, for any HTTPS server to host.
    ///
    /// Incus and LXD clients add it with `remote add NAME https://HOST/PATH --protocol
    /// simplestreams`. Each build becomes a new version; what the tree had is kept.
    Simplestreams {
        #[arg(help = IMAGE_NAME)]
        name: String,
        /// The tree's folder: new, empty, or made by this command before; missing parent
        /// folders are made.
        dir: PathBuf,
        /// The image alias (default: nixos/NAME, or nixos/NAME/vm with --vm).
        #[arg(long)]
        alias: Option<String>,
        #[arg(long, help = IMAGE_VM)]
        vm: bool,
    },
}

/// `inx gc`'s arguments for nix-collect-garbage, with inx's own `--max-roots N` (or
/// `--max-roots=N`) taken out wherever it is, up to a `--`; after it, everything is
/// nix-collect-garbage's. clap hands over everything from the first argument it does not
/// know, and consumes a `--` that comes first: `argv`, the whole command line, tells that case
/// apart (the arguments are its last ones). Returns the cap and the arguments to pass on.
pub fn gc_arguments(
    argv: &[OsString],
    max_roots: usize,
    args: &[String],
) -> Result<(usize, Vec<String>), String> {
    let before = argv.len().checked_sub(args.len() + 1).map(|i| &argv[i]);
    if before.is_some_and(|a| a == "--") {
        return Ok((max_roots, args.to_vec()));
    }
    let mut cap = max_roots;
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let value = if arg == "--" {
            rest.extend(args.by_ref().cloned());
            break;
        } else if arg == "--max-roots" {
            args.next()
                .ok_or("a value is required for '--max-roots <N>' but none was supplied")?
        } else if let Some(value) = arg.strip_prefix("--max-roots=") {
            value
        } else {
            rest.push(arg.clone());
            continue;
        };
        cap = value
            .parse()
            .map_err(|e| format!("invalid value '{value}' for '--max-roots <N>': {e}"))?;
    }
    Ok((cap, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gc(line: &str) -> Result<(usize, Vec<String>), String> {
        let argv: Vec<OsString> = line.split_whitespace().map(OsString::from).collect();
        let Command::Gc { cap, args } = Cli::try_parse_from(&argv).unwrap().command else {
            panic!("not gc: {line}")
        };
        gc_arguments(&argv, cap.max_roots, &args)
    }

    fn passed(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn gc_takes_max_roots_from_anywhere_before_a_double_dash() {
        assert_eq!(
            gc("inx gc --delete-older-than 7d --max-roots 3").unwrap(),
            (3, passed(&["--delete-older-than", "7d"]))
        );
        assert_eq!(gc("inx gc --max-roots 3 -d").unwrap(), (3, passed(&["-d"])));
        assert_eq!(
            gc("inx gc -d --max-roots=5 --dry-run").unwrap(),
            (5, passed(&["-d", "--dry-run"]))
        );
        assert_eq!(gc("inx gc").unwrap(), (1000, passed(&[])));
    }

    #[test]
    fn gc_passes_everything_after_a_double_dash_on() {
        assert_eq!(
            gc("inx gc -d -- --max-roots 3").unwrap(),
            (1000, passed(&["-d", "--max-roots", "3"]))
        );
        assert_eq!(
            gc("inx gc -- --max-roots 3").unwrap(),
            (1000, passed(&["--max-roots", "3"]))
        );
        assert_eq!(
            gc("inx gc --max-roots 2 -- --max-roots 3").unwrap(),
            (2, passed(&["--max-roots", "3"]))
        );
    }

    #[test]
    fn gc_refuses_a_max_roots_without_a_number() {
        assert!(gc("inx gc -d --max-roots")
            .unwrap_err()
            .contains("a value is required"));
        assert!(gc("inx gc -d --max-roots x")
            .unwrap_err()
            .contains("invalid value 'x'"));
    }
}
