{
  description = "inx: NixOS containers on Incus that share the host's /nix/store";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  # Wiring only; the pieces live in lib/. `lib` and `nixosModules` never force `nixpkgs`, so a
  # flake that points `inx.inputs.nixpkgs` at an empty flake still evaluates its containers.
  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      lib = import ./lib { guestModule = self.nixosModules.guest; };

      nixosModules.guest = ./lib/modules/guest.nix;
      nixosModules.host = import ./lib/modules/host.nix { inxPackages = self.packages; };

      overlays.default = final: _prev: { inx = final.callPackage ./lib/package.nix { }; };

      packages = forAllSystems (pkgs: rec {
        inx = pkgs.callPackage ./lib/package.nix { };
        default = inx;
      });

      apps = forAllSystems (pkgs: rec {
        inx = {
          type = "app";
          program = "${self.packages.${pkgs.system}.inx}/bin/inx";
        };
        default = inx;
      });

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.system}.inx ];
          packages = [ self.packages.${pkgs.system}.inx pkgs.nixfmt pkgs.clippy pkgs.rustfmt ];
        };
      });

      templates.default = {
        path = ./templates/default;
        description = "A flake with one inx container and a devShell that has inx";
      };

      checks = forAllSystems (pkgs: {
        inx = self.packages.${pkgs.system}.inx;
        # The library on the toplevel path, with a stand-in system: evaluates without nixpkgs.
        lib-toplevel = import ./lib/check.nix { inherit pkgs; inx = self; };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt);
    };
}
