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
  preseed = h.virtualisation.incus.preseed;
  roots = h.systemd.services.inx-roots;

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
  noPreseed = outcome (hostOn ++ [ { virtualisation.incus.preseed = lib.mkForce null; } ]);
  socket = outcome (hostOn ++ [ { virtualisation.incus.socketActivation = true; } ]);
  hardened = outcome (hostOn ++ [ { nix.settings.allowed-users = [ "@users" ]; } ]);
  gcOn = outcome (hostOn ++ [ { nix.gc.automatic = true; } ]);
  twice = outcome (hostOn ++ [ host ]);
  disabled = nixos [
    host
    { disabledModules = [ host ]; }
  ];

  hostChecks =
    check "host: evaluates with services.inx.enable" (h != null)
    # The same lines the end-to-end tests apply with systemd-tmpfiles (tests/e2e/users.rs).
    ++ expect "host: inx's folders shared with incus-admin" h.systemd.tmpfiles.rules [
      "d /nix/var/nix/profiles/inx 2770 root incus-admin -"
      "Z /nix/var/nix/profiles/inx - root incus-admin -"
      "d /nix/var/nix/profiles/inx/.builds 2770 root incus-admin -"
      "f /nix/var/nix/profiles/inx/.lock 0660 root incus-admin -"
      "d /nix/var/nix/gcroots/inx 2770 root incus-admin -"
      "Z /nix/var/nix/gcroots/inx - root incus-admin -"
      "f /nix/var/nix/gcroots/inx/.lock 0660 root incus-admin -"
    ]
    ++ expect "host: default preseed networks" preseed.networks [
      {
        name = "incusbr0";
        type = "bridge";
        config = {
          "ipv4.address" = "10.0.100.1/24";
          "ipv4.nat" = "true";
        };
      }
    ]
    ++ expect "host: default storage pool" preseed.storage_pools [
      {
        name = "default";
        driver = "dir";
      }
    ]
    ++ expect "host: default profile" preseed.profiles [
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
    ]
    ++ expect "host: the bridge is trusted" h.networking.firewall.trustedInterfaces [ "incusbr0" ]
    ++ expect "host: nftables on" h.networking.nftables.enable true
    ++ check "host: the preseed service runs" (h.systemd.services ? incus-preseed)
    ++ expect "host: a preseed of one's own replaces only the parts it names" {
      networks = map (n: n.name) custom.virtualisation.incus.preseed.networks;
      pools = map (p: p.name) custom.virtualisation.incus.preseed.storage_pools;
      trusted = custom.networking.firewall.trustedInterfaces;
    } {
      networks = [ "lab0" ];
      pools = [ "default" ];
      trusted = [ "lab0" ];
    }
    ++ expect "host: mkForce null turns the preseed off" {
      preseed = noPreseed.virtualisation.incus.preseed;
      trusted = noPreseed.networking.firewall.trustedInterfaces;
    } {
      preseed = null;
      trusted = [ ];
    }
    ++ expect "host: the watcher starts and stops with incus, never starts it" {
      inherit (roots) wantedBy wants partOf;
      after = lib.elem "incus.service" roots.after;
    } {
      wantedBy = [ "incus.service" ];
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
      off != null && !off.virtualisation.incus.enable && off.virtualisation.incus.preseed == null
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
