// Data goes to stdout through `output` only: clippy.toml forbids print! and println!.
#![deny(clippy::disallowed_macros)]

mod cli;
mod clients;
mod cmd;
mod commands;
mod containers;
mod digest;
mod error;
mod execute;
mod host_files;
mod hosts;
mod images;
mod name;
mod output;
mod plan;
mod roots;
mod utc;

use crate::output::errln;
use execute::interrupt;

use clap::CommandFactory;
use cli::{Cli, Command, ImageCommand, RootsCommand};
use commands::Ctx;
use plan::{Lifecycle, Shutdown};

/// What --timeout and --force say of stopping a running container.
fn shutdown(timeout: &cli::Timeout, force: bool) -> Shutdown {
    Shutdown {
        timeout: timeout.timeout,
        force,
    }
}

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = Cli::from_argv(&argv);
    let code = match run(&cli) {
        Ok(code) => code,
        // After Ctrl-C a query or build that was cut off fails: that is the interruption.
        Err(_) if interrupt::interrupted() => {
            let e = interrupt::check().expect_err("interrupted");
            errln!("{e}");
            e.kind.exit_code()
        }
        Err(e) => {
            errln!("{e}");
            e.kind.exit_code()
        }
    };
    std::process::exit(output::exit_code(code));
}

/// The commands that read the containers' root filesystems (through `/proc/PID/root` and the
/// storage pool, both root's), named as users type them. Everything else works for a member of
/// the group that owns inx's folders (see `host_files`) and may use Incus.
fn needs_root(command: &Command) -> Option<&'static str> {
    match command {
        Command::Roots {
            command: RootsCommand::Sync { .. },
        } => Some("roots sync"),
        Command::Roots {
            command: RootsCommand::Watch { .. },
        } => Some("roots watch"),
        Command::Gc { .. } => Some("gc"),
        _ => None,
    }
}

fn run(cli: &Cli) -> error::Result<i32> {
    if cli.global.json
        && matches!(
            cli.command,
            Command::Exec { .. }
                | Command::Shell { .. }
                | Command::Run { .. }
                | Command::Completions { .. }
        )
    {
        // Their output is another program's (or a script): rather than print something that
        // is not JSON, refuse.
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--json: exec, shell, run and completions have no JSON output",
            )
            .exit();
    }
    if let Command::Completions { shell } = &cli.command {
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "inx", &mut script);
        output::bytes(&script);
        return Ok(0);
    }
    // The terminal's children (exec, shell) and the service (watch) keep the default signals;
    // `run` handles them itself (its shell gets them, and it removes the run after).
    if !matches!(
        cli.command,
        Command::Exec { .. }
            | Command::Shell { .. }
            | Command::Run { .. }
            | Command::Roots {
                command: RootsCommand::Watch { .. }
            }
    ) {
        interrupt::install();
    }
    if let Some(what) = needs_root(&cli.command) {
        if !host_files::is_root() {
            return Err(error::Error::new(
                error::Kind::NeedsRoot,
                format!("inx {what} needs root: it reads every container's files to find what they built"),
            )
            .with_hint("run it with sudo; with nixosModules.host, the inx-roots service (roots watch) and the sync before the scheduled GC do this for you"));
        }
    }
    let ctx = Ctx::new(&cli.global, cli.command.place())?;
    match &cli.command {
        Command::Up {
            names,
            from_image,
            timeout,
            ..
        } => commands::up(&ctx, names, *from_image, shutdown(timeout, false))?,
        Command::List { .. } => commands::list(&ctx, &[])?,
        Command::Status { names, .. } => commands::list(&ctx, names)?,
        Command::Start { names, .. } => {
            commands::lifecycle(&ctx, Lifecycle::Start, names, Shutdown::default())?
        }
        Command::Stop {
            names,
            timeout,
            force,
            ..
        } => commands::lifecycle(&ctx, Lifecycle::Stop, names, shutdown(timeout, *force))?,
        Command::Restart {
            names,
            timeout,
            force,
            ..
        } => commands::lifecycle(&ctx, Lifecycle::Restart, names, shutdown(timeout, *force))?,
        Command::Exec { name, command, .. } => return commands::exec(&ctx, name, command),
        Command::Shell { name, user, .. } => return commands::shell(&ctx, name, user.as_deref()),
        Command::Destroy {
            names,
            timeout,
            force,
            ..
        } => commands::destroy(&ctx, names, *force, shutdown(timeout, false))?,
        Command::Move { name, to, .. } => commands::relocate(&ctx, name, to)?,
        Command::Generations { name } => commands::generations(&ctx, name)?,
        Command::Rollback { name, to } => commands::rollback(&ctx, name, *to)?,
        Command::Diff { names } => commands::diff(&ctx, names)?,
        Command::Run { name, command } => return commands::run(&ctx, name, command),
        Command::Snapshot { name, snapshot } => {
            commands::snapshot(&ctx, name, snapshot.as_deref())?
        }
        Command::Snapshots { name } => commands::snapshots(&ctx, name)?,
        Command::Restore { name, snapshot } => commands::restore(&ctx, name, snapshot)?,
        Command::Roots { command } => match command {
            RootsCommand::Sync { cap } => commands::roots_sync(&ctx, cap.max_roots)?,
            RootsCommand::Watch { cap, interval } => {
                commands::roots_watch(&ctx, cap.max_roots, *interval)?
            }
        },
        Command::Gc { cap, args } => return commands::gc(&ctx, cap.max_roots, args),
        Command::Image(image) => run_image(&ctx, image)?,
        Command::Completions { .. } => unreachable!("handled above"),
    }
    Ok(0)
}

fn run_image(ctx: &Ctx, image: &cli::Image) -> error::Result<()> {
    use commands::image::{self, ImportArgs};
    match &image.command {
        ImageCommand::Build {
            name,
            vm,
            out_link,
            no_link,
        } => image::build(ctx, name, *vm, (!no_link).then_some(out_link.as_path())),
        ImageCommand::Import {
            name,
            target,
            alias,
            public,
            vm,
            backend,
        } => image::import(
            ctx,
            &ImportArgs {
                name,
                target: target.as_deref(),
                alias: alias.as_deref(),
                public: *public,
                vm: *vm,
                backend: *backend,
            },
        ),
        ImageCommand::Publish {
            name,
            remote,
            alias,
            vm,
            backend,
        } => image::publish(
            ctx,
            &ImportArgs {
                name,
                target: Some(remote),
                alias: alias.as_deref(),
                public: true,
                vm: *vm,
                backend: *backend,
            },
        ),
        ImageCommand::Export { name, dir, vm } => image::export(ctx, name, dir, *vm),
        ImageCommand::Simplestreams {
            name,
            dir,
            alias,
            vm,
        } => image::simplestreams(ctx, name, dir, alias.as_deref(), *vm),
    }
}
