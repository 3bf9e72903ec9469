use super::Ctx;
use crate::containers::instance::{self, is_managed};
use crate::error::{Error, Result};
use crate::hosts::gather;
use crate::name::ContainerName;
use crate::output::outln;
use crate::plan::unmanaged_error;

/// `inx exec NAME -- CMD...`; returns the command's exit code.
pub fn exec(ctx: &Ctx, name: &str, argv: &[String]) -> Result<i32> {
    let name = ContainerName::parse(name)?;
    let mut located = gather::locate(&ctx.gather()?, std::slice::from_ref(&name))?;
    let located = located.remove(&name).expect("located every name");
    let instance = located
        .instance
        .as_ref()
        .ok_or_else(|| crate::plan::missing_error(&name))?;
    if !is_managed(instance) {
        return Err(unmanaged_error(name.as_str()));
    }
    if !instance.running() {
        return Err(Error::input(format!("{name} is not running"))
            .with_hint(format!("start it with `inx start {name}`")));
    }
    let cmd = located.incus.exec(&name, argv);
    if ctx.dry_run {
        outln!("{}", cmd.to_shell());
        return Ok(0);
    }
    if located.store == Some(crate::hosts::Store::Local) {
        wait_for_activation(ctx, &located.incus, &name, instance);
    }
    ctx.runner.interactive(&cmd)
}

/// Right after `up` starts a container, its init has not yet linked `/run/current-system`,
/// where the PATH of `exec` and the shell of `shell` are. A container whose init started less
/// than a minute ago gets until then; one that is older, or whose init cannot be read here,
/// none: the command runs as it would. Root reads the link through /proc; another user (who
/// cannot) asks the container with its system's `test`.
fn wait_for_activation(
    ctx: &Ctx,
    incus: &crate::clients::incus::Client,
    name: &ContainerName,
    instance: &crate::clients::incus::Instance,
) {
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);
    let young = || instance::init_age(instance).is_some_and(|age| age < PATIENCE);
    let probe = instance.config.get(instance::KEY_SYSTEM).map(|system| {
        incus.exec(
            name,
            &[
                format!("{system}/sw/bin/test"),
                "-e".to_string(),
                "/run/current-system".to_string(),
            ],
        )
    });
    while young() && crate::execute::interrupt::check().is_ok() {
        let up = match instance::activated(instance) {
            Some(done) => done,
            None => match &probe {
                Some(cmd) => ctx.runner.capture(cmd).is_ok_and(|o| o.success()),
                None => true,
            },
        };
        if up {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// `inx shell NAME`: root's login shell; NixOS always has bash in the system path. With
/// `--user`, that user's login (`su -l`, which root runs without a password).
pub fn shell(ctx: &Ctx, name: &str, user: Option<&str>) -> Result<i32> {
    let argv = match user {
        None => vec![
            "/run/current-system/sw/bin/bash".to_string(),
            "--login".to_string(),
        ],
        Some(user) => {
            let valid = !user.is_empty()
                && !user.starts_with('-')
                && user
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
            if !valid {
                return Err(Error::input(format!(
                    "--user {user:?} is not a user name (letters, digits, '.', '_', '-')"
                )));
            }
            vec![
                "/run/current-system/sw/bin/su".to_string(),
                "-l".to_string(),
                user.to_string(),
            ]
        }
    };
    exec(ctx, name, &argv)
}
