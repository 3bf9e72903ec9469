//! inx's flake, proven without nixpkgs (design.md, "Proving the Nix side without nixpkgs"):
//! every output evaluated by a modern Nix against the nixpkgs stand-in (tests/nix/nixpkgs: the
//! real nixpkgs lib and stub packages), the package's exact source built and tested by cargo as
//! the Nix sandbox would, the template initialised and evaluated, the host module's roots unit
//! scored, and the `toplevel` path on Nix 2.8. scripts/test.sh runs it with Nix 2.26 and again
//! with 2.34 as the modern Nix. Prerequisites: Nix 2.18+ ($INX_TEST_NIX_MODERN, a bin dir), Nix
//! 2.8 ($INX_TEST_NIX_OLD), the vendored nixpkgs lib ($INX_TEST_NIXPKGS_LIB or
//! ../shared/vendor/nixpkgs-lib-*.tar.gz), systemd-analyze. Missing ones skip a test, or fail it
//! in CI.

// A test writes to the test harness's captured stderr: eprintln! is right here (clippy.toml
// forbids it in inx itself, where stderr can be a closed pipe).
#![allow(clippy::disallowed_macros)]

#[path = "flake/support.rs"]
#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use support::{flake_ref, nixpkgs_lib_tarball, Bed, Nix, Ran};

/// Locks `flake` (writing its flake.lock, in a temp dir) with `overrides`, so that the commands
/// after it, run with `--no-write-lock-file`, find nothing to change: a warning from Nix that
/// it is not writing a lock file would then be a real one.
fn lock(nix: &Nix, cwd: &Path, flake: &str, overrides: &[(&str, &str)]) {
    let mut args = vec!["flake", "lock", flake];
    for (input, to) in overrides {
        args.extend(["--override-input", input, to]);
    }
    nix.run(cwd, &args).ok();
}

/// Nix 2.26 and a bed whose inx copy is locked to the stand-in; or the test is skipped.
macro_rules! locked_bed {
    ($test:expr) => {{
        let nix = need!($test, Nix::modern());
        let bed = Bed::new(&need!($test, nixpkgs_lib_tarball()));
        lock(
            &nix,
            bed.path(),
            &bed.inx_ref(),
            &[("nixpkgs", &bed.nixpkgs_ref())],
        );
        (nix, bed)
    }};
}

/// `nix SUBCOMMAND ... --override-input nixpkgs <stand-in> --no-write-lock-file` on inx's copy.
fn on_inx(nix: &Nix, bed: &Bed, args: &[&str]) -> Ran {
    let nixpkgs = bed.nixpkgs_ref();
    let mut all = args.to_vec();
    all.extend([
        "--override-input",
        "nixpkgs",
        &nixpkgs,
        "--no-write-lock-file",
    ]);
    nix.run(bed.path(), &all)
}

/// A user's flake: inx's copy and the stand-in as inputs, inx's nixpkgs following the stand-in.
const USER_FLAKE: &str = r#"{
  inputs.inx.url = "@INX@";
  inputs.nixpkgs.url = "@NIXPKGS@";
  inputs.inx.inputs.nixpkgs.follows = "nixpkgs";

  outputs = { self, inx, nixpkgs }:
    let
      pkgs = nixpkgs.legacyPackages.x86_64-linux;
    in
    @OUTPUTS@;
}
"#;

/// USER_FLAKE in `bed/<name>` with `outputs` (an expression), `files` beside it; locked.
fn user_flake(nix: &Nix, bed: &Bed, name: &str, outputs: &str, files: &[(&str, &str)]) -> PathBuf {
    let dir = bed.path().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for (file, text) in files {
        std::fs::write(dir.join(file), text).unwrap();
    }
    let text = USER_FLAKE
        .replace("@INX@", &bed.inx_ref())
        .replace("@NIXPKGS@", &bed.nixpkgs_ref())
        .replace("@OUTPUTS@", outputs);
    std::fs::write(dir.join("flake.nix"), text).unwrap();
    lock(nix, bed.path(), &flake_ref(&dir), &[]);
    dir
}

fn assert_drv(v: &serde_json::Value, what: &str) {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    assert!(
        s.starts_with("/nix/store/") && s.ends_with(".drv"),
        "{what} is not a derivation path: {s}"
    );
}

