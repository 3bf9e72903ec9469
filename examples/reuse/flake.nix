{
  description = "An existing nixosConfigurations entry, run as an inx container";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # This checkout of inx. In a copy of this flake, point it at inx wherever it is.
    inx.url = "path:../..";
    inx.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs =
    { self, nixpkgs, inx, ... }:
    {
      # A system you already have (and may deploy elsewhere with nixos-rebuild). To run as a
      # container it needs inx's guest module: it makes the system boot in an Incus container
      # from the shared store.
      nixosConfigurations.box = nixpkgs.lib.nixosSystem {
        modules = [
          inx.nixosModules.guest
          ./configuration.nix
          { nixpkgs.hostPlatform = "x86_64-linux"; } # your host's: "aarch64-linux" on ARM
        ];
      };

      # The toplevel path: inx takes the built system as it is and evaluates nothing more.
      inxContainers.box = inx.lib.mkContainer {
        toplevel = self.nixosConfigurations.box.config.system.build.toplevel;
        incus.config."limits.memory" = "1GiB";
      };
    };
}
