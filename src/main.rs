// Data goes to stdout through `output` only: clippy.toml forbids print! and println!.
#![deny(clippy::disallowed_macros)]

mod cli;
mod clients;
mod commands;
mod containers;
mod error;
mod execute;
mod images;
mod name;
mod output;
mod plan;
mod roots;
mod utc;

use execute::interrupt;

use clap::CommandFactory;
use cli::{Cli, Command, ImageCommand, RootsCommand};
use commands::Ctx;
use plan::Lifecycle;

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = Cli::from_argv(&argv);
    let code = match run(&cli) {
        Ok(code) => code,
        // After Ctrl-C a query or build that was cut off fails: that is the interruption.
        Err(_) if interrupt::interrupted() => {
            let e = interrupt::check().expect_err("interrupted");
            eprintln!("{e}");
            e.kind.exit_code()
        }
        Err(e) => {
            eprintln!("{e}");
            e.kind.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli) -> error::Result<i32> {
    if cli.global.json
        && matches!(
            cli.command,
            Command::Exec { .. } | Command::Shell { .. } | Command::Completions { .. }
        )
    {
        // Their output is another program's (or a script): rather than print something that
        // is not JSON, refuse.
        Cli::command()
            .error(
                clap::error::ErrorKind::ArgumentConflict,
                "--json: exec, shell and completions have no JSON output",
            )
            .exit();
    }
    if let Command::Completions { shell } = &cli.command {
        let mut script = Vec::new();
        clap_complete::generate(*shell, &mut Cli::command(), "inx", &mut script);
        output::bytes(&script);
        return Ok(0);
    }
    // The terminal's children (exec, shell) and the service (watch) keep the default signals.
    if !matches!(
        cli.command,
        Command::Exec { .. }
            | Command::Shell { .. }
            | Command::Roots {
                command: RootsCommand::Watch { .. }
            }
    ) {
        interrupt::install();
    }
    let ctx = Ctx::new(&cli.global)?;
    match &cli.command {
        Command::Up { names, from_image } => commands::up(&ctx, names, *from_image)?,
        Command::List => commands::list(&ctx, &[])?,
        Command::Status { names } => commands::list(&ctx, names)?,
        Command::Start { names } => commands::lifecycle(&ctx, Lifecycle::Start, names)?,
        Command::Stop { names } => commands::lifecycle(&ctx, Lifecycle::Stop, names)?,
        Command::Restart { names } => commands::lifecycle(&ctx, Lifecycle::Restart, names)?,
        Command::Exec { name, command } => return commands::exec(&ctx, name, command),
        Command::Shell { name } => return commands::shell(&ctx, name),
        Command::Destroy { names, force } => commands::destroy(&ctx, names, *force)?,
        Command::Generations { name } => commands::generations(&ctx, name)?,
        Command::Rollback { name, to } => commands::rollback(&ctx, name, *to)?,
        Command::Diff { names } => commands::diff(&ctx, names)?,
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