#[test]
fn flake_check_passes_on_modern_nix_without_warnings() {
    let test = "flake_check_passes_on_modern_nix_without_warnings";
    let (nix, bed) = locked_bed!(test);
    let inx = bed.inx_ref();

    let ran = on_inx(
        &nix,
        &bed,
        &["flake", "check", "--no-build", "--all-systems", &inx],
    )
    .ok();
    ran.assert_no_warnings_except(&[]);
    eprintln!("{}", ran.stderr);
}

#[test]
fn every_flake_output_evaluates() {
    let test = "every_flake_output_evaluates";
    let nix = need!(test, Nix::modern());
    let bed = Bed::new(&need!(test, nixpkgs_lib_tarball()));
    let probe = user_flake(
        &nix,
        &bed,
        "probe",
        "{ probe = import ./outputs.nix { inherit inx nixpkgs; }; }",
        &[("outputs.nix", include_str!("flake/outputs.nix"))],
    );

    let ran = nix
        .run(
            bed.path(),
            &[
                "eval",
                "--json",
                "--no-write-lock-file",
                &format!("{}#probe", flake_ref(&probe)),
            ],
        )
        .ok();
    let out = ran.json();
    eprintln!("{}", serde_json::to_string_pretty(&out).unwrap());

    for system in ["x86_64-linux", "aarch64-linux"] {
        let s = &out["systems"][system];
        for name in ["inx", "default"] {
            assert_drv(&s["packages"][name], &format!("packages.{system}.{name}"));
            let app = &s["apps"][name];
            assert_eq!(app["type"], "app", "apps.{system}.{name}.type");
            let program = format!("{}/bin/inx", s["inxOut"].as_str().unwrap());
            assert_eq!(
                app["program"],
                program.as_str(),
                "apps.{system}.{name}.program"
            );
        }
        assert_eq!(
            s["packages"]["inx"], s["packages"]["default"],
            "{system}: default is inx"
        );
        assert_drv(&s["devShell"], &format!("devShells.{system}.default"));
        assert_drv(
            &s["overlay"],
            &format!("overlays.default's inx on {system}"),
        );
        assert_drv(&s["formatter"], &format!("formatter.{system}"));
        let checks = s["checks"].as_object().expect("checks");
        assert!(
            checks.contains_key("inx") && checks.contains_key("lib-toplevel"),
            "checks.{system}: {checks:?}"
        );
        // The VM test (x86_64 only) evaluates against the stand-in's runNixOSTest, which
        // type-checks its nodes; it cannot run here.
        assert_eq!(
            checks.contains_key("vm"),
            system == "x86_64-linux",
            "checks.{system}: {checks:?}"
        );
        for (name, drv) in checks {
            assert_drv(drv, &format!("checks.{system}.{name}"));
        }
        let manifest = &s["container"]["manifest"];
        assert_eq!(
            manifest["toplevel"], s["container"]["toplevel"],
            "{system}: manifest's toplevel"
        );
        assert!(
            manifest["schemaVersion"].is_u64(),
            "{system}: manifest {manifest}"
        );
    }
    for name in ["host", "guest"] {
        let kind = &out["nixosModules"][name];
        assert!(
            ["lambda", "set", "path"].contains(&kind.as_str().unwrap_or("")),
            "nixosModules.{name} is a {kind}"
        );
    }
    let template = &out["template"];
    assert!(
        template["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/nix/store/")),
        "templates.default.path: {template}"
    );
    for field in ["description", "welcomeText"] {
        assert!(
            template[field]
                .as_str()
                .is_some_and(|t| !t.trim().is_empty()),
            "templates.default.{field} is missing or empty: {template}"
        );
    }
}

/// The directories of PATH as symlinks in one dir, without any Nix, Incus or LXD: what the
/// package's tests see in the Nix sandbox (there, no such tool exists at all).
fn sandbox_path(bin: &Path) {
    let banned = |n: &str| {
        ["nix", "incus", "lxc", "lxd"]
            .iter()
            .any(|b| n == *b || n.starts_with(&format!("{b}-")) || n.starts_with(&format!("{b}.")))
    };
    std::fs::create_dir_all(bin).unwrap();
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path) {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let name = entry.file_name();
            let Some(n) = name.to_str() else { continue };
            let link = bin.join(n);
            if banned(n) || link.symlink_metadata().is_ok() {
                continue;
            }
            std::os::unix::fs::symlink(entry.path(), link).unwrap();
        }
    }
}

