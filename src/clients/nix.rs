//! The `nix` commands inx runs, as data, and how their output and failures are read.

use crate::cmd::{failure, tail, Cmd, Output};
use crate::error::{Error, Kind, Result};
use crate::name::{ContainerName, StorePath};
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

/// Each declared container's placement (`inxManifest.host`, `null` when local or not made
/// with mkContainer): cheap too, no system is evaluated.
pub fn eval_placements(flake: &str) -> Cmd {
    Cmd::new("nix").args(FEATURES).args([
        "eval",
        "--json",
        &format!("{flake}#{OUTPUT}"),
        "--apply",
        "builtins.mapAttrs (_: c: (c.inxManifest or { }).host or null)",
    ])
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

/// One line of `nix store diff-closures`: `NAME: OLD → NEW, ±SIZE KiB`, where either half
/// may be missing.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ClosureChange {
    /// `None` when the line has another shape than the one Nix 2.8 to 2.26 print (then only
    /// `line` says what changed).
    pub package: Option<String>,
    /// The versions before and after, when they changed.
    pub versions: Option<VersionChange>,
    /// The change in size in KiB, as Nix rounds it (one decimal); Nix shows none under 8 KiB.
    pub size_change_kib: Option<f64>,
    /// The line as Nix printed it, without its colour codes.
    pub line: String,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VersionChange {
    /// Nix's `∅` (the package was not there) is an empty list, its `ε` (no version) an empty
    /// string.
    pub from: Vec<String>,
    pub to: Vec<String>,
}

/// The lines of `nix store diff-closures`, each parsed where it has Nix's shape.
pub fn parse_diff_closures(stdout: &str) -> Vec<ClosureChange> {
    stdout
        .lines()
        .map(strip_ansi)
        .filter(|l| !l.trim().is_empty())
        .map(|line| match parse_change(&line) {
            Some((package, versions, size)) => ClosureChange {
                package: Some(package.to_string()),
                versions,
                size_change_kib: size,
                line,
            },
            None => ClosureChange {
                package: None,
                versions: None,
                size_change_kib: None,
                line,
            },
        })
        .collect()
}

/// Without terminal escape sequences (`ESC [ ... final byte`): Nix colours sizes even into a
/// pipe.
fn strip_ansi(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        if chars.next() == Some('[') {
            for c in chars.by_ref() {
                if ('\u{40}'..='\u{7e}').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// A store path name's characters: package names and versions are made of them, so `: `,
/// `, ` and ` → ` can only be Nix's separators.
fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-._?=".contains(c))
}

fn parse_change(line: &str) -> Option<(&str, Option<VersionChange>, Option<f64>)> {
    let (package, rest) = line.split_once(": ")?;
    if !is_name(package) {
        return None;
    }
    let versions = |list: &str| -> Option<Vec<String>> {
        if list == "∅" {
            return Some(Vec::new());
        }
        list.split(", ")
            .map(|v| match v {
                "ε" => Some(String::new()),
                v if is_name(v) => Some(v.to_string()),
                _ => None,
            })
            .collect()
    };
    let size = |s: &str| -> Option<f64> {
        let n = s.strip_suffix(" KiB")?;
        if !n.starts_with(['+', '-']) {
            return None;
        }
        n.parse::<f64>().ok().filter(|f| f.is_finite())
    };
    match rest.split_once(" → ") {
        None => Some((package, None, Some(size(rest)?))),
        Some((from, to)) => {
            let (to, kib) = match to.rsplit_once(", ") {
                Some((to, s)) if s.ends_with(" KiB") => (to, Some(size(s)?)),
                _ => (to, None),
            };
            let change = VersionChange {
                from: versions(from)?,
                to: versions(to)?,
            };
            Some((package, Some(change), kib))
        }
    }
}

/// The one way an evaluation's result is read: its output when it succeeded, else the failure
/// explained (stdout may hold half-written JSON when evaluation fails: it is never read).
pub fn evaluated(flake: &str, cmd: &Cmd, out: Result<Output>) -> Result<Output> {
    let out = out?;
    if !out.success() {
        return Err(eval_failure(flake, cmd, &out));
    }
    Ok(out)
}

/// Explains a failed `nix eval` of the flake.
fn eval_failure(flake: &str, cmd: &Cmd, out: &Output) -> Error {
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
    // No flake.nix in the folder nor above it: the usual first run in a folder of one's own.
    if err.contains("could not find a flake.nix file") {
        return Error::new(
            Kind::Eval,
            format!("there is no flake here: {flake} has no flake.nix, nor has any folder above it"),
        )
        .with_hint(
            "start one with `nix flake init -t inx` (inx's template; the host module puts `inx` in the registry), copy one of inx's examples/ (examples/offline needs no nixpkgs), or pass --flake with a folder that has a flake.nix",
        );
    }
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

    /// Lines as Nix 2.8 and 2.26 print them (colour codes included, as they come into a pipe).
    #[test]
    fn diff_closures_lines_are_parsed_into_package_versions_and_size() {
        let stdout = "inx-synthetic-system: 1 → 2\n\
                      busybox: ε → ∅, \u{1b}[32;1m-1936.5 KiB\u{1b}[0m\n\
                      source: ∅ → ε, \u{1b}[31;1m+1943.3 KiB\u{1b}[0m\n\
                      glibc: 2.39-52, 2.40-36 → 2.40-66, +12.0 KiB\n\
                      nginx: \u{1b}[31;1m+8.2 KiB\u{1b}[0m\n";
        let got: Vec<_> = parse_diff_closures(stdout)
            .into_iter()
            .map(|c| {
                let versions = c.versions.map(|v| (v.from, v.to));
                (c.package, versions, c.size_change_kib, c.line)
            })
            .collect();
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            got,
            [
                (
                    Some("inx-synthetic-system".into()),
                    Some((s(&["1"]), s(&["2"]))),
                    None,
                    "inx-synthetic-system: 1 → 2".into()
                ),
                (
                    Some("busybox".into()),
                    Some((s(&[""]), vec![])),
                    Some(-1936.5),
                    "busybox: ε → ∅, -1936.5 KiB".into()
                ),
                (
                    Some("source".into()),
                    Some((vec![], s(&[""]))),
                    Some(1943.3),
                    "source: ∅ → ε, +1943.3 KiB".into()
                ),
                (
                    Some("glibc".into()),
                    Some((s(&["2.39-52", "2.40-36"]), s(&["2.40-66"]))),
                    Some(12.0),
                    "glibc: 2.39-52, 2.40-36 → 2.40-66, +12.0 KiB".into()
                ),
                (
                    Some("nginx".into()),
                    None,
                    Some(8.2),
                    "nginx: +8.2 KiB".into()
                ),
            ]
        );
    }

    #[test]
    fn diff_closures_lines_of_another_shape_are_kept_unparsed() {
        for line in [
            "something else entirely",
            "hello: 1.0 -> 2.0",
            "hello: 12 KiB",
            "two words: 1 → 2",
            "hello: 1 → 2, about 3 KiB",
        ] {
            let got = parse_diff_closures(line);
            assert_eq!(
                got,
                [ClosureChange {
                    package: None,
                    versions: None,
                    size_change_kib: None,
                    line: line.to_string(),
                }]
            );
        }
    }

    #[test]
    fn eval_failures_are_explained() {
        let cmd = eval_placements(".");
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
        let none = eval_failure(
            ".",
            &cmd,
            &out("path '/home/me' does not contain a 'flake.nix', searching up\nerror: could not find a flake.nix file"),
        );
        assert!(none.message.starts_with("there is no flake here"), "{none}");
        assert!(
            none.hint
                .as_deref()
                .unwrap_or_default()
                .contains("nix flake init -t inx")
                && none
                    .hint
                    .as_deref()
                    .unwrap_or_default()
                    .contains("examples/"),
            "{none:?}"
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
