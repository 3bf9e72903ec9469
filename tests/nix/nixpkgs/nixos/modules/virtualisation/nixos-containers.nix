# Typed stub of nixos/modules/virtualisation/nixos-containers.nix: the `containers` option with
# the sub-options inx.lib.fromNixosContainers reads, their types and defaults as nixpkgs declares
# them. Two differences, both on purpose: `config` keeps its definitions as written
# (deferredModule; nixpkgs evaluates them into a NixOS configuration, which inx never reads),
# and `path` has no default from it. `pkgs` is declared as nixpkgs keeps the removed option: with
# no default, so reading it throws. Not in module-list.nix: tests/nix/nixos-containers.nix adds
# it to the host configurations it evaluates.
{ lib, ... }:
let
  inherit (lib) mkOption types;
  networkOptions = {
    hostBridge = mkOption { type = types.nullOr types.str; default = null; };
    forwardPorts = mkOption {
      type = types.listOf (types.submodule {
        options = {
          protocol = mkOption { type = types.str; default = "tcp"; };
          hostPort = mkOption { type = types.port; };
          containerPort = mkOption { type = types.nullOr types.port; default = null; };
        };
      });
      default = [ ];
    };
    hostAddress = mkOption { type = types.nullOr types.str; default = null; };
    hostAddress6 = mkOption { type = types.nullOr types.str; default = null; };
    localAddress = mkOption { type = types.nullOr types.str; default = null; };
    localAddress6 = mkOption { type = types.nullOr types.str; default = null; };
    localMacAddress = mkOption {
      type = types.nullOr (types.strMatching "([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}");
      default = null;
    };
  };
  bindMountOpts = { name, ... }: {
    options = {
      mountPoint = mkOption { type = types.str; };
      hostPath = mkOption { type = types.nullOr types.str; default = null; };
      isReadOnly = mkOption { type = types.bool; default = true; };
    };
    config.mountPoint = lib.mkDefault name;
  };
  allowedDeviceOpts = {
    options = {
      node = mkOption { type = types.str; };
      modifier = mkOption { type = types.str; };
    };
  };
in
{
  options.containers = mkOption {
    type = types.attrsOf (types.submodule {
      options = {
        config = mkOption { type = types.deferredModule; };
        path = mkOption { type = types.path; };
        additionalCapabilities = mkOption { type = types.listOf types.str; default = [ ]; };
        nixpkgs = mkOption { type = types.path; default = ./.; };
        specialArgs = mkOption { type = types.attrsOf types.unspecified; default = { }; };
        ephemeral = mkOption { type = types.bool; default = false; };
        enableTun = mkOption { type = types.bool; default = false; };
        copyResolvConf = mkOption { type = types.bool; default = true; };
        privateNetwork = mkOption { type = types.bool; default = false; };
        networkNamespace = mkOption { type = types.nullOr types.path; default = null; };
        privateUsers = mkOption {
          type = types.either types.ints.u32 (types.enum [ "no" "identity" "pick" ]);
          default = "no";
        };
        interfaces = mkOption { type = types.listOf types.str; default = [ ]; };
        macvlans = mkOption { type = types.listOf types.str; default = [ ]; };
        extraVeths = mkOption {
          type = types.attrsOf (types.submodule { options = networkOptions; });
          default = { };
        };
        autoStart = mkOption { type = types.bool; default = false; };
        restartIfChanged = mkOption { type = types.bool; default = true; };
        timeoutStartSec = mkOption { type = types.str; default = "1min"; };
        bindMounts = mkOption { type = types.attrsOf (types.submodule bindMountOpts); default = { }; };
        allowedDevices = mkOption { type = types.listOf (types.submodule allowedDeviceOpts); default = [ ]; };
        tmpfs = mkOption { type = types.listOf types.str; default = [ ]; };
        extraFlags = mkOption { type = types.listOf types.str; default = [ ]; };
        flake = mkOption { type = types.nullOr types.str; default = null; };
        pkgs = mkOption { visible = false; };
      } // networkOptions;
    });
    default = { };
  };
}
