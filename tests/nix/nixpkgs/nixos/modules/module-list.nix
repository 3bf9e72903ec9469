# Every stub module of the stand-in NixOS, as nixpkgs' nixos/modules/module-list.nix lists the
# real ones. Each stub declares only the options inx, its template, its examples and its VM test
# touch, with the real option's type and default, and cites the nixpkgs file that declares it.
[
  ./misc/nixpkgs.nix
  ./misc/assertions.nix
  ./misc/version.nix
  ./system/top-level.nix
  ./system/boot.nix
  ./system/systemd.nix
  ./config/environment.nix
  ./config/users.nix
  ./config/nix.nix
  ./config/sysctl.nix
  ./config/networking.nix
  ./services/misc.nix
  ./virtualisation/incus.nix
  ./virtualisation/container-config.nix
]