/// What `rustPlatform.buildRustPackage` does with the package's `src`, without Nix: the exact
/// fileset, copied writable, built and tested offline with the lock file as is, with no
/// Nix/Incus/LXD on PATH, HOME unwritable and CI unset (so the e2e tests must skip).
///
/// Debug, not release as nixpkgs builds: the point is the source set and the test results,
/// which do not depend on the profile (no `cfg(debug_assertions)` in the crate), and on 2
/// cores a cold release build with thin LTO costs several times as long. The copy and its
/// target dir sit at fixed places under the target's tmp dir (as the sandbox's /build/source
/// is fixed), so later runs reuse what did not change.
#[test]
fn package_source_builds_and_passes_its_tests_offline_like_the_nix_sandbox() {
    let test = "package_source_builds_and_passes_its_tests_offline_like_the_nix_sandbox";
    let (nix, bed) = locked_bed!(test);
    let inx = bed.inx_ref();
    let src = on_inx(
        &nix,
        &bed,
        &[
            "eval",
            "--raw",
            &format!("{inx}#packages.x86_64-linux.inx.src"),
        ],
    )
    .ok()
    .stdout;
    assert!(
        src.starts_with("/nix/store/"),
        "src is not a store path: {src}"
    );

    let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sandbox-check");
    std::fs::create_dir_all(&base).unwrap();
    // One run at a time uses the fixed dirs.
    let lock_file = std::fs::File::create(base.join(".lock")).unwrap();
    lock_file.lock().unwrap();
    let source = base.join("source");
    let _ = std::fs::remove_dir_all(&source);
    let mut cp = Command::new("cp");
    cp.args(["-r", "--no-preserve=mode"]).arg(&src).arg(&source);
    Ran::of("cp", cp).ok();
    let bin = base.join("bin");
    let _ = std::fs::remove_dir_all(&bin);
    sandbox_path(&bin);

    // Unwritable in the sandbox; here (as root) a test that writes to HOME would create it.
    let shelter = Path::new("/homeless-shelter");
    assert!(!shelter.exists(), "{} exists: remove it", shelter.display());
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let tool_home = |var: &str, dir: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(dir))
    };
    // --nocapture: the e2e tests' skip notices, to show that they skipped rather than ran.
    for args in [
        &["build", "--offline", "--locked"][..],
        &["test", "--offline", "--locked", "--", "--nocapture"],
    ] {
        let mut cargo = Command::new(bin.join("cargo"));
        cargo
            .args(args)
            .current_dir(&source)
            .env_clear()
            .env("PATH", &bin)
            .env("HOME", "/homeless-shelter")
            .env("CARGO_HOME", tool_home("CARGO_HOME", ".cargo"))
            .env("RUSTUP_HOME", tool_home("RUSTUP_HOME", ".rustup"))
            .env("CARGO_TARGET_DIR", base.join("target"))
            // No Nix at the paths these tests look at, as in the sandbox (else they would run
            // this very test again).
            .env("INX_TEST_NIX_MODERN", "/homeless-shelter")
            .env("INX_TEST_NIX_OLD", "/homeless-shelter");
        if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
            cargo.env("RUSTUP_TOOLCHAIN", toolchain);
        }
        let ran = Ran::of("cargo, as in the sandbox", cargo).ok();
        let summary: Vec<&str> = (ran.stdout.lines().chain(ran.stderr.lines()))
            .filter(|l| {
                l.contains("SKIPPED")
                    || l.starts_with("test result")
                    || l.starts_with("     Running")
            })
            .collect();
        if !summary.is_empty() {
            eprintln!("{}", summary.join("\n"));
        }
        if args[0] == "test" {
            assert!(
                ran.stderr.contains("SKIPPED"),
                "no test said it skipped: the e2e tests must skip without Nix and Incus"
            );
        }
    }
    assert!(
        !shelter.exists(),
        "the package's build or tests wrote to HOME, which the sandbox forbids"
    );
}

