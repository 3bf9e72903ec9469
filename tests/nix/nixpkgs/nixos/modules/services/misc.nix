# nixos/modules/system/boot/resolved.nix (services.resolved.enable and its assertion),
# services/web-servers/nginx/default.nix (services.nginx.enable, and virtualHosts: an attribute
# set of vhost-options.nix submodules, default `{ localhost = { }; }`, of which `root` is stubbed),
# services/databases/postgresql.nix (services.postgresql.enable),
# services/networking/ssh/sshd.nix (services.openssh.*), services/ttys/getty.nix
# (services.getty.helpLine) and misc/documentation.nix (documentation.enable).
{ config, lib, ... }:
let
  inherit (lib) types mkOption;
  bool = default: description: mkOption {
    type = types.bool;
    inherit default description;
  };
in
{
  options = {
    services.resolved.enable = bool false "Whether to enable systemd-resolved.";
    services.nginx.enable = bool false "Whether to enable nginx.";
    services.nginx.virtualHosts = mkOption {
      type = types.attrsOf (types.submodule {
        options.root = mkOption {
          type = types.nullOr types.path;
          default = null;
          description = "The path of the web root directory.";
        };
      });
      default = { localhost = { }; };
      description = "Declarative vhost config.";
    };
    services.postgresql.enable = bool false "Whether to enable the PostgreSQL server.";
    services.openssh = {
      enable = bool false "Whether to enable sshd.";
      startWhenNeeded = bool false "Whether sshd is socket-activated.";
      settings = mkOption {
        type = types.submodule {
          freeformType = types.attrsOf types.anything;
          options.PermitRootLogin = mkOption {
            type = types.enum [ "yes" "without-password" "prohibit-password" "forced-commands-only" "no" ];
            default = "prohibit-password";
            description = "Whether root may log in with ssh.";
          };
        };
        default = { };
        description = "sshd_config.";
      };
    };
    documentation.enable = bool true "Whether to install documentation.";
    # services/ttys/getty.nix.
    services.getty.helpLine = mkOption {
      type = types.lines;
      default = "";
      description = "Help line printed by the getty below the welcome line.";
    };
  };

  config.assertions = lib.optional config.services.resolved.enable {
    assertion = !config.networking.useHostResolvConf;
    message = "Using host resolv.conf is not supported with systemd-resolved";
  };
}
