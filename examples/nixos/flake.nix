{
  description = "A real NixOS container with inx: nginx, reached from the host through a port forward";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    # This checkout of inx. In a copy of this flake, point it at inx wherever it is.
    inx.url = "path:../..";
    inx.inputs.nixpkgs.follows = "nixpkgs";
  };

  outputs =
    { nixpkgs, inx, ... }:
    {
      # `inx up` builds the system, creates the container and starts it; after an edit,
      # `inx up` switches it in place. `curl http://127.0.0.1:8081/` on the host gets the page.
      inxContainers.web = inx.lib.mkContainer {
        inherit nixpkgs;
        system = "x86_64-linux"; # your host's: "aarch64-linux" on ARM
        modules = [
          (
            { pkgs, ... }:
            {
              services.nginx.enable = true;
              services.nginx.virtualHosts.localhost.root = pkgs.writeTextDir "index.html" ''
                <h1>NixOS in an inx container</h1>
              '';
              # The container's firewall is on, as on any NixOS system.
              networking.firewall.allowedTCPPorts = [ 80 ];
              system.stateVersion = "25.11";
            }
          )
        ];
        # Port 8081 on the host's loopback reaches nginx on port 80 inside (an Incus proxy
        # device). Without listenAddress, every address of the host listens.
        forwardPorts = [
          {
            hostPort = 8081;
            containerPort = 80;
            listenAddress = "127.0.0.1";
          }
        ];
      };
    };
}
