# The stand-in's pkgs.testers.runNixOSTest: nixpkgs' test framework (nixos/lib/testing/*.nix)
# as typed option declarations, evaluated with the real lib.evalModules, so that a test with a
# misspelt or mistyped test option fails here as it would there. Every node is evaluated with
# the stand-in's lib.nixosSystem, with the test's `defaults`, `node.specialArgs` and the `nodes`
# module argument, plus the stub modules of nixpkgs' qemu-vm.nix and test-instrumentation.nix
# where nixos/ has them (they declare the `virtualisation.*` options of test nodes). The result
# is a derivation, never built, that depends on every node's system and on the test script.
{
  lib,
  nixosSystem,
  hostPkgs,
}:

testModule:
let
  inherit (lib) mkOption types;

  # nixpkgs' test framework adds these to every node.
  nodeBaseModules = lib.filter builtins.pathExists [
    ./nixos/modules/virtualisation/qemu-vm.nix
    ./nixos/modules/testing/test-instrumentation.nix
  ];

  framework =
    { config, ... }:
    let
      baseOS = nixosSystem {
        inherit (config.node) specialArgs;
        modules = nodeBaseModules ++ [
          config.defaults
          config.extraBaseModules
          {
            key = "nodes";
            _module.args.nodes = config.nodes;
          }
          # node.pkgs (runNixOSTest sets it to hostPkgs) fixes the nodes' platform.
          (lib.mkIf config.node.pkgsReadOnly {
            nixpkgs.hostPlatform = config.node.pkgs.stdenv.hostPlatform.system;
          })
          { nixpkgs.hostPlatform = lib.mkDefault hostPkgs.stdenv.hostPlatform.system; }
        ];
      };

      testScriptString =
        if lib.isFunction config.testScript then
          config.testScript { inherit (config) nodes; }
        else
          config.testScript;

      systems = lib.concatMap (
        node: [ node.system.build.toplevel ] ++ lib.optional (node.system.build ? vm) node.system.build.vm
      ) (lib.attrValues config.nodes);

      driver = hostPkgs.runCommand "nixos-test-driver-${config.name}" {
        testScript = testScriptString;
        inherit systems;
        inherit (config) passthru;
        meta = config.meta // {
          mainProgram = "nixos-test-driver";
        };
      } "";
    in
    {
      options = {
        name = mkOption {
          type = types.str;
          description = "The name of the test.";
        };
        hostPkgs = mkOption {
          type = types.raw;
          description = "Nixpkgs used outside the nodes.";
        };
        nodes = mkOption {
          type = types.lazyAttrsOf baseOS.type;
          description = "The NixOS configurations of the test's machines.";
        };
        defaults = mkOption {
          type = types.deferredModule;
          default = { };
          description = "NixOS configuration applied to all nodes.";
        };
        extraBaseModules = mkOption {
          type = types.deferredModule;
          default = { };
          description = "NixOS configuration applied to all nodes, as base modules.";
        };
        node.pkgs = mkOption {
          type = types.nullOr types.raw;
          default = null;
          description = "The Nixpkgs for the nodes (makes nixpkgs.* read-only).";
        };
        node.pkgsReadOnly = mkOption {
          type = types.bool;
          default = config.node.pkgs != null;
          description = "Whether the nodes' nixpkgs.* options are read-only.";
        };
        node.specialArgs = mkOption {
          type = types.lazyAttrsOf types.raw;
          default = { };
          description = "Module arguments of the nodes, available in `imports`.";
        };
        testScript = mkOption {
          type = types.either types.str (types.functionTo types.str);
          description = "The Python test script, or a function of `{ nodes }` to it.";
        };
        meta = mkOption {
          type = types.submodule {
            options = {
              maintainers = mkOption {
                type = types.listOf types.raw;
                default = [ ];
              };
              timeout = mkOption {
                type = types.nullOr types.int;
                default = 3600;
              };
              broken = mkOption {
                type = types.bool;
                default = false;
              };
              platforms = mkOption {
                type = types.listOf types.raw;
                default = lib.platforms.linux ++ lib.platforms.darwin;
              };
            };
          };
          default = { };
          apply = lib.filterAttrs (_: v: v != null);
          description = "The meta attributes of the test derivation.";
        };
        globalTimeout = mkOption {
          type = types.int;
          default = 3600;
        };
        enableOCR = mkOption {
          type = types.bool;
          default = false;
        };
        enableDebugHook = mkOption {
          type = types.bool;
          default = false;
        };
        skipLint = mkOption {
          type = types.bool;
          default = false;
        };
        skipTypeCheck = mkOption {
          type = types.bool;
          default = false;
        };
        extraPythonPackages = mkOption {
          type = types.functionTo (types.listOf types.package);
          default = _: [ ];
        };
        extraDriverArgs = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        sshBackdoor.enable = mkOption {
          type = types.bool;
          default = false;
        };
        sshBackdoor.vsockOffset = mkOption {
          type = types.ints.between 2 4294967296;
          default = 2;
        };
        qemu.package = mkOption {
          type = types.package;
          default = hostPkgs.qemu_test;
        };
        interactive = mkOption {
          type = types.deferredModule;
          default = { };
          description = "Settings of the interactive driver (not evaluated by the stand-in).";
        };
        passthru = mkOption {
          type = types.lazyAttrsOf types.raw;
          default = { };
        };
        driver = mkOption {
          type = types.package;
          readOnly = true;
        };
        test = mkOption {
          type = types.package;
          readOnly = true;
        };
      };

      config = {
        _module.args = {
          inherit hostPkgs;
          inherit (config) nodes;
        };
        inherit driver;
        passthru = {
          inherit driver;
          inherit (config) nodes;
          inherit config;
        };
        test = hostPkgs.runCommand "vm-test-run-${config.name}" {
          requiredSystemFeatures = [
            "nixos-test"
            "kvm"
          ];
          inherit driver;
          inherit (config) passthru meta;
        } "";
      };
    };

  evaluated = lib.evalModules {
    class = "nixosTest";
    modules = [
      framework
      {
        inherit hostPkgs;
        node.pkgs = hostPkgs;
      }
      (lib.setDefaultModuleLocation "the argument that was passed to pkgs.runNixOSTest" testModule)
    ];
  };
in
evaluated.config.test
