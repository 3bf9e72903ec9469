# The host side of inx, as a NixOS module (`nixosModules.host`): inx on PATH, Incus on and, if
# fresh, initialised (a storage pool, a bridge the firewall trusts, a default profile; an Incus
# that is set up is left alone), and builds made inside containers kept across the host's GC
# (`inx roots watch` as a service, and a roots sync before every run of the host's scheduled GC);
# the inotify limits Incus documents for many containers.
#
# Option names checked against nixpkgs' nixos/modules/virtualisation/incus.nix
# (virtualisation.incus.{enable,clientPackage,preseed,socketActivation}; its assertion wants
# nftables when the firewall is on; incus-preseed.service runs `incus admin init --preseed` at
# every start of incus.service, which is why inx sets no preseed; it sets Incus's sysctls at
# mkDefault, the inotify ones at mkOverride 1050, and incus.service's LimitNOFILE and
# LimitMEMLOCK), config/sysctl.nix (boot.kernel.sysctl: a freeform set whose keys each take one
# definition per priority; vm.max_map_count and the inotify limits at mkDefault),
# services/networking/firewall.nix (trustedInterfaces), services/misc/nix-gc.nix (the `nix-gc`
# service of nix.gc.automatic), config/nix.nix (nix.settings.allowed-users, trusted-users,
# flake-registry), config/nix-flakes.nix (nix.registry.<name>.{from,to,exact}, written to
# /etc/nix/registry.json), system/boot/systemd/tmpfiles.nix (systemd.tmpfiles.rules),
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
        # The bridge containers use and those a preseed of the user's own makes: the firewall
        # trusts them so that containers get DHCP and DNS from Incus's dnsmasq.
        bridges = lib.unique (
          lib.optional (cfg.bridge != null && cfg.trustBridge) cfg.bridge
          ++ map (n: n.name) (
            lib.filter (n: (n.type or "bridge") == "bridge" && n ? name) (
              if incus.preseed == null then [ ] else incus.preseed.networks or [ ]
            )
          )
        );
        # inx's services run with incusd: started with it (and at boot, and so at the switch
        # that adds them, where incusd starts at boot), stopped with it, never starting it (a
        # socket-activated incusd stays off until first use).
        withIncusd = {
          wantedBy = [ "incus.service" ] ++ lib.optional (!incus.socketActivation) "multi-user.target";
          partOf = [ "incus.service" ];
        };
        # Creates only what a fresh Incus lacks (incus-init.sh says what and when).
        initScript = pkgs.writeShellScript "inx-incus-init" (builtins.readFile ./incus-init.sh);
        # Nix 2.28 and later resolve flake inputs through the global registry only (the
        # `flake-registry` setting, by default a URL fetched at run time): this file serves the
        # system registry's entries there, and `nixpkgs` as the upstream one has it where the
        # system registry has none.
        globalRegistry = pkgs.writeText "flake-registry.json" (
          builtins.toJSON {
            version = 2;
            flakes =
              lib.mapAttrsToList (_: e: { inherit (e) from to exact; }) config.nix.registry
              ++ lib.optional (!(config.nix.registry ? nixpkgs)) {
                from = {
                  type = "indirect";
                  id = "nixpkgs";
                };
                to = {
                  type = "github";
                  owner = "NixOS";
                  repo = "nixpkgs";
                  ref = "nixpkgs-unstable";
                };
              };
          }
        );
        # Containers reach the host's nix-daemon as their idmapped uids (1000000 and up), which
        # have no passwd entry: only "*" lets them in.
        allowed = config.nix.settings.allowed-users;
        deploy = cfg.deploy;
        # `inx roots watch` runs as root and reads links that containers (untrusted) write: it
        # keeps only what that needs. It reads containers' files, owned by their idmapped uids,
        # through /proc/PID/root and the storage pool (CAP_DAC_READ_SEARCH; CAP_SYS_PTRACE for
        # a privileged container's init that is not dumpable: root owns the user namespaces of
        # unprivileged ones, which is enough there); writes its links under gcroots/inx and sweeps
        # profiles/inx/.builds, folders incus-admin members share (CAP_DAC_OVERRIDE, and
        # CAP_FOWNER for the 2770 it keeps on them; so no RestrictSUIDSGID); reads /proc/uptime
        # (so no ProcSubset=pid) and other users' /proc (so no ProtectProc); talks to incusd
        # over its Unix socket only (it runs no nix command). tests/flake.rs scores the unit with
        # `systemd-analyze security --offline=true`.
        rootsHardening = {
          CapabilityBoundingSet = [
            "CAP_DAC_OVERRIDE"
            "CAP_DAC_READ_SEARCH"
            "CAP_FOWNER"
            "CAP_SYS_PTRACE"
          ];
          # In the group its folders are shared with: chmod 2770 of a folder it made keeps the
          # setgid bit only for a member of the folder's group (or with CAP_FSETID).
          SupplementaryGroups = [ "incus-admin" ];
          NoNewPrivileges = true;
          ProtectSystem = "strict";
          # `-`: a host where they do not exist yet still starts the service (tmpfiles makes
          # them at boot; roots watch makes gcroots/auto if Nix has not).
          ReadWritePaths = [
            "-/nix/var/nix/gcroots"
            "-/nix/var/nix/profiles/inx"
          ];
          # No home: the incus client gets a config folder of its own below (it writes one on
          # first use, and fails where it cannot; roots list every project, so root's current
          # project does not matter).
          ProtectHome = true;
          RuntimeDirectory = "inx-roots";
          PrivateTmp = true;
          PrivateMounts = true;
          PrivateDevices = true;
          PrivateNetwork = true;
          IPAddressDeny = "any";
          RestrictAddressFamilies = [ "AF_UNIX" ];
          ProtectKernelTunables = true;
          ProtectKernelModules = true;
          ProtectKernelLogs = true;
          ProtectControlGroups = true;
          ProtectClock = true;
          ProtectHostname = true;
          RestrictNamespaces = true;
          RestrictRealtime = true;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          SystemCallArchitectures = "native";
          SystemCallFilter = [ "@system-service" ];
          # A call outside the filter fails with EPERM instead of killing the watcher.
          SystemCallErrorNumber = "EPERM";
          # inx sets the modes of what it shares with incus-admin itself.
          UMask = "0007";
        };
        deployed = deploy.authorizedKeys != [ ];
        # The limits Incus documents for many instances (incus-sysctl.conf, which says why each;
        # scripts/host-limits.sh reads it too, and the manual shows it): its `key = value` lines.
        incusSysctl = lib.listToAttrs (
          map (
            line:
            let
              kv = map (lib.replaceStrings [ " " ] [ "" ]) (lib.splitString "=" line);
            in
            lib.nameValuePair (lib.head kv) (lib.toInt (lib.last kv))
          ) (lib.filter (line: line != "" && !lib.hasPrefix "#" line) sysctlLines)
        );
        sysctlLines = lib.splitString "\n" (builtins.readFile ./incus-sysctl.conf);
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

          initialise = lib.mkOption {
            type = lib.types.bool;
            default = true;
            description = ''
              After each start of incusd, initialise Incus if it is fresh (its `default` profile
              has no device): create a `dir` storage pool `default` and the bridge `bridge`
              where missing, and add a root disk on that pool and a NIC `eth0` on the bridge to
              the `default` profile. An Incus whose `default` profile has any device is left as
              it is, and nothing existing is ever changed or deleted. inx sets no
              `virtualisation.incus.preseed` (Incus applies a preseed at every start and
              overwrites what it names); one of your own runs first.
            '';
          };

          bridge = lib.mkOption {
            type = lib.types.nullOr lib.types.str;
            default = "incusbr0";
            example = "br0";
            description = ''
              The bridge the containers' NICs are on; the firewall trusts it (for their DHCP
              and DNS). On a host whose Incus has a bridge of its own, name it here. On a fresh
              Incus, `initialise` creates it (a managed bridge with `bridgeAddress` and NAT)
              unless a network of that name exists (a host bridge Incus does not manage is
              joined as the NIC's parent). `null`: no NIC in the default profile, no bridge
              trusted.
            '';
          };

          trustBridge = lib.mkOption {
            type = lib.types.bool;
            default = true;
            description = ''
              Whether the firewall trusts `bridge` (`networking.firewall.trustedInterfaces`), so
              that containers get DHCP and DNS from Incus's dnsmasq there. Set it false when
              `bridge` is a host bridge of your own that carries the host's LAN: trusting it would
              open every port to the LAN, and containers on it get their addresses from the LAN.
            '';
          };

          bridgeAddress = lib.mkOption {
            type = lib.types.str;
            default = "10.0.100.1/24";
            description = "The IPv4 address and subnet of a bridge `initialise` creates.";
          };

          registry = lib.mkOption {
            type = lib.types.bool;
            default = true;
            description = ''
              Add this inx flake to the host's flake registry as `inx`, so that
              `nix flake init -t inx` and (with `globalRegistry`, on Nix 2.28 and later) the
              template's `inx.url = "inx"` find it.
            '';
          };

          globalRegistry = lib.mkOption {
            type = lib.types.bool;
            default = true;
            description = ''
              Serve the system flake registry (`nix.registry`, with `inx` in it) as Nix's global
              registry too (`nix.settings.flake-registry`, at `mkDefault`), because Nix 2.28 and
              later resolve flake inputs such as the template's `inx.url = "inx"` through the
              global registry only. That file replaces the registry Nix would download: it
              holds the system registry's entries and `nixpkgs` (nixpkgs-unstable on GitHub,
              as upstream) where the system registry has none; the upstream registry's other
              names (such as `flake-utils`) no longer resolve. Set false to keep the upstream
              registry, and then lock a new flake's `inx` input with
              `nix flake lock --override-input inx <inx>` on those Nix versions.
            '';
          };

          kernelLimits = lib.mkOption {
            type = lib.types.bool;
            default = true;
            description = ''
              Raise the inotify limits (`fs.inotify.max_user_instances` and
              `max_user_watches`) to the 1048576 Incus documents for hosts with many
              instances, over NixOS's own 524288. Every container's systemd takes inotify
              instances and watches from one shared count (root's, which owns the containers'
              user namespaces). The other limits Incus documents come from NixOS's Incus
              module as they are. Set at priority 999, just above `mkDefault`: a value of your
              own set plainly wins (one set with `mkDefault` does not).
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
          # A fresh Incus gets what `inx up` needs: a storage pool, a bridge with NAT and a
          # default profile with a root disk and a NIC on it (the shape of incus.nix's example),
          # made once; an Incus that is set up is left alone (incus-init.sh).
          systemd.services.inx-incus-init = lib.mkIf cfg.initialise {
            description = "inx: initialise a fresh Incus (a set-up one is left as it is)";
            # With incusd (withIncusd), after any preseed of the user's own.
            inherit (withIncusd) wantedBy partOf;
            after = [
              "incus.service"
              "incus-preseed.service"
            ];
            inherit path;
            environment = {
              INX_BRIDGE = if cfg.bridge == null then "" else cfg.bridge;
              INX_BRIDGE_ADDRESS = cfg.bridgeAddress;
            };
            serviceConfig = {
              Type = "oneshot";
              RemainAfterExit = true;
              ExecStart = initScript;
            };
          };
          # Many containers (services.inx.kernelLimits): incus.nix sets every other limit of
          # Incus's "Server settings for an Incus production setup" (at mkDefault, which inx must
          # not repeat: two definitions of one sysctl at the same priority fail evaluation), and
          # sysctl.nix sets vm.max_map_count higher. Its inotify values (mkOverride 1050) lose to
          # sysctl.nix's mkDefault 524288; 999 wins over both, and a plain setting over it.
          boot.kernel.sysctl = lib.mkIf cfg.kernelLimits (
            lib.mapAttrs (_: lib.mkOverride 999) (
              lib.getAttrs [
                "fs.inotify.max_user_instances"
                "fs.inotify.max_user_watches"
              ] incusSysctl
            )
          );

          # The NixOS firewall would drop the containers' DHCP and DNS on the bridge.
          networking.firewall.trustedInterfaces = bridges;
          # Incus on NixOS refuses iptables when the firewall is on. Hosts with rules in
          # networking.firewall.extraCommands (iptables only) must port them or set this false.
          networking.nftables.enable = lib.mkDefault true;

          nix.registry = lib.mkIf cfg.registry { inx.flake = inxFlake; };
          nix.settings.flake-registry = lib.mkIf (cfg.registry && cfg.globalRegistry) (lib.mkDefault globalRegistry);

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
            # Containers only run while incusd does (withIncusd; its listings would wake a
            # socket-activated incusd).
            inherit (withIncusd) wantedBy partOf;
            after = [
              "incus.service"
              "nix-daemon.socket"
            ];
            inherit path;
            environment.INCUS_CONF = "/run/inx-roots/incus";
            # Restarted after a failure, but not forever: five failures in five minutes leave
            # it failed (systemctl status says why) instead of looping.
            unitConfig = {
              StartLimitIntervalSec = 300;
              StartLimitBurst = 5;
            };
            serviceConfig = {
              ExecStart = "${inx} roots watch ${cap}";
              Restart = "on-failure";
              RestartSec = 5;
            }
            // rootsHardening;
          };

          # nix-gc.nix defines this service when nix.enable is on; only add to it then. The sync
          # asks incusd for its containers. Only where incusd is socket-activated and has not
          # been started (inactive, not failed) did no container run since the last sync, so
          # only then is the sync skipped rather than incusd woken. Anywhere else (a stopped or
          # crashed incusd leaves its containers running: incus.nix's unit kills only the
          # daemon) it runs, and a failed sync stops the collection.
          systemd.services.nix-gc = lib.mkIf (cfg.roots.syncBeforeGc && config.nix.enable) {
            inherit path;
            preStart =
              if incus.socketActivation then
                ''
                  state=$(systemctl is-active incus.service || true)
                  if [ "$state" = inactive ]; then
                    echo "inx: incus.service was not started (socket activation): no roots sync (nothing ran since the last one)"
                  else
                    ${inx} roots sync ${cap}
                  fi
                ''
              else
                "${inx} roots sync ${cap}";
          };
        };
      }
    )
  ];
}
