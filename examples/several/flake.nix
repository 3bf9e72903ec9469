{
  description = "Several NixOS containers with inx, sharing one evaluation of nixpkgs";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # This checkout of inx. In a copy of this flake, point it at inx wherever it is.
    inx.url = "path:../..";
    inx.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs =
    { nixpkgs, inx, ... }:
    let
      system = "x86_64-linux"; # your host's: "aarch64-linux" on ARM
      # nixpkgs, evaluated once: every container below uses this instance (`nixpkgs.pkgs`)
      # instead of evaluating its own. inx's `nix eval` of all containers is one process, so
      # the work is shared there and in every `inx up`.
      pkgs = nixpkgs.legacyPackages.${system};

      # What every container has; each adds its own modules and Incus settings.
      container =
        {
          modules ? [ ],
          incus ? { },
        }:
        inx.lib.mkContainer {
          inherit nixpkgs system incus;
          modules = [
            {
              nixpkgs.pkgs = pkgs;
              environment.systemPackages = [ pkgs.htop ];
              system.stateVersion = "25.11";
            }
          ] ++ modules;
        };
    in
    {
      # `inx up` brings up all three with one evaluation and one build; `inx up web` only one.
      inxContainers = {
        web = container {
          modules = [
            {
              services.nginx.enable = true;
              networking.firewall.allowedTCPPorts = [ 80 ];
            }
          ];
        };
        db = container {
          modules = [ { services.postgresql.enable = true; } ];
          incus.config."limits.memory" = "2GiB";
        };
        worker = container { incus.config."limits.cpu" = "1"; };
      };
    };
}
