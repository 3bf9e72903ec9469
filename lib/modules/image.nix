# inx's own module for a container's image (`inx image ...`), evaluated with nixpkgs'
# lxc-container.nix (or incus-virtual-machine.nix) and the user's modules (lib/images.nix),
# which also empties the container image's hostName. What nixpkgs'
# virtualisation/lxc-instance-common.nix sets, and what inx changes:
# - the nixos channel (installer/cd-dvd/channel.nix): a shared-store-less image has no use for a
#   channel copy of nixpkgs; off.
# - root's password: empty there (initialHashedPassword at mkOverride 150); locked here unless
#   `inx.image.lockRoot = false`, and the console's help line (services.getty.helpLine) says so.
# - sshd: left as nixpkgs has it (on, socket-activated, PermitRootLogin prohibit-password).
# - networking: networkd and resolved, as nixpkgs' own Incus container image has it.
{
  _class = "nixos";
  _file = toString ./image.nix;
  key = toString ./image.nix;

  imports = [
    ./image-options.nix
    (
      { config, lib, ... }:
      {
        system.installer.channel.enable = lib.mkDefault false;
        # As nixpkgs' incus-container-image.nix: networkd and resolved rather than dhcpcd and a
        # host resolv.conf (container-config.nix's mkDefault true, which 900 beats).
        networking.useNetworkd = lib.mkDefault true;
        networking.useHostResolvConf = lib.mkOverride 900 false;
        # 140 wins over lxc-instance-common's 150 and loses to a plain setting (100).
        users.users.root.initialHashedPassword = lib.mkIf config.inx.image.lockRoot (lib.mkOverride 140 "!");
        # lxc-instance-common's console help says to log in as root with an empty password,
        # which a locked root cannot: say what works. (helpLine's lines concatenate at one
        # priority, so 99 replaces nixpkgs' plain definition; give yours with mkForce.)
        services.getty.helpLine = lib.mkIf config.inx.image.lockRoot (
          lib.mkOverride 99 ''

            root has no password: use `incus shell NAME` on the host, or ssh with a key.
          ''
        );
      }
    )
  ];
}
