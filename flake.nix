{
  description = "inx: NixOS containers on Incus that share the host's /nix/store";

  # Locked in flake.lock at a known nixos-unstable revision (docs/flake.md).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  # Wiring only; the pieces live in lib/. `lib` and `nixosModules` never force `nixpkgs`, so a
  # flake that points `inx.inputs.nixpkgs` at an empty flake still evaluates its containers.
  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      # The system comes from here, never from `pkgs.system` (a deprecated alias).
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f system nixpkgs.legacyPackages.${system});
    in
    {
      lib = import ./lib { guestModule = self.nixosModules.guest; };

      nixosModules.guest = import ./lib/modules/guest.nix;
      nixosModules.host = import ./lib/modules/host.nix {
        inxPackages = self.packages;
        inxFlake = self;
      };

      overlays.default = final: _prev: { inx = final.callPackage ./lib/package.nix { }; };

      packages = forAllSystems (
        _system: pkgs: rec {
          inx = pkgs.callPackage ./lib/package.nix { };
          default = inx;
        }
      );

      apps = forAllSystems (
        system: _pkgs: rec {
          inx = {
            type = "app";
            program = nixpkgs.lib.getExe self.packages.${system}.inx;
            meta.description = "The inx CLI: evaluate, build, create, update and roll back containers";
          };
          default = inx;
        }
      );

      # For hacking on inx: its build inputs (cargo, rustc), the linters and mdBook, without building
      # inx itself. A flake made from the template has `inx` on PATH instead.
      devShells = forAllSystems (
        system: pkgs: {
          default = pkgs.mkShell {
            inputsFrom = [ self.packages.${system}.inx ];
            packages = [
              pkgs.clippy
              pkgs.rustfmt
              pkgs.nixfmt-tree
              # The manual (docs/, book.toml): `mdbook build`, `mdbook serve`.
              pkgs.mdbook
            ];
          };
        }
      );

      templates.default = {
        path = ./templates/default;
        description = "A flake with one NixOS container for inx and a devShell with inx on PATH";
        welcomeText = builtins.readFile ./templates/default-welcome.md;
      };

      checks = forAllSystems (
        system: pkgs:
        {
          inx = self.packages.${system}.inx;
          # The library on the toplevel path, with a stand-in system: evaluates without nixpkgs.
          lib-toplevel = import ./lib/check.nix {
            inherit pkgs;
            inx = self;
          };
        }
        # A NixOS VM with the host module runs a real NixOS container (needs KVM and nixpkgs).
        // nixpkgs.lib.optionalAttrs (system == "x86_64-linux") {
          vm = import ./lib/vm-test.nix {
            inherit pkgs nixpkgs;
            inx = self;
          };
        }
      );

      # `nix fmt` formats the whole tree (nixfmt alone waits on stdin without arguments).
      formatter = forAllSystems (_system: pkgs: pkgs.nixfmt-tree);
    };
}
