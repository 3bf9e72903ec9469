# nixos/modules/virtualisation/incus-virtual-machine.nix: a VM image's files
# (system.build.qemuImage and the metadata), as derivations that are never built.
{ config, lib, pkgs, ... }:
let
  file = name: pkgs.runCommand name { toplevel = config.system.build.toplevel; } "exit 1";
in
{
  imports = [ ./lxc-instance-common.nix ];
  system.build = {
    qemuImage = file "nixos-disk-image";
    metadata = file "nixos-lxc-metadata";
  };
}
