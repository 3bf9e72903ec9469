# Every stub module of the stand-in NixOS, as nixpkgs' own module-list.nix lists its modules.
[
  ./misc/nixpkgs.nix
  ./system/toplevel.nix
]
