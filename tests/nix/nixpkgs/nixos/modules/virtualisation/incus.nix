# nixos/modules/virtualisation/incus.nix: the options inx sets or reads, their types, the
# module's assertion that the firewall use nftables, and the kernel limits it sets at the
# priorities it sets them (the values of Incus's "Server settings for an Incus production
# setup"; the inotify ones below mkDefault, so NixOS's own 524288 wins over them). The preseed's type is the YAML format's
# value type (pkgs/pkgs-lib/formats.nix) as a freeform submodule, so lists of definitions
# concatenate and every key takes priorities of its own, as on NixOS.
{ config, lib, pkgs, ... }:
let
  inherit (lib) types mkOption;
  cfg = config.virtualisation.incus;
  yaml =
    let
      value = types.nullOr (types.oneOf [ types.bool types.int types.float types.str types.path (types.attrsOf value) (types.listOf value) ]);
    in
    value;
in
{
  options.virtualisation.incus = {
    enable = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to enable incusd.";
    };
    package = mkOption {
      type = types.package;
      default = pkgs.incus-lts;
      description = "The incus package.";
    };
    clientPackage = mkOption {
      type = types.package;
      default = cfg.package.client;
      description = "The incus client package, added to PATH.";
    };
    preseed = mkOption {
      type = types.nullOr (types.submodule { freeformType = yaml; });
      default = null;
      description = "`incus admin init --preseed` input, applied by the incus-preseed service.";
    };
    socketActivation = mkOption {
      type = types.bool;
      default = false;
      description = "Whether incus.service starts on its socket instead of at boot.";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = !(config.networking.firewall.enable && !config.networking.nftables.enable);
        message = "Incus on NixOS is unsupported using iptables. Set `networking.nftables.enable = true;`";
      }
    ];
    boot.kernel.sysctl = {
      "fs.aio-max-nr" = lib.mkDefault 524288;
      "fs.inotify.max_queued_events" = lib.mkDefault 1048576;
      "fs.inotify.max_user_instances" = lib.mkOverride 1050 1048576;
      "fs.inotify.max_user_watches" = lib.mkOverride 1050 1048576;
      "kernel.dmesg_restrict" = lib.mkDefault 1;
      "kernel.keys.maxbytes" = lib.mkDefault 2000000;
      "kernel.keys.maxkeys" = lib.mkDefault 2000;
      "net.core.bpf_jit_limit" = lib.mkDefault 1000000000;
      "net.ipv4.neigh.default.gc_thresh3" = lib.mkDefault 8192;
      "net.ipv6.neigh.default.gc_thresh3" = lib.mkDefault 8192;
    };
    # incus.service starts at boot unless socket-activated; incus-preseed runs with it.
    systemd.services.incus.wantedBy = lib.mkIf (!cfg.socketActivation) [ "multi-user.target" ];
    systemd.services.incus.serviceConfig = {
      LimitMEMLOCK = "infinity";
      LimitNOFILE = "1048576";
    };
    systemd.services.incus-preseed = lib.mkIf (cfg.preseed != null) {
      wantedBy = [ "incus.service" ];
      after = [ "incus.service" ];
    };
  };
}
