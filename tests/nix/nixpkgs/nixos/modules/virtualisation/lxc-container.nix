# nixos/modules/virtualisation/lxc-container.nix: a container image's files
# (system.build.{squashfs,tarball} and lxc-image-metadata.nix's system.build.metadata), as
# derivations that are never built, named as nixpkgs names them.
{ config, lib, pkgs, ... }:
let
  file = name: pkgs.runCommand name { toplevel = config.system.build.toplevel; } "exit 1";
in
{
  imports = [ ./lxc-instance-common.nix ];
  boot.isContainer = true;
  system.build = {
    squashfs = file "nixos-lxc-image-${pkgs.stdenv.hostPlatform.system}.squashfs";
    tarball = file "nixos-system-${pkgs.stdenv.hostPlatform.system}.tar.xz";
    metadata = file "nixos-lxc-metadata";
  };
}