/// `nix flake init -t inx` in `bed/user` with `env` (which says where `inx` is found): the
/// welcome text is printed; the new flake's path.
fn init_template(nix: &Nix, bed: &Bed, env: &[(&str, &str)]) -> (String, Ran) {
    let user = bed.path().join("user");
    std::fs::create_dir_all(&user).unwrap();
    let init = nix
        .run_with_env(&user, &["flake", "init", "-t", "inx"], env)
        .ok();
    eprintln!("nix flake init printed:\n{}{}", init.stdout, init.stderr);
    assert!(
        init.stderr.contains("nix develop") && init.stderr.contains("inx up"),
        "the welcome text names the next two commands:\n{}",
        init.stderr
    );
    (flake_ref(&user), init)
}

/// The template's flake `user` locked (its nixpkgs replaced by the stand-in; `inx` as `env`
/// resolves it, or as `extra` overrides it), then checked and evaluated as `nix develop` and
/// `inx up` would.
fn lock_and_check_template(nix: &Nix, bed: &Bed, user: &str, env: &[(&str, &str)], extra: &[&str]) {
    let through_registry = |args: &[&str]| nix.run_with_env(bed.path(), args, env);
    let nixpkgs = bed.nixpkgs_ref();
    let mut args = vec![
        "flake",
        "lock",
        user,
        "--override-input",
        "nixpkgs",
        &nixpkgs,
    ];
    args.extend(extra);
    let locked = through_registry(&args).ok();
    let user_dir = user.trim_start_matches("path:").to_string();
    // Nix announces a new lock file as a warning (quoted one way up to 2.2x, another in 2.34);
    // nothing else may be one.
    locked.assert_no_warnings_except(&[
        &format!("warning: creating lock file '\"{user_dir}/flake.lock\"':"),
        &format!("warning: creating lock file \"{user_dir}/flake.lock\":"),
    ]);
    let lock: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(user_dir + "/flake.lock").unwrap()).unwrap();
    assert_eq!(
        lock["nodes"]["inx"]["original"],
        serde_json::json!({"type": "indirect", "id": "inx"}),
        "{lock}"
    );

    let check = through_registry(&["flake", "check", "--no-build", "--all-systems", user]).ok();
    // The contract's output (design.md): Nix knows no `inxContainers` and says so.
    check.assert_no_warnings_except(&["warning: unknown flake output 'inxContainers'"]);
    eprintln!("{}", check.stderr);

    let manifests = through_registry(&[
        "eval",
        "--json",
        &format!("{user}#inxContainers"),
        "--apply",
        "builtins.mapAttrs (_: c: c.inxManifest)",
    ])
    .ok();
    manifests.assert_no_warnings_except(&[]);
    let manifests = manifests.json();
    eprintln!("{manifests}");
    let hello = &manifests["hello"];
    assert!(
        hello["toplevel"]
            .as_str()
            .is_some_and(|t| t.starts_with("/nix/store/")),
        "{manifests}"
    );
    assert_drv(&hello["drvPath"], "inxContainers.hello's drvPath");
    assert_eq!(
        hello["incus"]["devices"]["forward-tcp-8080"],
        serde_json::json!({
            "type": "proxy",
            "listen": "tcp:127.0.0.1:8080",
            "connect": "tcp:127.0.0.1:80"
        }),
        "the template's port forward: {manifests}"
    );

    for system in ["x86_64-linux", "aarch64-linux"] {
        let shell = through_registry(&[
            "eval",
            "--raw",
            &format!("{user}#devShells.{system}.default.drvPath"),
        ])
        .ok();
        shell.assert_no_warnings_except(&[]);
    }
}

