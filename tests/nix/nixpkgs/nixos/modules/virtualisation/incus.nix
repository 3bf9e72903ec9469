# nixos/modules/virtualisation/incus.nix: the options inx sets or reads, their types, and the
# module's assertion that the firewall use nftables. The preseed's type is the YAML format's
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
    # incus.service starts at boot unless socket-activated; incus-preseed runs with it.
    systemd.services.incus.wantedBy = lib.mkIf (!cfg.socketActivation) [ "multi-user.target" ];
    systemd.services.incus-preseed = lib.mkIf (cfg.preseed != null) {
      wantedBy = [ "incus.service" ];
      after = [ "incus.service" ];
    };
  };
}
