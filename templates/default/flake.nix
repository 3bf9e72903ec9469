{
  description = "NixOS containers on Incus, run with inx";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # Where you get inx from: the same reference you gave `nix flake init -t`.
    inx.url = "github:OWNER/inx";
    inx.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs = { self, nixpkgs, inx }:
    let
      system = "x86_64-linux";
      pkgs = nixpkgs.legacyPackages.${system};
    in
    {
      # `inx up` creates and starts every container declared here; `inx up` again after an
      # edit switches them to the new system in place.
      inxContainers.hello = inx.lib.mkContainer {
        inherit nixpkgs system;
        modules = [
          ({ pkgs, ... }: {
            services.nginx.enable = true;
            environment.systemPackages = [ pkgs.htop ];
            system.stateVersion = "25.11";
          })
        ];
        # Added to the Incus instance as it is.
        incus.config."limits.memory" = "1GiB";
      };

      # `nix develop` gives a shell with inx on PATH.
      devShells.${system}.default = pkgs.mkShell {
        packages = [ inx.packages.${system}.inx ];
      };
    };
}