/// `inx` in the user's flake registry, as `nix registry add inx <inx>` puts it (a host with
/// `nixosModules.host` has it in the system registry, which flake inputs read the same way).
/// Nix up to 2.27 resolves the template's input through it. 2.28 and later resolve flake inputs
/// through the global registry only: there the lock fails with Nix's own message, and the
/// welcome text's command (`nix flake lock --override-input inx <inx>`) is what makes it work.
#[test]
fn template_input_resolves_through_the_user_registry_or_the_welcome_texts_command() {
    let test = "template_input_resolves_through_the_user_registry_or_the_welcome_texts_command";
    // Locked: without a lock, `flake init -t` would fetch inx's nixpkgs input.
    let (nix, bed) = locked_bed!(test);
    let inx = bed.inx_ref();
    let config = bed.path().join("config");
    let config = config.display().to_string();
    // No global registry: there is no network to fetch it from.
    let env = [
        ("XDG_CONFIG_HOME", config.as_str()),
        ("NIX_CONFIG", "flake-registry ="),
    ];
    nix.run_with_env(bed.path(), &["registry", "add", "inx", &inx], &env)
        .ok();
    let (user, init) = init_template(&nix, &bed, &env);
    if !nix.at_least(28) {
        lock_and_check_template(&nix, &bed, &user, &env, &[]);
        return;
    }
    let fix = "nix flake lock --override-input inx <inx>";
    assert!(
        init.stderr.contains(fix),
        "the welcome text says what to type on Nix 2.28 and later ({fix}):\n{}",
        init.stderr
    );
    let refused = nix.run_with_env(
        bed.path(),
        &[
            "flake",
            "lock",
            &user,
            "--override-input",
            "nixpkgs",
            &bed.nixpkgs_ref(),
        ],
        &env,
    );
    assert!(
        refused.code != Some(0)
            && refused
                .stderr
                .contains("cannot find flake 'flake:inx' in the flake registries"),
        "Nix {} resolved the input through the user registry, or failed otherwise:\n{}",
        nix.version,
        refused.stderr
    );
    lock_and_check_template(&nix, &bed, &user, &env, &["--override-input", "inx", &inx]);
}

/// What `nixosModules.host` gives a host (services.inx.globalRegistry): `inx` served by the
/// global registry file it writes, the only registry Nix 2.28 and later read for flake inputs.
/// The file is the module's own, evaluated from inx's flake as a host's configuration would;
/// with it, the template's `inx.url = "inx"` locks with no URL written by hand, on every Nix.
#[test]
fn template_input_resolves_through_the_host_modules_global_registry() {
    let test = "template_input_resolves_through_the_host_modules_global_registry";
    let (nix, bed) = locked_bed!(test);
    let probe = user_flake(
        &nix,
        &bed,
        "host",
        r#"{
          registry = (nixpkgs.lib.nixosSystem {
            system = "x86_64-linux";
            modules = [ inx.nixosModules.host { services.inx.enable = true; } ];
          }).config.nix.settings.flake-registry.text;
        }"#,
        &[],
    );
    let registry = nix
        .run(
            bed.path(),
            &[
                "eval",
                "--raw",
                "--no-write-lock-file",
                &format!("{}#registry", flake_ref(&probe)),
            ],
        )
        .ok()
        .stdout;
    let file = bed.path().join("flake-registry.json");
    std::fs::write(&file, &registry).unwrap();
    let config = bed.path().join("config");
    let (config, setting) = (
        config.display().to_string(),
        format!("flake-registry = {}", file.display()),
    );
    // An empty user registry: only the module's file knows `inx`.
    let env = [
        ("XDG_CONFIG_HOME", config.as_str()),
        ("NIX_CONFIG", setting.as_str()),
    ];
    let (user, _) = init_template(&nix, &bed, &env);
    lock_and_check_template(&nix, &bed, &user, &env, &[]);
}

