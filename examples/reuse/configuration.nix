# An ordinary NixOS module, as you may already have one.
{ pkgs, ... }:
{
  services.openssh.enable = true;
  environment.systemPackages = [ pkgs.htop ];
  system.stateVersion = "25.11";
}
