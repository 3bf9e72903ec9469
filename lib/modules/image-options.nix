# The options of inx's image module, declared for the shared-store evaluation too: mkContainer
# hands the same `modules` to both evaluations, so a setting for the image must not fail the
# container's.
{ lib, ... }:
{
  _class = "nixos";
  _file = toString ./image-options.nix;
  key = toString ./image-options.nix;

  options.inx.image.lockRoot = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = ''
      Lock root's password in the container's image (`inx image ...`). nixpkgs' LXC image
      modules give root an empty password, which anyone with the instance's console can use;
      with this on (the default) root has no password, and `incus exec`/`incus shell` (or keys
      in `users.users.root.openssh.authorizedKeys.keys`) are the ways in. Set it false for
      nixpkgs' behaviour. Has no effect on a shared-store container, whose root is always
      locked unless you set a password.
    '';
  };
}
