# nixos/modules/virtualisation/qemu-vm.nix: the test VM's options (runNixOSTest adds this
# module to every node; a plain NixOS system has none of them).
{ lib, ... }:
let
  inherit (lib) types mkOption;
in
{
  options.virtualisation = {
    memorySize = mkOption {
      type = types.ints.positive;
      default = 1024;
      description = "The VM's memory in MiB.";
    };
    # Declared in nixos/modules/virtualisation/disk-size-option.nix, which qemu-vm.nix imports.
    diskSize = mkOption {
      type = types.either (types.enum [ "auto" ]) types.ints.positive;
      default = "auto";
      description = "The VM's disk in MiB.";
    };
    cores = mkOption {
      type = types.ints.positive;
      default = 1;
      description = "The VM's CPUs.";
    };
    additionalPaths = mkOption {
      type = types.listOf types.path;
      default = [ ];
      description = "Store paths copied into the VM's store.";
    };
    # qemu-vm.nix declares it as `options.fileSystems` (tasks/filesystems.nix), whose entries
    # have autoResize (bool, default false) among others.
    fileSystems = mkOption {
      type = types.attrsOf (
        types.submodule {
          freeformType = types.attrsOf types.anything;
          options.autoResize = mkOption {
            type = types.bool;
            default = false;
            description = "Whether to grow the file system to its device at mount time.";
          };
        }
      );
      default = { };
      description = "The VM's file systems (they override fileSystems).";
    };
    useBootLoader = mkOption {
      type = types.bool;
      default = false;
      description = "Whether the VM boots from a disk image (whose root file system holds the store).";
    };
    useNixStoreImage = mkOption {
      type = types.bool;
      default = false;
      description = "Whether the VM's store is a disk image instead of the host's store over 9p.";
    };
    writableStore = mkOption {
      type = types.bool;
      default = true;
      description = "Whether the VM's store is writable (an overlay).";
    };
  };
}
