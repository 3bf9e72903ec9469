//! The `nix` commands inx runs, as data, and how their output and failures are read.

use crate::error::{Error, Kind, Result};
use crate::name::{ContainerName, StorePath};
use crate::process::{failure, tail, Cmd, Output};
use std::path::Path;

/// Flakes are still experimental in every Nix inx supports; ask for them explicitly so the
/// user's nix.conf need not.
pub const FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// The flake output inx reads.
pub const OUTPUT: &str = "inxContainers";

/// One `nix eval` that returns the manifests of the selected containers (all when `names` is
/// `None`) and the selected names that are not declared. Only `inxManifest` is forced, so
/// containers that were not asked for are not evaluated.
pub fn eval_manifests(flake: &str, names: Option<&[ContainerName]>) -> Cmd {
    let wanted = match names {
        None => "null".to_string(),
        // Names are validated (lowercase letters, digits, '-'), so quoting them is safe.
        Some(names) => format!(
            "[ {} ]",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    };
    let projection = format!(
        "cs: let wanted = {wanted}; \
         names = if wanted == null then builtins.attrNames cs else wanted; \
         present = builtins.filter (n: cs ? ${{n}}) names; \
         in {{ missing = builtins.filter (n: !(cs ? ${{n}})) names; \
         containers = builtins.listToAttrs (map (n: {{ name = n; value = cs.${{n}}.inxManifest or null; }}) present); }}"
    );
    Cmd::new("nix").args(FEATURES).args([
        "eval",
        "--json",
        &format!("{flake}#{OUTPUT}"),
        "--apply",
        &projection,
    ])
}

/// The declared names only: cheap, nothing of any system is evaluated.
pub fn eval_names(flake: &str) -> Cmd {
    Cmd::new("nix").args(FEATURES).args([
        "eval",
        "--json",
        &format!("{flake}#{OUTPUT}"),
        "--apply",
        "builtins.attrNames",
    ])
}

pub fn parse_names(out: &Output) -> Result<Vec<String>> {
    serde_json::from_str(&out.stdout).map_err(|e| {
        Error::new(
            Kind::Eval,
            format!("cannot read the output of nix eval: {e}"),
        )
    })
}

/// One build for all systems, each output rooted at `root` (then `root-2`, `root-3`, ...) from
/// the moment it exists (see `build_roots`). `nix-store --realise` takes derivations and store
/// paths alike (a path that exists is only rooted) and has the same interface on every Nix and
/// Lix version (the `nix build` installable syntax for a derivation's outputs changed between
/// them).
pub fn realise(paths: &[String], root: &Path) -> Cmd {
    Cmd::new("nix-store")
        .args(["--add-root", &root.display().to_string(), "--realise"])
        .args(paths.iter().cloned())
}

/// Makes `system` the next generation of a host profile, the way nixos-rebuild does.
pub fn set_profile(profile: &Path, system: &StorePath) -> Cmd {
    Cmd::new("nix-env").args([
        "--profile",
        &profile.display().to_string(),
        "--set",
        system.as_str(),
    ])
}

/// Points a profile at one of its generations, as `nixos-rebuild --rollback` does.
pub fn switch_generation(profile: &Path, generation: u32) -> Cmd {
    Cmd::new("nix-env").args([
        "--profile",
        &profile.display().to_string(),
        "--switch-generation",
        &generation.to_string(),
    ])
}

/// Nix's own account of what changes between two closures (versions and sizes per package).
pub fn diff_closures(from: &StorePath, to: &StorePath) -> Cmd {
    Cmd::new("nix")
        .args(FEATURES)
        .args(["store", "diff-closures", from.as_str(), to.as_str()])
}

/// Explains a failed `nix eval` of the flake.
pub fn eval_failure(flake: &str, cmd: &Cmd, out: &Output) -> Error {
    let err = &out.stderr;
    if err.contains("does not provide attribute") {
        return Error::new(Kind::Eval, format!("the flake {flake} has no {OUTPUT} output"))
            .with_hint(format!(
                "declare containers as `{OUTPUT}.<name> = inx.lib.mkContainer {{ ... }};` in the flake's outputs, or pass --flake"
            ));
    }
    // Only an error about the flake itself means it cannot be read; the same words about a
    // path inside the configuration are an ordinary evaluation error. Nix quotes paths:
    // '/srv/lab' or '/srv/lab/flake.nix'.
    let first = err
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_default();
    let location = flake.strip_prefix("path:").unwrap_or(flake);
    let names_flake = |dir: &str| {
        first.contains(&format!("'{dir}'")) || first.contains(&format!("'{dir}/flake.nix'"))
    };
    let about_flake = names_flake(location)
        || std::fs::canonicalize(location).is_ok_and(|p| names_flake(&p.to_string_lossy()))
        || first.contains("does not contain a 'flake.nix'");
    let unreadable = [
        "No such file or directory",
        "does not exist",
        "is not a flake",
        "cannot find flake",
    ];
    if about_flake && unreadable.iter().any(|s| err.contains(s)) {
        return Error::new(Kind::Eval, format!("cannot read the flake {flake}:\n{}", tail(err, 8)))
            .with_hint("pass --flake with a directory that has a flake.nix (in a git repository, `git add` it)");
    }
    if out.code.is_none() || !err.contains("error") {
        return failure(Kind::Eval, cmd, out);
    }
    Error::new(
        Kind::Eval,
        format!("evaluating {flake}#{OUTPUT} failed:\n{}", tail(err, 20)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(stderr: &str) -> Output {
        Output {
            code: Some(1),
            stdout: String::new(),
            stderr: stderr.to_string(),
        }
    }

    #[test]
    fn eval_command_selects_names() {
        let names = [
            ContainerName::parse("web").unwrap(),
            ContainerName::parse("db").unwrap(),
        ];
        insta::assert_snapshot!(eval_manifests("/srv/flake", Some(&names)).to_shell());
        insta::assert_snapshot!(eval_manifests(".", None).to_shell());
    }

    #[test]
    fn eval_failures_are_explained() {
        let cmd = eval_names(".");
        let missing = eval_failure(".", &cmd, &out("error: flake 'path:/x' does not provide attribute 'packages.x86_64-linux.inxContainers', 'legacyPackages.x86_64-linux.inxContainers' or 'inxContainers'"));
        assert_eq!(missing.kind, Kind::Eval);
        insta::assert_snapshot!("missing_output", missing.to_string());
        let thrown = eval_failure(
            ".",
            &cmd,
            &out("error: boom\n(use '--show-trace' to show detailed location information)"),
        );
        insta::assert_snapshot!("thrown", thrown.to_string());
        let gone = eval_failure(
            "/srv/none",
            &cmd,
            &out("error: getting status of '/srv/none': No such file or directory"),
        );
        assert!(
            gone.message.starts_with("cannot read the flake /srv/none"),
            "{gone}"
        );
        let inner = eval_failure(
            "/srv/lab",
            &cmd,
            &out("error: path '/srv/lab-data/x' does not exist"),
        );
        assert!(
            inner
                .message
                .starts_with("evaluating /srv/lab#inxContainers failed"),
            "{inner}"
        );
    }
}
