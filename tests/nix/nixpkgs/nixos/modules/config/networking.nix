# nixos/modules/tasks/network-interfaces.nix (hostName, useDHCP, useNetworkd, useHostResolvConf),
# tasks/network-interfaces-systemd.nix and system/boot/networkd.nix (what useNetworkd turns on),
# services/networking/firewall.nix (networking.firewall.*), services/networking/nftables.nix
# and services/networking/firewall-nftables.nix (its assertion on extraCommands).
{ config, lib, ... }:
let
  inherit (lib) types mkOption;
  fw = config.networking.firewall;
in
{
  options.networking = {
    hostName = mkOption {
      # The real type: empty, or a valid RFC 1035 label.
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
      description = "The host name; empty leaves it to whoever starts the system.";
    };
    useDHCP = mkOption {
      type = types.bool;
      default = true;
      description = "Whether to use DHCP on every interface without another configuration.";
    };
    useNetworkd = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to configure the network with systemd-networkd.";
    };
    useHostResolvConf = mkOption {
      type = types.bool;
      default = false;
      description = "In containers, whether to use the resolv.conf supplied by the host.";
    };
    nftables.enable = mkOption {
      type = types.bool;
      default = false;
      description = "Whether to use nftables (and the nftables-based firewall).";
    };
    firewall = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "Whether to enable the firewall.";
      };
      trustedInterfaces = mkOption {
        type = types.listOf types.str;
        default = [ ];
        description = "Interfaces whose traffic the firewall accepts.";
      };
      allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
        description = "TCP ports open to incoming connections.";
      };
      extraCommands = mkOption {
        type = types.lines;
        default = "";
        description = "iptables commands run when the firewall starts (iptables firewall only).";
      };
    };
  };

  config = {
    assertions = lib.optional (fw.enable && config.networking.nftables.enable) {
      assertion = fw.extraCommands == "";
      message = "extraCommands is incompatible with the nftables based firewall: ${fw.extraCommands}";
    };
    # network-interfaces-systemd.nix turns networkd on; networkd.nix turns resolved on with it.
    systemd.network.enable = lib.mkIf config.networking.useNetworkd (lib.mkDefault true);
    services.resolved.enable = lib.mkIf config.systemd.network.enable (lib.mkDefault true);
  };
}
