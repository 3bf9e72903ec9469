# The host side of inx, as a NixOS module (`nixosModules.host`): inx on PATH, Incus on and
# initialised (a storage pool, a bridge the firewall trusts, a default profile), and builds
# made inside containers kept across the host's GC (`inx roots watch` as a service, and a roots
# sync before every run of the host's scheduled GC).
#
# Option names checked against nixpkgs' nixos/modules/virtualisation/incus.nix
# (virtualisation.incus.{enable,clientPackage,preseed,socketActivation}; its assertion wants
# nftables when the firewall is on), services/networking/firewall.nix (trustedInterfaces),
# services/misc/nix-gc.nix (the `nix-gc` service of nix.gc.automatic), config/nix.nix
# (nix.settings.allowed-users, nix.settings.trusted-users), config/nix-flakes.nix
# (nix.registry), system/boot/systemd/tmpfiles.nix (systemd.tmpfiles.rules),
# services/networking/ssh/sshd.nix (services.openssh.enable,
# users.users.<name>.openssh.authorizedKeys.keys) and config/users-groups.nix
# (users.users.<name>.extraGroups).
{ inxPackages, inxFlake }:
{
  _class = "nixos";
  # A file and a key of its own: errors name this file, `disabledModules` can name the module,
  # and importing it twice is harmless.
  _file = toString ./host.nix;
  key = toString ./host.nix;

  imports = [
    (
      {
        config,
        lib,
        pkgs,
        ...
      }:
      let
        cfg = config.services.inx;
        inx = lib.getExe cfg.package;
        cap = "--max-roots ${toString cfg.roots.maxPerContainer}";
        incus = config.virtualisation.incus;
        # inx lists containers with the incus client (`clientPackage` is recent; older NixOS
        # has only `package`, which holds the client too).
        path = [ (incus.clientPackage or incus.package) ];
        # The bridges the preseed makes, whichever preseed is in force: the firewall trusts
        # them so that containers get DHCP and DNS from Incus's dnsmasq.
        bridges = map (n: n.name) (
          lib.filter (n: (n.type or "bridge") == "bridge" && n ? name) (
            if incus.preseed == null then [ ] else incus.preseed.networks or [ ]
          )
        );
        # Containers reach the host's nix-daemon as their idmapped uids (1000000 and up), which
        # have no passwd entry: only "*" lets them in.
        allowed = config.nix.settings.allowed-users;
        deploy = cfg.deploy;
        deployed = deploy.authorizedKeys != [ ];
      in
      {
        options.services.inx = {
          enable = lib.mkEnableOption "inx, NixOS containers on Incus that share the host's /nix/store";

          package = lib.mkOption {
            type = lib.types.package;
            default = inxPackages.${pkgs.stdenv.hostPlatform.system}.inx;
            defaultText = lib.literalExpression "inx.packages.\${system}.inx";
            description = "The inx package.";
          };

          registry = lib.mkOption {
            type = lib.types.bool;
            default = true;
            description = ''
              Add this inx flake to the host's flake registry as `inx`, so that
              `nix flake init -t inx` and the template's `inx.url = "inx"` find it.
            '';
          };

          deploy = {
            authorizedKeys = lib.mkOption {
              type = lib.types.listOf lib.types.str;
              default = [ ];
              example = [ "ssh-ed25519 AAAA... deployer@laptop" ];
              description = ''
                Public ssh keys of the machines that run `inx up` for containers on this host
                (an Incus remote or a cluster member of theirs). inx copies each container's
                system here with `nix copy --to ssh://` and sets its host profile over ssh.
                Keys turn on sshd and let `deploy.user` log in with them.
              '';
            };

            user = lib.mkOption {
              type = lib.types.str;
              default = "root";
              description = ''
                The user those machines log in as (mkContainer's `ssh.user`). A user other than
                root is made a trusted user of the Nix daemon (to add closures nobody signed)
                and a member of incus-admin (to write the host profiles).
              '';
            };
          };

          roots = {
            watch = lib.mkOption {
              type = lib.types.bool;
              default = true;
              description = ''
                Run `inx roots watch` as a service, so that a build made inside a container is
                kept the moment its result link appears, before any root query or GC on the
                host can delete the link. It starts with `incus.service`, so it keeps
                `virtualisation.incus.socketActivation` working.
              '';
            };

            syncBeforeGc = lib.mkOption {
              type = lib.types.bool;
              default = true;
              description = ''
                Run `inx roots sync` before the host's scheduled garbage collection (the
                `nix-gc` service of `nix.gc.automatic`). If the sync fails, that collection
                does not run.
              '';
            };

            maxPerContainer = lib.mkOption {
              type = lib.types.ints.positive;
              default = 1000;
              description = "How many builds inx keeps per container (`--max-roots`).";
            };
          };
        };

        config = lib.mkIf cfg.enable {
          environment.systemPackages = [ cfg.package ];

          virtualisation.incus.enable = true;
          # A fresh host gets what `inx up` needs: a storage pool, a bridge with NAT and a
          # default profile with a root disk and a NIC on it (the shape of nixpkgs' own Incus
          # tests and of incus.nix's example). Each part is a default: a preseed of your own
          # replaces the parts it names; `virtualisation.incus.preseed = lib.mkForce null`
          # turns it off (do that on a host whose Incus is set up already: a preseed
          # overwrites the entities it names at every start of incus.service).
          virtualisation.incus.preseed = {
            networks = lib.mkDefault [
              {
                name = "incusbr0";
                type = "bridge";
                config = {
                  "ipv4.address" = "10.0.100.1/24";
                  "ipv4.nat" = "true";
                };
              }
            ];
            storage_pools = lib.mkDefault [
              {
                name = "default";
                driver = "dir";
              }
            ];
            profiles = lib.mkDefault [
              {
                name = "default";
                devices = {
                  root = {
                    type = "disk";
                    path = "/";
                    pool = "default";
                  };
                  eth0 = {
                    type = "nic";
                    name = "eth0";
                    network = "incusbr0";
                  };
                };
              }
            ];
          };
          # The NixOS firewall would drop the containers' DHCP and DNS on the bridge.
          networking.firewall.trustedInterfaces = bridges;
          # Incus on NixOS refuses iptables when the firewall is on. Hosts with rules in
          # networking.firewall.extraCommands (iptables only) must port them or set this false.
          networking.nftables.enable = lib.mkDefault true;

          nix.registry = lib.mkIf cfg.registry { inx.flake = inxFlake; };

          # Another machine's inx deploys here over ssh (see deploy.authorizedKeys).
          services.openssh.enable = lib.mkIf deployed true;
          users.users.${deploy.user} = lib.mkIf deployed {
            openssh.authorizedKeys.keys = deploy.authorizedKeys;
            extraGroups = lib.mkIf (deploy.user != "root") [ "incus-admin" ];
          };
          nix.settings.trusted-users = lib.mkIf (deployed && deploy.user != "root") [
            "root"
            deploy.user
          ];

          # Members of incus-admin (incus.nix makes the group and gives it Incus's socket) run
          # inx without sudo: the folders inx writes are theirs too (inx.tmpfiles says how).
          # `roots sync`, `roots watch` and `gc` still need root; the services below run them.
          systemd.tmpfiles.rules = lib.filter (line: line != "" && !lib.hasPrefix "#" line) (
            lib.splitString "\n" (builtins.readFile ./inx.tmpfiles)
          );

          warnings = lib.optional (!(lib.elem "*" allowed)) ''
            services.inx: nix.settings.allowed-users is ${builtins.toJSON allowed}. Containers reach
            the host's nix-daemon as their idmapped uids (1000000 and up, no passwd entry),
            which only "*" admits: every container's nix command (and its builds) will be
            refused. Add "*" to nix.settings.allowed-users to build inside containers.
          '';

          systemd.services.inx-roots = lib.mkIf cfg.roots.watch {
            description = "inx: keep what containers build across the host's garbage collection";
            # Containers only run while incusd does: start and stop with it, never start it
            # (its listings would wake a socket-activated incusd).
            wantedBy = [ "incus.service" ];
            partOf = [ "incus.service" ];
            after = [
              "incus.service"
              "nix-daemon.socket"
            ];
            inherit path;
            serviceConfig = {
              ExecStart = "${inx} roots watch ${cap}";
              Restart = "always";
              RestartSec = 5;
            };
          };

          # nix-gc.nix defines this service when nix.enable is on; only add to it then.
          systemd.services.nix-gc = lib.mkIf (cfg.roots.syncBeforeGc && config.nix.enable) {
            inherit path;
            preStart = "${inx} roots sync ${cap}";
          };
        };
      }
    )
  ];
}
