# inx's NixOS modules, evaluated with the real module system (the real nixpkgs lib) against the
# stand-in's typed option declarations (tests/nix/nixpkgs/nixos/modules). A misspelt option or a
# wrong type fails the evaluation; each check below compares an evaluated value with what inx
# promises. The result is the list of failed checks: empty means every check held.
#
#   nix eval --json --impure --expr \
#     'import ./tests/nix/modules.nix { nixpkgs = builtins.getFlake "path:<stand-in>"; inx = ./.; }'
{ nixpkgs, inx }:

let
  inherit (nixpkgs) lib;
  system = "x86_64-linux";
  pkgs = nixpkgs.legacyPackages.${system};

  # inx's outputs as flake.nix wires them, without fetching inx's own nixpkgs input.
  inxFlake = {
    outPath = toString inx;
    narHash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
  };
  guest = import (inx + "/lib/modules/guest.nix");
  host = import (inx + "/lib/modules/host.nix") {
    inxPackages.${system}.inx = pkgs.callPackage (inx + "/lib/package.nix") { };
    inherit inxFlake;
  };
  inxLib = import (inx + "/lib") { guestModule = guest; };

  nixos = modules: nixpkgs.lib.nixosSystem { inherit system modules; };
  # `value` once `forced` evaluates, or null where that throws (a failed assertion included).
  tried =
    forced: value:
    let
      r = builtins.tryEval (builtins.seq forced value);
    in
    if r.success then r.value else null;
  # The evaluated config of a system made of `modules`, or null.
  outcome =
    modules:
    let
      sys = nixos modules;
    in
    tried sys.config.system.build.toplevel.drvPath sys.config;
  fails = modules: outcome modules == null;

  # A check is a name and a condition; `expect` also shows both values when they differ.
  check = name: ok: lib.optional (!ok) name;
  expect =
    name: actual: expected:
    lib.optional (actual != expected) "${name}: got ${builtins.toJSON actual}, want ${builtins.toJSON expected}";

  # --- the host module ---
  hostOn = [
    host
    { services.inx.enable = true; }
  ];
  h = outcome hostOn;
  roots = h.systemd.services.inx-roots;
  init = h.systemd.services.inx-incus-init;
  # The bridge and address the init service is given.
  initArgs = c: with c.systemd.services.inx-incus-init.environment; [ INX_BRIDGE INX_BRIDGE_ADDRESS ];

  # A host whose Incus is set up already, with a bridge of its own.
  existing = outcome (hostOn ++ [ { services.inx.bridge = "br-lan"; } ]);
  # The same, with inx's initialisation off altogether.
  untouched = outcome (
    hostOn
    ++ [
      {
        services.inx.bridge = "br-lan";
        services.inx.initialise = false;
      }
    ]
  );
  # A preseed of the user's own (incus.nix applies it at every start of incusd).
  custom = outcome (
    hostOn
    ++ [
      {
        virtualisation.incus.preseed.networks = [
          {
            name = "lab0";
            type = "bridge";
            config."ipv4.address" = "10.9.0.1/24";
          }
        ];
      }
    ]
  );
  noBridge = outcome (hostOn ++ [ { services.inx.bridge = null; } ]);
  socket = outcome (hostOn ++ [ { virtualisation.incus.socketActivation = true; } ]);
  hardened = outcome (hostOn ++ [ { nix.settings.allowed-users = [ "@users" ]; } ]);
  gcOn = outcome (hostOn ++ [ { nix.gc.automatic = true; } ]);
  gcSocket = outcome (
    hostOn
    ++ [
      {
        nix.gc.automatic = true;
        virtualisation.incus.socketActivation = true;
      }
    ]
  );
  ownBridge = outcome (
    hostOn
    ++ [
      {
        services.inx.bridge = "br0";
        services.inx.trustBridge = false;
      }
    ]
  );
  twice = outcome (hostOn ++ [ host ]);
  disabled = nixos [
    host
    { disabledModules = [ host ]; }
  ];
  # The global registry file the module serves (the stand-in's writeText keeps its text).
  registryOf = c: builtins.fromJSON c.nix.settings.flake-registry.text;
  pinned = outcome (
    hostOn
    ++ [
      {
        nix.registry.nixpkgs.to = {
          type = "path";
          path = "/pinned";
        };
      }
    ]
  );

  # The limits Incus documents (lib/modules/incus-sysctl.conf, `key = value` lines) and the
  # sysctls a host evaluates to.
  incusLimits = builtins.listToAttrs (
    map (
      line:
      let
        kv = lib.splitString " = " line;
      in
      {
        name = lib.head kv;
        value = lib.toInt (lib.last kv);
      }
    ) (lib.filter (l: l != "" && !lib.hasPrefix "#" l) (lib.splitString "\n" incusSysctlText))
  );
  incusSysctlText = builtins.readFile (inx + "/lib/modules/incus-sysctl.conf");
  inotify = c: {
    instances = c.boot.kernel.sysctl."fs.inotify.max_user_instances";
    watches = c.boot.kernel.sysctl."fs.inotify.max_user_watches";
  };
  ownLimits = outcome (
    hostOn
    ++ [
      {
        boot.kernel.sysctl = {
          "fs.inotify.max_user_instances" = 8192;
          "kernel.keys.maxkeys" = 5000;
        };
      }
    ]
  );
  limitsOff = outcome (hostOn ++ [ { services.inx.kernelLimits = false; } ]);

  hostChecks =
    check "host: evaluates with services.inx.enable" (h != null)
    ++ check "host: incus-sysctl.conf lists the limits Incus documents" (
      lib.length (lib.attrNames incusLimits) == 10
    )
    ++ expect "host: every limit in incus-sysctl.conf is met or exceeded (the keys below it)" (
      lib.filter (k: !(h.boot.kernel.sysctl.${k} or 0 >= incusLimits.${k})) (lib.attrNames incusLimits)
    ) [ ]
    ++ expect "host: the inotify limits are Incus's, over NixOS's own 524288" (inotify h) {
      instances = 1048576;
      watches = 1048576;
    }
    ++ expect "host: NixOS's higher vm.max_map_count and incus.nix's other limits stand" {
      maps = h.boot.kernel.sysctl."vm.max_map_count";
      keys = h.boot.kernel.sysctl."kernel.keys.maxkeys";
    } {
      maps = 1048576;
      keys = 2000;
    }
    ++ expect "host: a limit of one's own wins over inx's and incus.nix's" {
      inherit (inotify ownLimits) instances watches;
      keys = ownLimits.boot.kernel.sysctl."kernel.keys.maxkeys";
    } {
      instances = 8192;
      watches = 1048576;
      keys = 5000;
    }
    ++ expect "host: kernelLimits = false leaves NixOS's own inotify limits" (inotify limitsOff) {
      instances = 524288;
      watches = 524288;
    }
    # Why inx sets its own at 999 and repeats none of incus.nix's: a second definition of a
    # sysctl at incus.nix's priority fails the evaluation (the stand-in's type is nixpkgs').
    ++ check "host: a second mkDefault of a sysctl incus.nix sets fails, as on NixOS" (
      fails (hostOn ++ [ { boot.kernel.sysctl."kernel.keys.maxkeys" = lib.mkDefault 2000; } ])
    )
    # The same lines the end-to-end tests apply with systemd-tmpfiles (tests/e2e/users.rs).
    ++ expect "host: inx's folders shared with incus-admin" h.systemd.tmpfiles.rules [
      "d /nix/var/nix/profiles/inx 2770 root incus-admin -"
      "z /nix/var/nix/profiles/inx/* - root incus-admin -"
      "d /nix/var/nix/profiles/inx/.builds 2770 root incus-admin -"
      "z /nix/var/nix/profiles/inx/.builds/* - root incus-admin -"
      "z /nix/var/nix/profiles/inx/.runs - root incus-admin -"
      "z /nix/var/nix/profiles/inx/.runs/* - root incus-admin -"
      "z /nix/var/nix/profiles/inx/.projects - root incus-admin -"
      "z /nix/var/nix/profiles/inx/.projects/* - root incus-admin -"
      "z /nix/var/nix/profiles/inx/.projects/*/* - root incus-admin -"
      "f /nix/var/nix/profiles/inx/.lock 0660 root incus-admin -"
      "d /nix/var/nix/gcroots/inx 2770 root incus-admin -"
      "Z /nix/var/nix/gcroots/inx - root incus-admin -"
      "f /nix/var/nix/gcroots/inx/.lock 0660 root incus-admin -"
    ]
    # A fresh host: no preseed (which Incus would apply at every start), inx's own one-shot
    # initialisation with incusd, the bridge it makes trusted.
    ++ expect "host: fresh: no preseed, so nothing is applied at every start" {
      preseed = h.virtualisation.incus.preseed;
      service = h.systemd.services ? incus-preseed;
    } {
      preseed = null;
      service = false;
    }
    ++ expect "host: fresh: the init service runs once per incusd start (and at boot, with an incusd that starts then), after any preseed, never starts incusd" {
      inherit (init) wantedBy partOf after wants requires;
      inherit (init.serviceConfig) Type RemainAfterExit;
      script = lib.hasSuffix "-inx-incus-init" init.serviceConfig.ExecStart;
    } {
      wantedBy = [
        "incus.service"
        "multi-user.target"
      ];
      partOf = [ "incus.service" ];
      after = [
        "incus.service"
        "incus-preseed.service"
      ];
      wants = [ ];
      requires = [ ];
      Type = "oneshot";
      RemainAfterExit = true;
      script = true;
    }
    ++ expect "host: fresh: the init service makes incusbr0 at 10.0.100.1/24" (initArgs h) [
      "incusbr0"
      "10.0.100.1/24"
    ]
    ++ expect "host: fresh: the init script is incus-init.sh" (
      lib.hasInfix "Incus counts as set up once its `default` profile has a device"
        (pkgs.writeShellScript "x" (builtins.readFile (inx + "/lib/modules/incus-init.sh"))).text
    ) true
    ++ expect "host: fresh: incusbr0 is trusted" h.networking.firewall.trustedInterfaces [ "incusbr0" ]
    ++ expect "host: nftables on" h.networking.nftables.enable true
    # A host whose Incus is set up: nothing is preseeded; the init service (which leaves a set-up
    # Incus alone) is given the host's bridge, which the firewall trusts.
    ++ expect "host: existing Incus with its own bridge: no preseed, its bridge trusted and named to the init" {
      preseed = existing.virtualisation.incus.preseed;
      trusted = existing.networking.firewall.trustedInterfaces;
      args = initArgs existing;
    } {
      preseed = null;
      trusted = [ "br-lan" ];
      args = [
        "br-lan"
        "10.0.100.1/24"
      ];
    }
    ++ expect "host: initialise = false: no init service, the bridge still trusted" {
      init = untouched.systemd.services ? inx-incus-init;
      preseed = untouched.virtualisation.incus.preseed;
      trusted = untouched.networking.firewall.trustedInterfaces;
    } {
      init = false;
      preseed = null;
      trusted = [ "br-lan" ];
    }
    ++ expect "host: a preseed of one's own is kept as given, runs before the init, and its bridges are trusted too" {
      networks = map (n: n.name) custom.virtualisation.incus.preseed.networks;
      pools = custom.virtualisation.incus.preseed.storage_pools or null;
      preseedService = custom.systemd.services ? incus-preseed;
      trusted = custom.networking.firewall.trustedInterfaces;
    } {
      networks = [ "lab0" ];
      pools = null;
      preseedService = true;
      trusted = [
        "incusbr0"
        "lab0"
      ];
    }
    ++ expect "host: bridge = null: no NIC made, nothing trusted" {
      trusted = noBridge.networking.firewall.trustedInterfaces;
      args = initArgs noBridge;
    } {
      trusted = [ ];
      args = [
        ""
        "10.0.100.1/24"
      ];
    }
    ++ expect "host: the watcher starts and stops with incus (and at boot and at a switch, with an incusd that starts at boot), never starts it" {
      inherit (roots) wantedBy wants partOf;
      after = lib.elem "incus.service" roots.after;
    } {
      wantedBy = [
        "incus.service"
        "multi-user.target"
      ];
      wants = [ ];
      partOf = [ "incus.service" ];
      after = true;
    }
    ++ expect "host: socket activation keeps incus off at boot" {
      incus = socket.systemd.services.incus.wantedBy;
      roots = socket.systemd.services.inx-roots.wantedBy;
    } {
      incus = [ ];
      roots = [ "incus.service" ];
    }
    ++ check "host: the watcher runs inx roots watch" (
      lib.hasInfix "/bin/inx roots watch --max-roots 1000" roots.serviceConfig.ExecStart
    )
    ++ check "host: a roots sync runs before the scheduled GC" (
      lib.hasInfix "/bin/inx roots sync" gcOn.systemd.services.nix-gc.preStart
    )
    ++ check "host: with an incusd that starts at boot, the GC's roots sync always runs (a stopped incusd leaves containers running)" (
      !(lib.hasInfix "is-active" gcOn.systemd.services.nix-gc.preStart)
    )
    ++ check "host: with socket activation, the GC's roots sync is skipped only while incusd was never started (never wakes it)" (
      lib.hasInfix "/bin/inx roots sync" gcSocket.systemd.services.nix-gc.preStart
      && lib.hasInfix ''if [ "$state" = inactive ]; then'' gcSocket.systemd.services.nix-gc.preStart
    )
    ++ expect "host: a host bridge of one's own with trustBridge = false: not trusted, still named to the init" {
      trusted = ownBridge.networking.firewall.trustedInterfaces;
      bridge = ownBridge.systemd.services.inx-incus-init.environment.INX_BRIDGE;
    } {
      trusted = [ ];
      bridge = "br0";
    }
    ++ check "host: the watcher is in incus-admin, so folders it makes keep their setgid bit" (
      roots.serviceConfig.SupplementaryGroups == [ "incus-admin" ]
    )
    ++ expect "host: the confined watcher's incus client writes its config in the watcher's runtime folder, not root's home" {
      conf = roots.environment.INCUS_CONF;
      inherit (roots.serviceConfig) RuntimeDirectory ProtectHome;
    } {
      conf = "/run/inx-roots/incus";
      RuntimeDirectory = "inx-roots";
      ProtectHome = true;
    }
    ++ expect "host: the watcher restarts on failure, at most 5 times in 5 minutes" {
      inherit (roots.serviceConfig) Restart RestartSec;
      inherit (roots.unitConfig) StartLimitIntervalSec StartLimitBurst;
    } {
      Restart = "on-failure";
      RestartSec = 5;
      StartLimitIntervalSec = 300;
      StartLimitBurst = 5;
    }
    ++ expect "host: no warning by default" h.warnings [ ]
    ++ check "host: restricted allowed-users warns" (
      lib.any (lib.hasInfix "nix.settings.allowed-users") hardened.warnings
    )
    ++ check "host: networking.firewall.extraCommands fails with the nftables switch" (
      fails (hostOn ++ [ { networking.firewall.extraCommands = "iptables -A INPUT -j ACCEPT"; } ])
    )
    ++ check "host: extraCommands evaluates once nftables is off again" (
      !fails (
        hostOn
        ++ [
          {
            networking.firewall.extraCommands = "true";
            networking.nftables.enable = false;
            networking.firewall.enable = false;
          }
        ]
      )
    )
    ++ expect "host: inx is in the registry" h.nix.registry.inx.flake inxFlake
    ++ expect "host: the global registry (what Nix 2.28+ resolves inputs with) has inx and upstream's nixpkgs" (
      registryOf h
    ) {
      version = 2;
      flakes = [
        {
          from = {
            type = "indirect";
            id = "inx";
          };
          to = {
            type = "path";
            path = inxFlake.outPath;
            inherit (inxFlake) narHash;
          };
          exact = true;
        }
        {
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
        }
      ];
    }
    ++ expect "host: a system registry's own nixpkgs is served instead of upstream's" (
      map (f: f.to) (lib.filter (f: f.from.id == "nixpkgs") (registryOf pinned).flakes)
    ) [ { type = "path"; path = "/pinned"; } ]
    ++ expect "host: a flake-registry of one's own wins" (outcome (
      hostOn ++ [ { nix.settings.flake-registry = "/etc/mine.json"; } ]
    )).nix.settings.flake-registry "/etc/mine.json"
    ++ expect "host: globalRegistry = false keeps Nix's default" ((outcome (
      hostOn ++ [ { services.inx.globalRegistry = false; } ]
    )).nix.settings ? flake-registry) false
    ++ expect "host: no registry entry, no global registry" ((outcome (
      hostOn ++ [ { services.inx.registry = false; } ]
    )).nix.settings ? flake-registry) false
    ++ expect "host: no deploy keys, no sshd" h.services.openssh.enable false
    ++ expect "host: root deploys with the keys given, trusted as root always is" (
      let
        d = outcome (hostOn ++ [ { services.inx.deploy.authorizedKeys = [ "ssh-ed25519 K me" ]; } ]);
      in
      {
        sshd = d.services.openssh.enable;
        keys = d.users.users.root.openssh.authorizedKeys.keys;
        trusted = d.nix.settings.trusted-users;
      }
    ) {
      sshd = true;
      keys = [ "ssh-ed25519 K me" ];
      trusted = [ "root" ];
    }
    ++ expect "host: another deploy user is trusted and in incus-admin" (
      let
        d = outcome (
          hostOn
          ++ [
            {
              services.inx.deploy = {
                authorizedKeys = [ "ssh-ed25519 K me" ];
                user = "deploy";
              };
            }
          ]
        );
      in
      {
        keys = d.users.users.deploy.openssh.authorizedKeys.keys;
        groups = d.users.users.deploy.extraGroups;
        trusted = d.nix.settings.trusted-users;
      }
    ) {
      keys = [ "ssh-ed25519 K me" ];
      groups = [ "incus-admin" ];
      trusted = [ "root" "deploy" ];
    }
    ++ check "host: imported twice is harmless" (twice != null)
    ++ check "host: disabledModules removes it" (!(disabled.options.services ? inx))
    ++ check "host: off by default changes nothing" (
      let
        off = outcome [ host ];
      in
      off != null
      && !off.virtualisation.incus.enable
      && off.virtualisation.incus.preseed == null
      && !(off.systemd.services ? inx-incus-init)
      && !(off.nix.settings ? flake-registry)
      && inotify off == {
        instances = 524288;
        watches = 524288;
      }
    );

  # --- the guest module, through mkContainer as users reach it ---
  container =
    modules:
    let
      c = inxLib.mkContainer {
        inherit nixpkgs system modules;
      };
    in
    tried c.inxManifest.toplevel c.config;
  g = container [ { system.stateVersion = "25.11"; } ];

  guestChecks =
    check "guest: a container evaluates" (g != null)
    ++ expect "guest: boot.isContainer" g.boot.isContainer true
    ++ expect "guest: the hostname is the instance's" g.networking.hostName ""
    ++ expect "guest: a user's own mkDefault hostName wins" (container [
      { networking.hostName = lib.mkDefault "box"; }
    ]).networking.hostName "box"
    ++ expect "guest: no host resolv.conf (over container-config.nix's mkDefault)" g.networking.useHostResolvConf false
    ++ expect "guest: networkd and resolved, as nixpkgs' Incus image" {
      inherit (g.networking) useNetworkd;
      networkd = g.systemd.network.enable;
      resolved = g.services.resolved.enable;
      veth = g.systemd.network.networks."99-inx-veth-default-dhcp".DHCP;
    } {
      useNetworkd = true;
      networkd = true;
      resolved = true;
      veth = "yes";
    }
    ++ expect "guest: a plain setting still wins (with resolved off, which refuses it)" (container [
      {
        networking.useHostResolvConf = true;
        services.resolved.enable = false;
      }
    ])
      .networking.useHostResolvConf
      true
    ++ check "guest: automatic GC inside is refused" (container [ { nix.gc.automatic = true; } ] == null)
    ++ check "guest: automatic optimise inside is refused" (
      container [ { nix.optimise.automatic = true; } ] == null
    )
    ++ expect "guest: no nixbld users" g.nix.nrBuildUsers 0
    ++ expect "guest: the store mount options are Incus's" g.boot.nixStoreMountOpts [ "ro" ]
    ++ expect "guest: nix talks to the host daemon" g.nix.settings.store "daemon"
    ++ expect "guest: no daemon inside" {
      service = g.systemd.services.nix-daemon.enable;
      socket = g.systemd.sockets.nix-daemon.enable;
    } {
      service = false;
      socket = false;
    }
    ++ expect "guest: importing it again is harmless" (
      lib.length (container [ guest ]).systemd.packages
    ) (lib.length g.systemd.packages)
    ++ check "guest: a misspelt option fails" (container [ { networking.hostname = "x"; } ] == null);

  # --- the image module, through mkContainer's image outputs ---
  imagesOf =
    modules:
    (inxLib.mkContainer {
      inherit nixpkgs system modules;
    }).images;
  img = imagesOf [ ];
  ct = img.container.nixos.config;
  open = (imagesOf [ { inx.image.lockRoot = false; } ]).container.nixos.config;
  imageChecks =
    expect "image: the hostname is the instance's" ct.networking.hostName ""
    ++ expect "image: no channel" ct.system.installer.channel.enable false
    ++ expect "image: networkd and resolved, no host resolv.conf" {
      inherit (ct.networking) useNetworkd useHostResolvConf;
      resolved = ct.services.resolved.enable;
    } {
      useNetworkd = true;
      useHostResolvConf = false;
      resolved = true;
    }
    ++ expect "image: root is locked" ct.users.users.root.initialHashedPassword "!"
    ++ expect "image: lockRoot = false gives nixpkgs' empty password" open.users.users.root.initialHashedPassword ""
    ++ expect "image: the console does not offer an empty root password (nixpkgs' help line) while root is locked" {
      locked = lib.hasInfix "empty password" ct.services.getty.helpLine;
      open = lib.hasInfix "empty password" open.services.getty.helpLine;
    } {
      locked = false;
      open = true;
    }
    ++ expect "image: sshd as nixpkgs has it" {
      inherit (ct.services.openssh) enable startWhenNeeded;
      root = ct.services.openssh.settings.PermitRootLogin;
    } {
      enable = true;
      startWhenNeeded = true;
      root = "prohibit-password";
    }
    ++ expect "image: the VM image's root is locked too" img.vm.nixos.config.users.users.root.initialHashedPassword "!"
    ++ check "image: the files are derivations" (
      lib.all lib.isDerivation [
        img.container.squashfs
        img.container.metadata
        img.vm.qcow2
      ]
    )
    ++ expect "image: properties" img.properties {
      os = "nixos";
      release = "26.11";
      variant = "default";
      architecture = "x86_64";
      description = "NixOS Stand-in 26.11pre-stand-in x86_64-linux";
    }
    ++ check "image: lockRoot is accepted by the shared-store evaluation too" (
      container [ { inx.image.lockRoot = false; } ] != null
    );

  # --- the manifest's defaults ---
  manifest = incus: (inxLib.mkContainer { toplevel = pkgs.writeTextDir "init" ""; inherit incus; }).inxManifest.incus.config;
  manifestChecks =
    expect "manifest: unprivileged containers get nesting" (manifest { }) { "security.nesting" = true; }
    ++ expect "manifest: the flake's nesting wins" (manifest { config."security.nesting" = false; }) {
      "security.nesting" = false;
    }
    ++ expect "manifest: privileged containers get no nesting" (manifest { config."security.privileged" = true; }) {
      "security.privileged" = true;
    };

  # --- forwardPorts: proxy devices in the manifest ---
  forwarded =
    forwardPorts: incus:
    let
      m = (inxLib.mkContainer { toplevel = pkgs.writeTextDir "init" ""; inherit forwardPorts incus; }).inxManifest;
    in
    tried (builtins.deepSeq m m) m.incus.devices or { };
  forwardChecks =
    expect "forwardPorts: tcp from all addresses to the same port by default" (forwarded [ { hostPort = 8080; } ] { }) {
      forward-tcp-8080 = {
        type = "proxy";
        listen = "tcp:0.0.0.0:8080";
        connect = "tcp:127.0.0.1:8080";
      };
    }
    ++ expect "forwardPorts: udp, another container port, loopback only, beside a declared device"
      (forwarded [ { protocol = "udp"; hostPort = 5353; containerPort = 53; listenAddress = "127.0.0.1"; } ] {
        devices.data = { type = "disk"; source = "/srv"; path = "/srv"; };
      })
      {
        data = { type = "disk"; source = "/srv"; path = "/srv"; };
        forward-udp-5353 = {
          type = "proxy";
          listen = "udp:127.0.0.1:5353";
          connect = "udp:127.0.0.1:53";
        };
      }
    ++ expect "forwardPorts: an IPv6 address goes in brackets"
      (forwarded [ { hostPort = 80; listenAddress = "::1"; } ] { }).forward-tcp-80.listen or null
      "tcp:[::1]:80"
    ++ expect "forwardPorts: none leaves the devices as declared" (forwarded [ ] { }) { }
    ++ check "forwardPorts: a port out of range fails" (forwarded [ { hostPort = 70000; } ] { } == null)
    ++ check "forwardPorts: a port given as a string fails" (forwarded [ { hostPort = "80"; } ] { } == null)
    ++ check "forwardPorts: an unknown protocol fails" (forwarded [ { hostPort = 80; protocol = "sctp"; } ] { } == null)
    ++ check "forwardPorts: an unknown attribute fails" (forwarded [ { hostport = 80; } ] { } == null)
    ++ check "forwardPorts: a missing hostPort fails" (forwarded [ { containerPort = 80; } ] { } == null)
    ++ check "forwardPorts: the same protocol and host port twice fails" (
      forwarded [ { hostPort = 80; } { hostPort = 80; containerPort = 8080; } ] { } == null
    )
    ++ check "forwardPorts: a declared device of the same name fails" (
      forwarded [ { hostPort = 80; } ] { devices.forward-tcp-80 = { type = "none"; }; } == null
    )
    ++ check "forwardPorts: an entry that is not a set fails" (forwarded [ 80 ] { } == null);

  # --- where a container runs: incus.remote, incus.target, ssh ---
  placed =
    args:
    let
      m = (inxLib.mkContainer ({ toplevel = pkgs.writeTextDir "init" ""; } // args)).inxManifest;
    in
    tried (builtins.deepSeq m m) m;
  hostChecks' =
    expect "host: a local container's manifest has no host" ((placed { }) ? host) false
    ++ expect "host: remote, target and ssh go to host, not to the instance"
      (
        let
          m = placed {
            incus = {
              remote = "cluster";
              target = "node-2";
              config."limits.cpu" = 2;
            };
            ssh = {
              user = "deploy";
              port = 2222;
            };
          };
        in
        {
          inherit (m) host;
          incus = m.incus.config;
        }
      )
      {
        host = {
          remote = "cluster";
          target = "node-2";
          ssh = {
            user = "deploy";
            port = 2222;
          };
        };
        incus = {
          "limits.cpu" = 2;
          "security.nesting" = true;
        };
      }
    ++ expect "host: ssh alone (a host Incus cannot name)" (placed { ssh.host = "10.0.0.5"; }).host {
      ssh.host = "10.0.0.5";
    }
    ++ check "host: an unknown ssh attribute fails" (placed { ssh.hostname = "x"; } == null)
    ++ check "host: a port out of range fails" (placed { ssh.port = 0; } == null)
    ++ check "host: a target that could be an option fails" (placed { incus.target = "-x"; } == null)
    ++ check "host: a remote that is not a string fails" (placed { incus.remote = 1; } == null)
    ++ check "host: an ssh host with a space fails" (placed { ssh.host = "a b"; } == null);

  # --- the package: completions only where the build can run the binary ---
  packageFor =
    hostSystem:
    pkgs.callPackage (inx + "/lib/package.nix") {
      stdenv = pkgs.stdenv // {
        hostPlatform = lib.systems.elaborate hostSystem;
      };
    };
  packageChecks =
    check "package: a native build makes completions" (
      lib.hasInfix "inx completions bash" (packageFor system).postInstall
    )
    ++ expect "package: a cross build does not run the binary" (packageFor "aarch64-linux").postInstall "";
in
hostChecks ++ guestChecks ++ imageChecks ++ manifestChecks ++ forwardChecks ++ hostChecks' ++ packageChecks
