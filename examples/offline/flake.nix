{
  description = "inx without nixpkgs: a container whose whole system is one static busybox";

  inputs = {
    # This checkout of inx. In a copy of this flake, point it at inx wherever it is.
    inx.url = "path:../..";
    # The toplevel path never reads nixpkgs: inx's own nixpkgs input follows nothing, so
    # nothing is fetched.
    inx.inputs.nixpkgs.follows = "";
    # A folder with bin/busybox (a static busybox) and bin/sh -> busybox: the one program this
    # system runs. `scripts/try.sh` makes it from Debian's busybox-static; anywhere else,
    # `--override-input busybox path:/your/folder` once (`nix flake lock`) points it elsewhere.
    busybox = {
      url = "path:/var/lib/inx-try/busybox";
      flake = false;
    };
  };

  outputs =
    { inx, busybox, ... }:
    let
      # A NixOS-shaped system made of busybox alone (inx's test fixture): `init`, `activate`
      # and `bin/switch-to-configuration`, which is what inx needs of a system. Not NixOS: on a
      # host with nixpkgs, see ../nixos.
      synthetic = import "${inx}/tests/fixtures/synthetic-system.nix";

      # Edit the page (or `version`) and run `inx up` again: the container switches to the new
      # system in place, without a restart, and `inx rollback demo` goes back.
      page = "hello from inx";
      version = "1";

      system = synthetic {
        busybox = "${busybox}";
        inherit version;
        # Runs on boot and on every switch: the container's loopback up, then busybox's web
        # server on port 80, restarted so that it serves this system's page.
        extraActivation = ''
          ip link set lo up
          mkdir -p /var/www
          echo '${page} (system ${version})' >/var/www/index.html
          killall httpd 2>/dev/null || true
          httpd -p 80 -h /var/www
        '';
      };
    in
    {
      inxContainers.demo = inx.lib.mkContainer {
        toplevel = system;
        # Port 8080 on the host's loopback reaches port 80 inside (an Incus proxy device).
        # Without listenAddress, every address of the host listens.
        forwardPorts = [
          {
            hostPort = 8080;
            containerPort = 80;
            listenAddress = "127.0.0.1";
          }
        ];
        incus.config."limits.memory" = "256MiB";
      };
    };
}
