# NixOS inside an inx container (`nixosModules.guest`): booted by Incus straight from the host
# profile's `init` (no /sbin/init, empty root filesystem), sharing the host's /nix/store
# read-only and building through the host's nix-daemon.
#
# Option names checked against nixpkgs' virtualisation/container-config.nix,
# virtualisation/lxc-container.nix, system/boot/stage-2.nix, system/boot/resolved.nix,
# services/system/nix-daemon.nix, services/misc/nix-gc.nix and tasks/network-interfaces.nix.
{
  _class = "nixos";
  # A file and a key of its own: errors name this file, and mkContainer adding it to a system
  # that imports it as well is harmless.
  _file = toString ./guest.nix;
  key = toString ./guest.nix;

  imports = [
    ./image-options.nix
    (
      {
        config,
        lib,
        options,
        pkgs,
        ...
      }:
      {
        config = lib.mkMerge [
          {
            # What every container wants: no kernel, no bootloader, NIX_REMOTE=daemon for
            # login shells, no udev.
            boot.isContainer = true;

            # Incus sets the container's hostname to the instance name; an empty hostName
            # makes NixOS leave it alone (no /etc/hostname), so one system can serve several
            # containers. 1200: over the option's default, under a user's own mkDefault.
            networking.hostName = lib.mkOverride 1200 "";

            # As nixpkgs' own Incus container image does: networkd does DHCP on the veth (the
            # network below) and resolved does DNS, instead of dhcpcd.
            networking.useNetworkd = lib.mkDefault true;

            # container-config.nix sets this `mkDefault true` for every container, but Incus
            # gives an empty container no resolv.conf: NixOS makes its own (resolved, which
            # refuses a host resolv.conf). 900 wins over mkDefault (1000) and loses to a plain
            # setting (100).
            networking.useHostResolvConf = lib.mkOverride 900 false;

            # The host's daemon does the building; its socket directory is bound in. No daemon
            # inside: the store is read-only here and the database is the host's, so the
            # nixbld users would serve nothing either.
            systemd.services.nix-daemon.enable = false;
            systemd.sockets.nix-daemon.enable = false;
            nix.nrBuildUsers = lib.mkOverride 900 0; # nix-daemon.nix computes it at mkDefault
            # Also for commands run with `incus exec`, which do not read /etc/profile.
            nix.settings.store = lib.mkDefault "daemon";

            # As nixpkgs' lxc-container.nix does for unprivileged LXC: the distrobuilder
            # generator drops the service hardening that an unprivileged container cannot
            # grant (unless nesting is on), and networkd configures the veth device.
            systemd.packages = [ pkgs.distrobuilder.generator ];
            systemd.additionalUpstreamSystemUnits = [ "systemd-udev-trigger.service" ];
            systemd.network = lib.mkIf config.networking.useDHCP {
              networks."99-inx-veth-default-dhcp" = {
                matchConfig = {
                  Type = "ether";
                  Kind = "veth";
                  Name = [
                    "en*"
                    "eth*"
                  ];
                };
                DHCP = "yes";
              };
            };

            assertions = [
              {
                assertion = !config.nix.gc.automatic;
                message = ''
                  inx guest: nix.gc.automatic must stay off inside an inx container. The store
                  and the daemon are the host's: a collection started here is a host-wide
                  collection, and `nix-collect-garbage -d` here deletes the old generations of
                  the container's host profile (inx's rollback history). Collect on the host
                  with `inx gc` or the host's nix.gc.automatic (with nixosModules.host).
                '';
              }
              {
                assertion = !config.nix.optimise.automatic;
                message = ''
                  inx guest: nix.optimise.automatic must stay off inside an inx container: the
                  store is the host's, read-only here. Optimise on the host.
                '';
              }
            ];
          }

          # Stage 2 (NixOS 25.11 and later) re-mounts /nix/store when its mount lacks any of
          # boot.nixStoreMountOpts. Incus binds the host's store with `ro` only (seen in
          # /proc/self/mountinfo: `ro,relatime,idmapped`), so ask for exactly that: no second
          # mount over the idmapped one. Older NixOS has no such option (and no remount).
          (lib.optionalAttrs (options.boot ? nixStoreMountOpts) {
            boot.nixStoreMountOpts = lib.mkDefault [ "ro" ];
          })
        ];
      }
    )
  ];
}
