# The stand-in's package set (legacyPackages.<system>; see flake.nix for what the stand-in is).
#
# Every package or function that inx's flake, its modules, its template and its VM test touch,
# as real derivations that are never built (their builder fails): `nix flake check --no-build`
# and drvPaths work, builds do not. Each keeps the attributes of the real one that inx reads
# (pname, version, meta.mainProgram, meta.description, passthru such as incus.client) and
# rejects arguments where the real function would, when that is cheap to check. Some checks the
# real one makes at build time are made here at evaluation time, since nothing is built here;
# each says so. Versions are about those of nixos-unstable; nothing reads them.
#
# Add a package where a module or test needs one: most are one `tool` line below.
{
  lib,
  system,
  # The stand-in's lib.nixosSystem (nixos/eval.nix), for testers.runNixOSTest.
  nixosSystem,
  # The stand-in's own folder, as pkgs.path is nixpkgs'.
  path,
}:

let
  platform = lib.systems.elaborate system;

  # stdenv.mkDerivation's shape: `name` or `pname` and `version`; `meta`, `passthru` and `env`
  # kept out of the derivation's environment; attributes or a function of the final attributes;
  # overrideAttrs; meta.platforms and meta.broken checked when drvPath or outPath is read, as
  # nixpkgs' check-meta.nix does.
  mkDerivation =
    attrsOrFn:
    let
      rattrs = if lib.isFunction attrsOrFn then attrsOrFn else _: attrsOrFn;
      attrs = rattrs (attrs // { finalPackage = drv; });

      name =
        attrs.name or (
          if attrs ? pname && attrs ? version then
            "${attrs.pname}-${attrs.version}"
          else
            throw "stdenv.mkDerivation: give `name`, or `pname` and `version`"
        );
      env = attrs.env or { };
      overlap = lib.attrNames (builtins.intersectAttrs env attrs);
      meta = {
        inherit name;
        outputsToInstall = [ "out" ];
        available = lib.meta.availableOn platform { inherit meta; } && !(meta.broken or false);
      }
      // attrs.meta or { };

      valid =
        if overlap != [ ] then
          throw "${name}: the `env` attribute set cannot contain any attributes passed to derivation. The following attributes are overlapping: ${lib.concatStringsSep ", " overlap}"
        else if meta.broken or false then
          throw "Package ‘${name}’ is marked as broken, refusing to evaluate."
        else if !lib.meta.availableOn platform { inherit meta; } then
          throw "Package ‘${name}’ is not available on the requested hostPlatform:\n  hostPlatform.system = \"${platform.system}\"\n  package.meta.platforms = ${builtins.toJSON (meta.platforms or [ ])}"
        else
          true;

      drv = lib.extendDerivation valid (
        attrs.passthru or { }
        // {
          inherit meta;
          overrideAttrs = f: mkDerivation (lib.extends (lib.toExtension f) rattrs);
        }
      ) (builtins.derivation (builtins.removeAttrs attrs [ "meta" "passthru" "env" "pos" "finalPackage" ] // env // {
        inherit name;
        system = platform.system;
        builder = "/bin/sh";
        args = [
          "-c"
          "echo '${name}: the nixpkgs stand-in of inx tests builds nothing' >&2; exit 1"
        ];
      }));
    in
    drv;

  stdenv = {
    hostPlatform = platform;
    buildPlatform = platform;
    targetPlatform = platform;
    inherit (platform) isLinux isDarwin;
    inherit mkDerivation;
  };

  # A program: the attributes of a real package that modules and flakes read.
  tool =
    pname: version: description:
    {
      mainProgram ? pname,
      platforms ? lib.platforms.unix,
      passthru ? { },
    }:
    mkDerivation {
      inherit pname version passthru;
      meta = {
        inherit description mainProgram platforms;
      };
    };

  rustVersion = "1.91.1";

  # writeTextFile and what is made of it (pkgs/build-support/trivial-builders).
  writeTextFile =
    {
      name,
      text,
      executable ? false,
      destination ? "",
      checkPhase ? "",
      meta ? { },
      passthru ? { },
      allowSubstitutes ? false,
      preferLocalBuild ? true,
      derivationArgs ? { },
    }:
    assert lib.assertMsg (destination != "" -> (lib.hasPrefix "/" destination && destination != "/"))
      "destination must be an absolute path, relative to the derivation's out path, got '${destination}' instead.";
    assert lib.assertMsg (builtins.isString text) "writeTextFile: text must be a string";
    let
      bin = builtins.match "/bin/([^/]+)" destination;
    in
    mkDerivation (
      {
        inherit
          name
          text
          executable
          destination
          checkPhase
          passthru
          allowSubstitutes
          preferLocalBuild
          ;
        passAsFile = [ "text" ];
        meta = lib.optionalAttrs (bin != null) { mainProgram = builtins.head bin; } // meta;
      }
      // derivationArgs
    );

  runCommandWith =
    name: env: buildCommand:
    assert lib.assertMsg (builtins.isString buildCommand) "runCommand ${name}: the build command must be a string";
    mkDerivation (
      {
        inherit name buildCommand;
        passAsFile = [ "buildCommand" ];
      }
      // env
    );

  # rustPlatform.buildRustPackage: the checks nixpkgs makes at evaluation (a source of vendored
  # dependencies; buildType), the ones importCargoLock makes (a lock file; a hash for every git
  # dependency) and, early, a missing `src`. What cargo checks in the build (the source is
  # complete, Cargo.lock matches) is not read here: `nix flake check --no-build` evaluates
  # without adding `src` to the store. tests/flake.rs builds the source with cargo instead.
  buildRustPackage =
    argsOrFn:
    mkDerivation (
      finalAttrs:
      let
        args = if lib.isFunction argsOrFn then argsOrFn finalAttrs else argsOrFn;
        name = args.name or "${args.pname}-${args.version}";
        buildType = args.buildType or "release";
        given = n: args ? ${n} && args.${n} != null;

        lock = args.cargoLock;
        lockText =
          if lock ? lockFile then
            builtins.readFile lock.lockFile
          else
            lock.lockFileContents
              or (throw "Either importCargoLock argument 'lockFile' or 'lockFileContents' must be set");
        lockedPackages = (builtins.fromTOML lockText).package or [ ];
        unvendorable = lib.filter (
          p:
          (lib.hasPrefix "git+" (p.source or "") && !((lock.outputHashes or { }) ? "${p.name}-${p.version}"))
          || (lib.hasPrefix "registry+" (p.source or "") && !(p ? checksum))
        ) lockedPackages;
        cargoDeps =
          if unvendorable != [ ] then
            let
              p = builtins.head unvendorable;
            in
            throw "No hash was found while vendoring the git dependency ${p.name}-${p.version}. You can add a hash through the `outputHashes` argument of `importCargoLock`"
          else
            runCommandWith "cargo-vendor-dir" { lockFileContents = lockText; } "";

        # nixpkgs fails at unpackPhase without it; here at once.
        src =
          if given "src" || given "srcs" then
            args.src or null
          else
            throw "${name}: buildRustPackage needs `src` (variable $src or $srcs should point to the source)";
      in
      assert lib.assertMsg (lib.any given [
        "cargoHash"
        "cargoVendorDir"
        "cargoDeps"
        "cargoLock"
      ]) "cargoHash, cargoVendorDir, cargoDeps, or cargoLock must be set";
      assert lib.assertMsg (
        buildType == "release" || buildType == "debug"
      ) "buildRustPackage: buildType must be \"release\" or \"debug\"";
      builtins.removeAttrs args [
        "cargoLock"
        "depsExtraArgs"
        "cargoUpdateHook"
      ]
      // {
        # As given; the drvPath forces it, which evaluates the fileset.
        inherit src;
        cargoDeps =
          if given "cargoDeps" then
            args.cargoDeps
          else if given "cargoLock" then
            cargoDeps
          else
            runCommandWith "${name}-vendor" { hash = args.cargoHash or ""; } "";
        cargoBuildType = buildType;
        cargoCheckType = args.checkType or buildType;
        doCheck = args.doCheck or true;
        strictDeps = true;
        nativeBuildInputs = (args.nativeBuildInputs or [ ]) ++ [
          pkgs.cargo
          pkgs.rustc
        ];
        meta = {
          platforms = pkgs.rustc.meta.platforms;
        }
        // args.meta or { };
        # The stand-in only: what the package was made with, for tests to read.
        passthru = args.passthru or { } // {
          standInArgs = args;
        };
      }
    );

  # mkShell: `packages` and the inputs of `inputsFrom` (minus those themselves) in the shell.
  mkShell =
    {
      name ? "nix-shell",
      packages ? [ ],
      inputsFrom ? [ ],
      ...
    }@attrs:
    let
      merged = n: attrs.${n} or [ ] ++ lib.subtractLists inputsFrom (lib.flatten (lib.catAttrs n inputsFrom));
    in
    mkDerivation (
      builtins.removeAttrs attrs [
        "packages"
        "inputsFrom"
      ]
      // {
        inherit name;
        buildInputs = merged "buildInputs";
        nativeBuildInputs = packages ++ merged "nativeBuildInputs";
        propagatedBuildInputs = merged "propagatedBuildInputs";
        propagatedNativeBuildInputs = merged "propagatedNativeBuildInputs";
        shellHook = lib.concatStringsSep "\n" (lib.catAttrs "shellHook" (lib.reverseList inputsFrom ++ [ attrs ]));
        phases = [ "buildPhase" ];
        preferLocalBuild = true;
      }
    );

  pkgs = lib.makeExtensible (
    self:
    {
      # As pkgs/top-level/all-packages.nix marks the final set: what `types.pkgs` (the type of
      # NixOS's nixpkgs.pkgs) checks.
      _type = "pkgs";
      inherit lib path stdenv;
      stdenvNoCC = stdenv;
      buildPackages = self;
      callPackage = lib.callPackageWith self;
      appendOverlays = lib.foldl' (p: p.extend) self;

      # A deprecated alias in nixpkgs (aliases.nix), which warns there too.
      system = lib.warn "'system' has been renamed to/replaced by 'stdenv.hostPlatform.system'" platform.system;

      inherit mkShell writeTextFile;
      rustPlatform = {
        inherit buildRustPackage;
      };
      writeText = name: text: writeTextFile { inherit name text; };
      writeTextDir =
        path: text:
        writeTextFile {
          inherit text;
          name = builtins.baseNameOf path;
          destination = "/${path}";
        };
      writeScript =
        name: text:
        writeTextFile {
          inherit name text;
          executable = true;
        };
      writeScriptBin =
        name: text:
        writeTextFile {
          inherit name text;
          executable = true;
          destination = "/bin/${name}";
        };
      writeShellScript = name: text: self.writeScript name "#!/bin/sh\n${text}";
      writeShellScriptBin = name: text: self.writeScriptBin name "#!/bin/sh\n${text}";
      writeShellApplication =
        {
          name,
          text,
          runtimeInputs ? [ ],
          ...
        }:
        writeTextFile {
          inherit name text;
          executable = true;
          destination = "/bin/${name}";
          derivationArgs.runtimeInputs = runtimeInputs;
        };
      runCommand = runCommandWith;
      runCommandLocal = runCommandWith;
      symlinkJoin =
        { name, paths, ... }@args:
        mkDerivation (
          args
          // {
            inherit paths;
          }
        );

      testers.runNixOSTest = import ./run-nixos-test.nix {
        inherit lib nixosSystem;
        hostPkgs = self;
      };

      installShellFiles = mkDerivation { name = "install-shell-files"; };

      rustc = tool "rustc" rustVersion "A safe, concurrent, practical language (wrapper script)" {
        platforms = lib.platforms.all;
      };
      cargo = tool "cargo" rustVersion "Downloads your Rust project's dependencies and builds your project" { };
      clippy = tool "clippy" rustVersion "Bunch of lints to catch common mistakes and improve your Rust code" {
        mainProgram = "cargo-clippy";
      };
      rustfmt = tool "rustfmt" rustVersion "Tool for formatting Rust code according to style guidelines" { };
      nixfmt = tool "nixfmt" "1.1.0" "Official formatter for Nix code" { };
      # pkgs/by-name/md/mdbook (pkgs.mdbook): the manual's book tool in inx's devShell.
      mdbook = tool "mdbook" "0.4.52" "Create books from MarkDown" { };
      nixfmt-tree = tool "nixfmt-tree" "1.1.0" "Official Nix formatter zero-setup starter using treefmt" {
        mainProgram = "treefmt";
      };

      htop = tool "htop" "3.4.1" "Interactive process viewer" { };
      nginx = tool "nginx" "1.28.0" "Reverse proxy and lightweight webserver" { };
      curl = tool "curl" "8.16.0" "Command line tool for transferring files with URL syntax" { };
      incus = tool "incus" "6.18.0" "Powerful system container and virtual machine manager" {
        platforms = lib.platforms.linux;
        passthru.client = self.incus-client;
      };
      incus-lts = tool "incus" "6.0.5" "Powerful system container and virtual machine manager" {
        platforms = lib.platforms.linux;
        passthru.client = self.incus-client;
      };
      incus-client = tool "incus-client" "6.18.0" "Powerful system container and virtual machine manager" {
        mainProgram = "incus";
      };
      distrobuilder = tool "distrobuilder" "3.2" "System container image builder for LXC and LXD" {
        platforms = lib.platforms.linux;
        passthru.generator = mkDerivation {
          name = "distrobuilder-nixos-generator";
          meta.platforms = lib.platforms.linux;
        };
      };
      lxc = tool "lxc" "6.0.5" "Userspace tools for Linux Containers, a lightweight virtualization system" {
        mainProgram = "lxc-start";
        platforms = lib.platforms.linux;
      };
      lxcfs = tool "lxcfs" "6.0.5" "FUSE filesystem for LXC" { platforms = lib.platforms.linux; };
      nix = tool "nix" "2.31.2" "Powerful package manager that makes package management reliable and reproducible" { };
      systemd = tool "systemd" "258" "System and service manager for Linux" {
        mainProgram = "systemctl";
        platforms = lib.platforms.linux;
      };
      bashInteractive = tool "bash-interactive" "5.3" "GNU Bourne-Again Shell, the de facto standard shell on Linux" {
        mainProgram = "bash";
      };
      coreutils = tool "coreutils" "9.8" "GNU Core Utilities" { mainProgram = "ls"; };
      nftables = tool "nftables" "1.1.5" "Project that aims to replace the existing {ip,ip6,arp,eb}tables framework" {
        mainProgram = "nft";
        platforms = lib.platforms.linux;
      };
      openssh = tool "openssh" "10.2p1" "Implementation of the SSH protocol" { mainProgram = "ssh"; };
      qemu = tool "qemu" "10.1.2" "Generic and open source machine emulator and virtualizer" {
        mainProgram = "qemu-kvm";
      };
      qemu_test = self.qemu;
    }
  );
in
pkgs
