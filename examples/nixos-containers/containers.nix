# A host's `containers.*` block, moved out of its configuration.nix as it was written there
# (nixos-container's options: nixpkgs' nixos/modules/virtualisation/nixos-containers.nix).
# flake.nix turns it into inx containers; docs/migration.md says what each option becomes.
{
  web = {
    autoStart = true;
    # The host's folder, writable by the container's root (owned by root on the host).
    bindMounts."/var/www" = {
      hostPath = "/srv/www";
      isReadOnly = false;
    };
    forwardPorts = [
      {
        hostPort = 8082;
        containerPort = 80;
      }
    ];
    config = {
      services.nginx.enable = true;
      services.nginx.virtualHosts.localhost.root = "/var/www";
      networking.firewall.allowedTCPPorts = [ 80 ];
      system.stateVersion = "25.11";
    };
  };

  db = {
    autoStart = true;
    # Its own veth with an address on each end (an Incus routed nic).
    privateNetwork = true;
    hostAddress = "192.168.100.10";
    localAddress = "192.168.100.11";
    # Read-only by default, as in nixos-container.
    bindMounts."/etc/db-seed".hostPath = "/srv/db-seed";
    config = {
      services.postgresql.enable = true;
      system.stateVersion = "25.11";
    };
  };

  # A throw-away box: its root filesystem is a tmpfs, gone when it stops.
  scratch = {
    ephemeral = true;
    tmpfs = [ "/tmp:mode=1777" ];
    config = {
      system.stateVersion = "25.11";
    };
  };
}
