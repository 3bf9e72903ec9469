{
  description = "A host's nixos-container declarations (containers.*), moved to inx in one step";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # This checkout of inx. In a copy of this flake, point it at inx wherever it is.
    inx.url = "path:../..";
    inx.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs =
    { nixpkgs, inx, ... }:
    {
      # Every container of containers.nix, each evaluated once with inx's guest module. With
      # the block still inside a host's configuration, the same is
      #   inxContainers = inx.lib.fromNixosContainers self.nixosConfigurations.myhost;
      inxContainers = inx.lib.fromNixosContainers {
        inherit nixpkgs;
        system = "x86_64-linux"; # your host's: "aarch64-linux" on ARM
        containers = import ./containers.nix;
      };
    };
}
