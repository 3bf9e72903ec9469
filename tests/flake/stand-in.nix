# The nixpkgs stand-in against itself, for tests/flake.rs (stand_in_accepts_and_rejects_what_nixpkgs_does):
# calls nixpkgs rejects must fail here too, and calls it accepts must evaluate. The result is
# the list of cases that did not (empty: all did).
{ nixpkgs }:
let
  inherit (nixpkgs) lib;
  pkgs = nixpkgs.legacyPackages.x86_64-linux;
  darwin = nixpkgs.legacyPackages.x86_64-darwin;

  lock = ''
    version = 3
    [[package]]
    name = "a"
    version = "0.1.0"
  '';
  gitLock = lock + ''
    [[package]]
    name = "b"
    version = "1.0.0"
    source = "git+https://example.invalid/b?rev=1#1"
  '';
  rust =
    args:
    pkgs.rustPlatform.buildRustPackage (
      {
        pname = "a";
        version = "0.1.0";
        src = ./.;
        cargoLock.lockFileContents = lock;
      }
      // args
    );
  test =
    args:
    pkgs.testers.runNixOSTest (
      {
        name = "t";
        nodes.machine = { };
        testScript = "machine.start()";
      }
      // args
    );

  evaluates = v: (builtins.tryEval (builtins.deepSeq v v)).success;
  rejected = {
    "buildRustPackage without cargoLock or cargoHash" = (rust { cargoLock = null; }).drvPath;
    "buildRustPackage without src" = (rust { src = null; }).drvPath;
    "buildRustPackage with buildType = fast" = (rust { buildType = "fast"; }).drvPath;
    "buildRustPackage with a git dependency and no outputHashes" =
      (rust { cargoLock.lockFileContents = gitLock; }).drvPath;
    "writeTextFile with a relative destination" =
      (pkgs.writeTextFile {
        name = "a";
        text = "";
        destination = "a";
      }).drvPath;
    "mkDerivation with env overlapping its attributes" =
      (pkgs.stdenv.mkDerivation {
        name = "a";
        x = "1";
        env.x = "2";
      }).drvPath;
    "a Linux-only package on Darwin" = darwin.incus.drvPath;
    "runNixOSTest with an unknown option" = (test { typo = 1; }).drvPath;
    "runNixOSTest with a testScript that is no string" = (test { testScript = 1; }).drvPath;
    "runNixOSTest with an undeclared NixOS option in a node" =
      (test { nodes.machine.no.such.option = 1; }).drvPath;
  };
  accepted = {
    "buildRustPackage" = (rust { }).drvPath;
    "buildRustPackage with a git dependency and its hash" =
      (rust {
        cargoLock = {
          lockFileContents = gitLock;
          outputHashes."b-1.0.0" = lib.fakeHash;
        };
      }).drvPath;
    "buildRustPackage as a function of its final attributes" =
      (pkgs.rustPlatform.buildRustPackage (finalAttrs: {
        pname = "a";
        version = "0.1.0";
        src = ./.;
        cargoHash = lib.fakeHash;
        passthru.v = finalAttrs.version;
      })).v;
    "mkShell takes the inputs of inputsFrom" = lib.elem pkgs.cargo (pkgs.mkShell { inputsFrom = [ (rust { }) ]; }).nativeBuildInputs;
    "overrideAttrs" = ((rust { }).overrideAttrs { pname = "b"; }).name == "b-0.1.0";
    "callPackage and override" = ((pkgs.callPackage ({ htop }: htop) { }).override { htop = pkgs.curl; }).pname == "curl";
    "every program has a mainProgram" = map lib.getExe [
      pkgs.cargo
      pkgs.clippy
      pkgs.curl
      pkgs.distrobuilder
      pkgs.htop
      pkgs.incus
      pkgs.incus-lts.client
      pkgs.nginx
      pkgs.nixfmt
      pkgs.nixfmt-tree
      pkgs.rustc
      pkgs.rustfmt
    ];
    "distrobuilder.generator" = pkgs.distrobuilder.generator.drvPath;
    "writeTextDir" = (pkgs.writeTextDir "a/b" "").drvPath;
    "runCommand" = (pkgs.runCommand "a" { } "touch $out").drvPath;
    "canExecute" = pkgs.stdenv.buildPlatform.canExecute pkgs.stdenv.hostPlatform;
    "runNixOSTest" = (test { testScript = { nodes, ... }: "# ${nodes.machine.system.build.toplevel}"; }).drvPath;
    "runNixOSTest's nodes" = (test { }).nodes.machine.system.build.toplevel.drvPath;
  };
in
lib.mapAttrsToList (n: _: "not rejected: ${n}") (lib.filterAttrs (_: evaluates) rejected)
++ lib.mapAttrsToList (n: _: "not accepted: ${n}") (
  lib.filterAttrs (_: v: !(evaluates v) || v == false) accepted
)