/// The `toplevel` path needs nothing newer than Nix 2.8, and nothing of nixpkgs but (at most)
/// its lib. nixpkgs' packages and NixOS refuse Nix < 2.18, and inx's package needs
/// builtins.readFileType (lib.fileset), so inx's modules and package are not for 2.8 at all.
#[test]
fn toplevel_path_flake_checks_on_nix_2_8() {
    let test = "toplevel_path_flake_checks_on_nix_2_8";
    let nix = need!(test, Nix::old());
    let bed = Bed::new(&need!(test, nixpkgs_lib_tarball()));
    // No nixpkgs package: nixpkgs (as the stand-in) refuses Nix 2.8.
    let outputs = r#"{
      inxContainers.web = inx.lib.mkContainer {
        toplevel = derivation {
          name = "web-system";
          system = "x86_64-linux";
          builder = "/bin/sh";
          args = [ "-c" "echo > $out" ];
        };
        incus.config."limits.cpu" = "1";
      };
    }"#;
    let user = user_flake(&nix, &bed, "user", outputs, &[]);
    let user = flake_ref(&user);
    let check = nix
        .run(
            bed.path(),
            &[
                "flake",
                "check",
                "--no-build",
                "--no-write-lock-file",
                &user,
            ],
        )
        .ok();
    // As on modern Nix, the contract's output is unknown to Nix; nothing else may warn.
    check.assert_no_warnings_except(&["warning: unknown flake output 'inxContainers'"]);
    eprintln!("nix {} flake check printed:\n{}", nix.version, check.stderr);

    let ran = nix
        .run(
            bed.path(),
            &[
                "eval",
                "--json",
                "--no-write-lock-file",
                &format!("{user}#inxContainers"),
                "--apply",
                "builtins.mapAttrs (_: c: c.inxManifest)",
            ],
        )
        .ok();
    let web = &ran.json()["web"];
    eprintln!("{web}");
    assert!(
        web["toplevel"]
            .as_str()
            .is_some_and(|t| t.starts_with("/nix/store/")),
        "{web}"
    );
    assert_eq!(web["incus"]["config"]["limits.cpu"], "1", "{web}");
    assert_drv(&web["drvPath"], "the manifest's drvPath");
}

/// tests/nix/modules.nix: inx's modules evaluated against typed stubs of the NixOS options
/// they set; it returns the checks that failed (none).
#[test]
fn host_and_guest_modules_evaluate_against_typed_option_stubs() {
    let test = "host_and_guest_modules_evaluate_against_typed_option_stubs";
    let nix = need!(test, Nix::modern());
    let bed = Bed::new(&need!(test, nixpkgs_lib_tarball()));
    let file = bed.inx.join("tests/nix/modules.nix");
    assert!(
        file.exists(),
        "tests/nix/modules.nix does not exist (yet): nothing to evaluate"
    );
    // inx is the copy's path: modules.nix wires inx's outputs itself, without its inputs.
    let expr = format!(
        "import {} {{ nixpkgs = builtins.getFlake \"{}\"; inx = {}; }}",
        file.display(),
        bed.nixpkgs_ref(),
        bed.inx.display()
    );
    let ran = nix
        .run(bed.path(), &["eval", "--json", "--impure", "--expr", &expr])
        .ok();
    let failures = ran.json();
    assert_eq!(
        failures,
        serde_json::json!([]),
        "failed module checks:\n{failures:#}\nstderr:\n{}",
        ran.stderr
    );
    // Not asserted: some checks provoke the modules' own warnings on purpose.
    eprintln!("{}", ran.stderr);
}

/// tests/nix/nixos-containers.nix: nixos-container's options through mkContainer and
/// fromNixosContainers give the Incus settings docs/migration.md lists (no check fails), and
/// each refused one fails its evaluation with its own message.
#[test]
fn nixos_container_options_evaluate_to_incus_settings_and_refusals_name_the_incus_way() {
    let test = "nixos_container_options_evaluate_to_incus_settings_and_refusals_name_the_incus_way";
    let nix = need!(test, Nix::modern());
    let bed = Bed::new(&need!(test, nixpkgs_lib_tarball()));
    let checks = format!(
        "(import {} {{ nixpkgs = builtins.getFlake \"{}\"; inx = {}; }})",
        bed.inx.join("tests/nix/nixos-containers.nix").display(),
        bed.nixpkgs_ref(),
        bed.inx.display()
    );
    let eval = |expr: String| nix.run(bed.path(), &["eval", "--json", "--impure", "--expr", &expr]);
    let failed = eval(format!("{checks}.failed")).ok();
    assert_eq!(
        failed.json(),
        serde_json::json!([]),
        "failed checks; stderr:\n{}",
        failed.stderr
    );
    let refusals = eval(format!(
        "builtins.mapAttrs (_: r: r.message) {checks}.refusals"
    ))
    .ok()
    .json();
    let refusals = refusals.as_object().expect("refusals by name");
    assert!(refusals.len() >= 10, "{refusals:?}");
    for (name, message) in refusals {
        let ran = eval(format!(
            "builtins.deepSeq {checks}.refusals.{name}.value null"
        ));
        let message = message.as_str().unwrap();
        assert_ne!(ran.code, Some(0), "{name} evaluated: {}", ran.stdout);
        // Nix wraps long messages: compare with the whitespace folded.
        let folded = ran.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            folded.contains(message),
            "{name}: the error does not say {message:?}:\n{}",
            ran.stderr
        );
    }
}

