//! Command-line interface: what users type. Parsing only; `commands` does the work.

use crate::backend::Backend;
use clap::{Args, Parser, Subcommand};
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
not managed by inx, 9 another inx is running, 10 unknown manifest schema, 11 no image outputs."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
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
    /// Print every command inx runs (on stderr).
    #[arg(short, long, global = true)]
    pub verbose: bool,
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
    },
    /// List declared and managed containers with their state.
    ///
    /// States: missing (declared, not created), stopped, running, outdated (running a system
    /// other than its profile's), drifted (running a system inx did not deploy, such as a
    /// `nixos-rebuild` inside), orphaned (managed but no longer declared), conflict (an
    /// instance inx does not manage has the name).
    List,
    /// The state of some containers (all when none is named), like `list`.
    Status { names: Vec<String> },
    /// Start containers.
    Start {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Stop containers.
    Stop {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Restart containers (a stopped one is started).
    Restart {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Run a command in a container, with PATH from its NixOS system.
    ///
    /// The exit code is the command's.
    Exec {
        name: String,
        /// The command and its arguments (after `--`).
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Open an interactive login shell (bash) as root in a container.
    Shell { name: String },
    /// Delete containers: the instance, its root filesystem and its host profile.
    ///
    /// Nothing else is touched. Deleting a root filesystem asks for confirmation on a
    /// terminal and needs --force otherwise.
    Destroy {
        #[arg(required = true)]
        names: Vec<String>,
        /// Do not ask; delete even though data in the root filesystem is lost.
        #[arg(long)]
        force: bool,
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
    /// inx's own flags go before `gc`; everything after it goes to nix-collect-garbage
    /// (for example `inx gc --delete-older-than 30d`). Nothing is collected when the sync fails.
    Gc {
        #[command(flatten)]
        cap: Cap,
        /// Arguments for nix-collect-garbage.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
    /// Build NixOS images of containers and get them to hosts without a shared store.
    ///
    /// Images come from the container's image outputs (see README): a squashfs root
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
    /// The client to drive: incus, or lxc for LXD (as on ChromeOS).
    #[arg(long, global = true, value_enum, default_value_t = Backend::Incus)]
    pub backend: Backend,
    #[command(subcommand)]
    pub command: ImageCommand,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build the image files and print where they are, with the image's fingerprint.
    Build {
        name: String,
        /// The virtual-machine image (qcow2 disk) instead of the container image.
        #[arg(long)]
        vm: bool,
    },
    /// Import the image into the local server, or into REMOTE: (a remote the client knows).
    ///
    /// Importing an image the server already has changes nothing (and says so); a new build
    /// takes the alias over from the old one, which stays.
    Import {
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
        #[arg(long)]
        vm: bool,
    },
    /// Import the image as a public image into a server that serves images over HTTPS.
    ///
    /// Other hosts then add that server with `incus remote add NAME https://HOST:8443
    /// --public` (or `lxc remote add`) and launch from it.
    Publish {
        name: String,
        /// The remote (as named by `incus remote list` or `lxc remote list`).
        #[arg(long, required = true)]
        remote: String,
        #[arg(long)]
        alias: Option<String>,
        #[arg(long)]
        vm: bool,
    },
    /// Write the image files into a new folder, with a text on importing them by hand.
    Export {
        name: String,
        /// A folder that does not exist yet (or is empty).
        dir: PathBuf,
        #[arg(long)]
        vm: bool,
    },
    /// Add the image to a static simplestreams tree in DIR, for any HTTPS server to host.
    ///
    /// Incus and LXD clients add it with `remote add NAME https://HOST/PATH --protocol
    /// simplestreams`. Each build becomes a new version; what the tree had is kept.
    Simplestreams {
        name: String,
        /// The tree's folder: new, empty, or made by this command before.
        dir: PathBuf,
        #[arg(long)]
        alias: Option<String>,
        #[arg(long)]
        vm: bool,
    },
}
