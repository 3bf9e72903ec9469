# NixOS inside an inx container: booted by Incus straight from the host profile's `init`
# (no /sbin/init, empty root filesystem), sharing the host's /nix/store read-only and building
# through the host's nix-daemon. Option names checked against nixpkgs' lxc-container.nix,
# container-config.nix, nix-daemon.nix and network-interfaces.nix.
{ lib, pkgs, config, ... }:

{
  # What every container wants: no kernel, no bootloader (installBootLoader is a no-op),
  # NIX_REMOTE=daemon for login shells, no udev.
  boot.isContainer = true;

  # Incus sets the container's hostname to the instance name; an empty hostName makes NixOS
  # leave it alone (no /etc/hostname), so one system can serve several containers.
  networking.hostName = lib.mkDefault "";

  # The host's daemon does the building; its socket directory is bound in. No daemon inside:
  # the store is read-only here and the database is the host's.
  systemd.services.nix-daemon.enable = false;
  systemd.sockets.nix-daemon.enable = false;
  # Also for commands run with `incus exec`, which do not read /etc/profile.
  nix.settings.store = lib.mkDefault "daemon";

  # As nixpkgs' lxc-container.nix does for unprivileged LXC: drop the service hardening that
  # an unprivileged container cannot grant, and let networkd see the veth device.
  systemd.packages = [ pkgs.distrobuilder.generator ];
  systemd.additionalUpstreamSystemUnits = [ "systemd-udev-trigger.service" ];
  systemd.network = lib.mkIf config.networking.useDHCP {
    networks."99-inx-veth-default-dhcp" = {
      matchConfig = {
        Type = "ether";
        Kind = "veth";
        Name = [ "en*" "eth*" ];
      };
      DHCP = "yes";
    };
  };
}
