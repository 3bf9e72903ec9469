{ lib, ... }:
{
  options.boot = {
    # nixos/modules/system/boot/grow-partition.nix.
    growPartition = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether to grow the root partition on boot.";
    };
    # nixos/modules/virtualisation/container-config.nix declares nothing; boot.isContainer is
    # declared in nixos/modules/system/activation/top-level.nix (bool, default false).
    isContainer = lib.mkOption {
      type = lib.types.bool;
      default = false;
      description = "Whether this NixOS machine is a lightweight container running in another NixOS system.";
    };
    # nixos/modules/system/boot/stage-2.nix (NixOS 25.11 and later): stage 2 re-mounts
    # /nix/store when its mount lacks any of these.
    nixStoreMountOpts = lib.mkOption {
      type = lib.types.listOf lib.types.nonEmptyStr;
      default = [
        "ro"
        "nodev"
        "nosuid"
      ];
      description = "Mount options /nix/store must have; stage 2 re-mounts it otherwise.";
    };
  };
}