/// The stand-in itself (tests/flake/stand-in.nix): what nixpkgs rejects fails there too, and
/// what it accepts evaluates, so a green suite means something.
#[test]
fn stand_in_accepts_and_rejects_what_nixpkgs_does() {
    let test = "stand_in_accepts_and_rejects_what_nixpkgs_does";
    let nix = need!(test, Nix::modern());
    let bed = Bed::new(&need!(test, nixpkgs_lib_tarball()));
    let expr = format!(
        "import {} {{ nixpkgs = builtins.getFlake \"{}\"; }}",
        bed.inx.join("tests/flake/stand-in.nix").display(),
        bed.nixpkgs_ref()
    );
    let ran = nix
        .run(bed.path(), &["eval", "--json", "--impure", "--expr", &expr])
        .ok();
    assert_eq!(ran.json(), serde_json::json!([]), "{}", ran.stderr);
}

/// The containers each of examples/ declares. Every folder there must be listed, so a new
/// example cannot go untested.
const EXAMPLES: &[(&str, &[&str])] = &[
    ("nixos", &["web"]),
    ("nixos-containers", &["db", "scratch", "web"]),
    ("offline", &["demo"]),
    ("reuse", &["box"]),
    ("several", &["db", "web", "worker"]),
];

/// Every flake in examples/, from a copy of the checkout that is a git work tree as a clone is
/// (a relative `path:../..` input reaches the rest of the tree only there), as `inx up` reads
/// it: its `inx` input that copy, its nixpkgs the stand-in, the offline example's busybox a
/// folder made here. Each container's manifest evaluates to a system with a derivation.
#[test]
fn every_example_evaluates_its_containers() {
    let test = "every_example_evaluates_its_containers";
    let nix = need!(test, Nix::modern());
    let bed = Bed::new(&need!(test, nixpkgs_lib_tarball()));
    let examples = bed.inx.join("examples");
    let mut found: Vec<String> = std::fs::read_dir(&examples)
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("flake.nix").exists())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let listed: Vec<&str> = EXAMPLES.iter().map(|(name, _)| *name).collect();
    assert_eq!(found, listed, "examples/ and this test's EXAMPLES differ");
    for lock in EXAMPLES
        .iter()
        .map(|(name, _)| examples.join(name).join("flake.lock"))
    {
        // A lock a local run left behind (try.sh's, by another Nix) is not the example's.
        let _ = std::fs::remove_file(lock);
    }
    let mut git = Command::new("git");
    git.arg("-C").arg(&bed.inx).args(["init", "-q"]);
    Ran::of("git", git).ok();
    let mut git = Command::new("git");
    git.arg("-C").arg(&bed.inx).args(["add", "-A"]);
    Ran::of("git", git).ok();

    // The folder the offline example's `busybox` input names on a host that ran try.sh.
    let busybox = bed.path().join("busybox");
    std::fs::create_dir_all(busybox.join("bin")).unwrap();
    std::fs::write(busybox.join("bin/busybox"), "not run here").unwrap();
    std::os::unix::fs::symlink("busybox", busybox.join("bin/sh")).unwrap();

    for (name, containers) in EXAMPLES {
        let dir = examples.join(name);
        let text = std::fs::read_to_string(dir.join("flake.nix")).unwrap();
        let (nixpkgs, busybox) = (bed.nixpkgs_ref(), flake_ref(&busybox));
        let mut args = vec![
            "eval",
            "--json",
            "--no-write-lock-file",
            "--apply",
            "builtins.mapAttrs (_: c: c.inxManifest)",
        ];
        // A bare path: Nix reads it as a folder of the git work tree around it.
        let flake = format!("{}#inxContainers", dir.display());
        args.push(&flake);
        if text.contains("nixpkgs.url") {
            args.extend(["--override-input", "nixpkgs", &nixpkgs]);
        }
        if text.contains("busybox = {") {
            args.extend(["--override-input", "busybox", &busybox]);
        }
        let ran = nix.run(bed.path(), &args).ok();
        // The copy is not committed, and the examples have no lock (a clone makes its own).
        ran.assert_no_warnings_except(&[
            &format!("warning: Git tree '{}' is dirty", bed.inx.display()),
            &format!(
                "warning: not writing modified lock file of flake 'git+file://{}?dir=examples/{name}':",
                bed.inx.display()
            ),
        ]);
        let manifests = ran.json();
        let names: Vec<&str> = manifests
            .as_object()
            .unwrap_or_else(|| panic!("examples/{name}: {manifests}"))
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(names, *containers, "examples/{name} declares");
        for (container, manifest) in manifests.as_object().unwrap() {
            assert!(
                manifest["toplevel"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("/nix/store/")),
                "examples/{name}: {container}: {manifest}"
            );
            assert_drv(
                &manifest["drvPath"],
                &format!("examples/{name}: {container}'s drvPath"),
            );
        }
    }
}

