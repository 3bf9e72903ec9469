mod cli;
mod commands;
mod confine;
mod error;
mod execute;
mod generations;
mod incus;
mod instance;
mod lock;
mod manifest;
mod name;
mod nix;
mod plan;
mod process;
mod profile;
mod roots;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, RootsCommand};
use commands::Ctx;
use plan::Lifecycle;

fn main() {
    let cli = Cli::parse();
    let code = match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.kind.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: &Cli) -> error::Result<i32> {
    if let Command::Completions { shell } = &cli.command {
        clap_complete::generate(*shell, &mut Cli::command(), "inx", &mut std::io::stdout());
        return Ok(0);
    }
    let ctx = Ctx::new(&cli.global)?;
    match &cli.command {
        Command::Up { names } => commands::up(&ctx, names)?,
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
        Command::Completions { .. } => unreachable!("handled above"),
    }
    Ok(0)
}
