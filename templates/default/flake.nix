{
  description = "NixOS containers on Incus, run with inx";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # `inx` from the flake registry: the same name `nix flake init -t inx` used. A host with
    # inx's `nixosModules.host` serves it to every Nix. Elsewhere: `nix registry add inx
    # <where inx is>` up to Nix 2.27; from 2.28 on (flake inputs read the global registry
    # only), `nix flake lock --override-input inx <where inx is>` once, or write it here.
    inx.url = "inx";
    inx.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs =
    { nixpkgs, inx, ... }:
    let
      # The systems the devShell is made for; containers run on the host's own system.
      forAllSystems = nixpkgs.lib.genAttrs [
        "x86_64-linux"
        "aarch64-linux"
      ];
    in
    {
      # `inx up` creates and starts every container declared here; `inx up` again after an
      # edit switches them to the new system in place, without a restart.
      inxContainers.hello = inx.lib.mkContainer {
        inherit nixpkgs;
        # The host's system. `builtins.currentSystem` is not allowed in a flake (pure
        # evaluation): on ARM, write "aarch64-linux".
        system = "x86_64-linux";
        modules = [
          (
            { pkgs, ... }:
            {
              services.nginx.enable = true;
              # The container's own firewall is on, as on any NixOS system.
              networking.firewall.allowedTCPPorts = [ 80 ];
              environment.systemPackages = [ pkgs.htop ];
              system.stateVersion = "25.11";
            }
          )
        ];
        # nginx from the host: http://127.0.0.1:8080/ (an Incus proxy device; without
        # listenAddress, every address of the host listens).
        forwardPorts = [
          {
            hostPort = 8080;
            containerPort = 80;
            listenAddress = "127.0.0.1";
          }
        ];
        # Added to the Incus instance as it is.
        incus.config."limits.memory" = "1GiB";
        # On another host instead: a remote of your Incus client (`incus remote list`), and
        # a member if it is a cluster; inx copies the system there over ssh (inx's manual,
        # docs/hosts.md).
        # incus.remote = "cluster";
        # incus.target = "node2";
        # ssh.user = "root";
      };

      # `nix develop` gives a shell with inx on PATH.
      devShells = forAllSystems (system: {
        default = nixpkgs.legacyPackages.${system}.mkShell {
          packages = [ inx.packages.${system}.inx ];
        };
      });
    };
}