/// The worst `systemd-analyze security` exposure the `inx-roots` unit may score (0 is best, 10
/// worst; it scored 1.7 when this was set). What keeps it above 0 is what the watcher needs:
/// root, CAP_SYS_PTRACE and CAP_DAC_* to read containers' files, full /proc.
const ROOTS_EXPOSURE_MAX: f64 = 1.7;

/// The host module's `inx-roots` unit (tests/nix/roots-unit.nix renders it as NixOS would),
/// scored offline by systemd's own analyzer: a change that weakens its hardening fails here.
#[test]
fn roots_service_hardening_scores_at_most_1_7_offline() {
    let test = "roots_service_hardening_scores_at_most_1_7_offline";
    let nix = need!(test, Nix::modern());
    let bed = Bed::new(&need!(test, nixpkgs_lib_tarball()));
    let analyze = need!(
        test,
        which::which("systemd-analyze")
            .map_err(|e| format!("no systemd-analyze on PATH ({e}); Debian's systemd has it"))
    );
    let expr = format!(
        "import {} {{ nixpkgs = builtins.getFlake \"{}\"; inx = {}; }}",
        bed.inx.join("tests/nix/roots-unit.nix").display(),
        bed.nixpkgs_ref(),
        bed.inx.display()
    );
    let unit = nix
        .run(bed.path(), &["eval", "--raw", "--impure", "--expr", &expr])
        .ok()
        .stdout;
    let units = bed.path().join("units");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(units.join("inx-roots.service"), &unit).unwrap();
    let mut cmd = Command::new(analyze);
    cmd.args([
        "security",
        "--offline=true",
        "--no-pager",
        "inx-roots.service",
    ])
    .current_dir(&units);
    let ran = Ran::of("systemd-analyze", cmd).ok();
    eprintln!("{unit}\n{}", ran.stdout);
    let score: f64 = ran
        .stdout
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for inx-roots.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no overall exposure level in:\n{}", ran.stdout));
    assert!(
        score <= ROOTS_EXPOSURE_MAX,
        "inx-roots scores {score}, worse than {ROOTS_EXPOSURE_MAX}:\n{}",
        ran.stdout
    );
}

/// The VM test's Python (`checks.x86_64-linux.vm`, never run here) compiles: a syntax error
/// in it would otherwise wait for the first machine with KVM and nixpkgs.
#[test]
fn vm_test_script_is_valid_python() {
    let test = "vm_test_script_is_valid_python";
    let (nix, bed) = locked_bed!(test);
    let python = need!(
        test,
        which::which("python3").map_err(|e| format!("no python3 on PATH ({e})"))
    );
    let inx = bed.inx_ref();
    let script = on_inx(
        &nix,
        &bed,
        &[
            "eval",
            "--raw",
            &format!("{inx}#checks.x86_64-linux.vm.driver.testScript"),
        ],
    )
    .ok()
    .stdout;
    assert!(script.contains("start_all()"), "{script}");
    let file = bed.path().join("vm-test-script.py");
    std::fs::write(&file, &script).unwrap();
    let mut cmd = Command::new(python);
    cmd.args([
        "-c",
        "import sys; compile(open(sys.argv[1]).read(), 'testScript', 'exec')",
    ])
    .arg(&file);
    Ran::of("python3", cmd).ok();
}
