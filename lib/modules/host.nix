# The host side of inx, as a NixOS module (`nixosModules.host`): inx on PATH, Incus on, and
# builds made inside containers kept across the host's GC (`inx roots watch` as a service, and
# a roots sync before every run of the host's scheduled GC).
#
# Option names checked against nixpkgs' nixos/modules/virtualisation/incus.nix
# (virtualisation.incus.enable, .clientPackage; its assertion wants nftables when the firewall
# is on) and nixos/modules/services/misc/nix-gc.nix (the `nix-gc` service that nix.gc.automatic
# schedules).
{ inxPackages }:
{ config, lib, pkgs, ... }:

let
  cfg = config.services.inx;
  inx = lib.getExe cfg.package;
  cap = "--max-roots ${toString cfg.roots.maxPerContainer}";
  # inx lists containers with the incus client (`clientPackage` is recent; older NixOS has
  # only `package`, which holds the client too).
  incus = config.virtualisation.incus;
  path = [ (incus.clientPackage or incus.package) ];
in
{
  options.services.inx = {
    enable = lib.mkEnableOption "inx, NixOS containers on Incus that share the host's /nix/store";

    package = lib.mkOption {
      type = lib.types.package;
      default = inxPackages.${pkgs.stdenv.hostPlatform.system}.inx;
      defaultText = lib.literalExpression "inx.packages.\${system}.inx";
      description = "The inx package.";
    };

    roots = {
      watch = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Run `inx roots watch` as a service, so that a build made inside a container is kept
          the moment its result link appears, before any root query or GC on the host can
          delete the link.
        '';
      };

      syncBeforeGc = lib.mkOption {
        type = lib.types.bool;
        default = true;
        description = ''
          Run `inx roots sync` before the host's scheduled garbage collection (the `nix-gc`
          service of `nix.gc.automatic`). If the sync fails, that collection does not run.
        '';
      };

      maxPerContainer = lib.mkOption {
        type = lib.types.ints.positive;
        default = 1000;
        description = "How many builds inx keeps per container (`--max-roots`).";
      };
    };
  };

  config = lib.mkIf cfg.enable {
    environment.systemPackages = [ cfg.package ];

    virtualisation.incus.enable = true;
    # Incus on NixOS refuses iptables when the firewall is on.
    networking.nftables.enable = lib.mkDefault true;

    systemd.services.inx-roots = lib.mkIf cfg.roots.watch {
      description = "inx: keep what containers build across the host's garbage collection";
      wantedBy = [ "multi-user.target" ];
      wants = [ "incus.service" ];
      after = [ "incus.service" "nix-daemon.socket" ];
      inherit path;
      serviceConfig = {
        ExecStart = "${inx} roots watch ${cap}";
        Restart = "always";
        RestartSec = 5;
      };
    };

    # nix-gc.nix defines this service when nix.enable is on; only add to it then.
    systemd.services.nix-gc = lib.mkIf (cfg.roots.syncBeforeGc && config.nix.enable) {
      inherit path;
      preStart = "${inx} roots sync ${cap}";
    };
  };
}
