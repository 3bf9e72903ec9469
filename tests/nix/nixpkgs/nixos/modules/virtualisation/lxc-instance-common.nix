# nixos/modules/virtualisation/lxc-instance-common.nix: what nixpkgs gives every LXC/Incus
# image, at the real priorities (inx's image module must win where it changes them), and the
# option installer/cd-dvd/channel.nix declares (that module is imported from here, so only
# image evaluations have it).
{ lib, ... }:
{
  options.system.installer.channel.enable = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = "Whether to put a copy of the nixos channel in the system.";
  };

  config = {
    documentation.enable = lib.mkOverride 890 true;
    services.openssh.enable = lib.mkDefault true;
    services.openssh.startWhenNeeded = lib.mkDefault true;
    users.users.root.initialHashedPassword = lib.mkOverride 150 "";
    services.getty.helpLine = ''

      Log in as "root" with an empty password.
    '';
  };
}
