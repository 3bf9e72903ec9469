//! `inx run NAME [-- CMD...]`: a throw-away instance of a declared container's system, a
//! login shell or CMD in it, and nothing left once it ends (see `containers::runs`).

use super::Ctx;
use crate::clients::{incus, nix};
use crate::containers::instance;
use crate::containers::manifest;
use crate::containers::runs::{self, Throwaway};
use crate::error::{Error, Kind, Result};
use crate::execute;
use crate::name::{ContainerName, ProjectName};
use crate::output::{errln, outln};
use crate::plan;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Returns the command's exit code. Ctrl-C and SIGTERM do not end inx here: the shell or
/// command in the container gets them (it belongs to the terminal), and inx removes the run
/// once it has ended.
pub fn run(ctx: &Ctx, name: &str, argv: &[String]) -> Result<i32> {
    let name = ContainerName::parse(name)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    if !ctx.dry_run {
        sweep(ctx);
    }

    let client = ctx.incus()?;
    let names = [name.clone()];
    let eval = nix::eval_manifests(&ctx.flake, Some(&names[..]));
    let query = client.server_info();
    let [out, server] = ctx.runner.capture_all([&eval, &query]);
    let out = nix::evaluated(&ctx.flake, &eval, out)?;
    let manifest = manifest::parse_eval_output(&out.stdout)?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::input(format!("not declared in the flake's inxContainers: {name}"))
        })?;
    // As `up` does: shift the shared mounts unless the server says it cannot.
    let shift = server
        .ok()
        .and_then(|o| incus::checked(&query, o).ok())
        .is_none_or(|o| incus::parse_idmapped_mounts(&o));

    let pid = std::process::id();
    let run_name = runs::name_for(&name, pid);
    let project = client
        .project
        .clone()
        .unwrap_or_else(|| ProjectName::parse("default").expect("a project name"));
    let argv = if argv.is_empty() {
        vec![
            "/run/current-system/sw/bin/bash".to_string(),
            "--login".to_string(),
        ]
    } else {
        argv.to_vec()
    };
    let plans = |dir: &Path| {
        let spec = plan::run::run_spec(
            instance::desired(&manifest, &ctx.flake_record(), dir, shift),
            pid,
        );
        let built = Path::new(manifest.toplevel.as_str()).exists();
        (
            plan::run::start(
                &run_name,
                &manifest,
                built,
                &spec,
                dir,
                client,
                &ctx.build_root(),
            ),
            plan::run::end(&run_name, dir, client, true),
        )
    };
    let exec = client.exec(&run_name, &argv);
    if ctx.dry_run {
        let (start, end) = plans(&runs::base().join(run_name.as_str()));
        outln!("{}", start.to_shell().trim_end());
        outln!("# {run_name}: run, then remove it all\n{}", exec.to_shell());
        outln!("{}", end.to_shell().trim_end());
        return Ok(0);
    }

    let held = Throwaway::hold(&runs::base(), run_name.clone(), project)?;
    let (start, _) = plans(&held.dir);
    let started = if stop.load(Ordering::SeqCst) {
        Err(interrupted())
    } else {
        ctx.carry_out(&start)
    };
    let code = match &started {
        Ok(()) => wait_until_up(ctx, client, &run_name, &manifest.toplevel, &stop)
            .and_then(|()| ctx.runner.interactive(&exec)),
        Err(e) => Err(e.clone()),
    };
    let ended = remove(ctx, &run_name, &held.dir, client);
    drop(held);
    let code = code?;
    ended?;
    Ok(code)
}

/// A container has started once its init made `/run/current-system` (NixOS's activation
/// does, early in stage 2): until then a command by that path is not there. Asked with the
/// system's own `test`, by its store path.
fn wait_until_up(
    ctx: &Ctx,
    client: &incus::Client,
    run: &ContainerName,
    system: &crate::name::StorePath,
    stop: &AtomicBool,
) -> Result<()> {
    let probe = client.exec(
        run,
        &[
            format!("{}/sw/bin/test", system.as_str()),
            "-e".to_string(),
            "/run/current-system".to_string(),
        ],
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if stop.load(Ordering::SeqCst) {
            return Err(interrupted());
        }
        if ctx.runner.capture(&probe).is_ok_and(|o| o.success()) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(Error::new(
                Kind::Failed,
                format!("{run} did not come up within 60 s (no /run/current-system)"),
            )
            .with_hint(format!(
                "see its console: incus console {run} --show-log --type console"
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn interrupted() -> Error {
    Error::new(
        Kind::Interrupted,
        "interrupted: the throw-away instance was not started, and what was made of it is removed",
    )
}

/// The instance (where Incus has one: a run cut off before or during its create may not)
/// and the profile go, also when the run failed half-way. Whether the instance exists is
/// asked, not guessed from an error: a listing that fails removes nothing, and the run is
/// tried again later.
fn remove(ctx: &Ctx, run: &ContainerName, dir: &Path, client: &incus::Client) -> Result<()> {
    let list = client.list();
    let listed = ctx
        .runner
        .capture(&list)
        .and_then(|out| incus::checked(&list, out))
        .and_then(|out| incus::parse_list(&out))?;
    let end = plan::run::end(run, dir, client, listed.contains_key(run.as_str()));
    execute::execute(&*ctx.runner, &end)
}

/// Runs whose inx is gone (killed): their instance and profile go now.
pub fn sweep(ctx: &Ctx) {
    for mut stale in runs::stale(&runs::base()) {
        let client = incus::Client {
            backend: incus::Backend::Incus,
            project: Some(stale.project.clone()),
            remote: None,
        };
        ctx.runner.progress(format_args!(
            "{}: removing the throw-away instance of an inx that is gone",
            stale.name
        ));
        if let Err(e) = remove(ctx, &stale.name, &stale.dir, &client) {
            // Its lock stays free, so the next inx tries again.
            stale.keep = true;
            errln!("warning: {}: {e}", stale.name);
        }
    }
}
