# nixos/modules/virtualisation/container-config.nix: what every container gets from NixOS
# itself, at the priorities the real module uses (inx's guest module must win over these).
{ config, lib, ... }:
{
  config = lib.mkIf config.boot.isContainer {
    networking.useHostResolvConf = lib.mkDefault true;
  };
}
