# nixos-container's options through inx.lib.mkContainer and inx.lib.fromNixosContainers,
# evaluated with the real nixpkgs lib against the stand-in's typed stubs (and the stub of
# nixos-containers.nix beside them): each accepted option gives the Incus settings
# docs/migration.md says. `failed` is the list of failed checks (empty: all held).
# `refusals.<name>` = { value; message; }: forcing `value` must fail with `message` in Nix's
# error (tests/flake.rs forces each in its own evaluation, since tryEval hides messages).
#
#   nix eval --json --impure --expr \
#     '(import ./tests/nix/nixos-containers.nix { nixpkgs = builtins.getFlake "path:<stand-in>"; inx = ./.; }).failed'
{ nixpkgs, inx }:

let
  inherit (nixpkgs) lib;
  system = "x86_64-linux";
  pkgs = nixpkgs.legacyPackages.${system};
  guest = import (inx + "/lib/modules/guest.nix");
  inxLib = import (inx + "/lib") { guestModule = guest; };
  stub = nixpkgs.outPath + "/nixos/modules/virtualisation/nixos-containers.nix";

  tried = forced: value: let r = builtins.tryEval (builtins.deepSeq forced value); in if r.success then r.value else null;
  check = name: ok: lib.optional (!ok) name;
  expect = name: actual: expected:
    lib.optional (actual != expected) "${name}: got ${builtins.toJSON actual}, want ${builtins.toJSON expected}";

  sys = pkgs.writeTextDir "init" "";
  manifestOf = c: tried c.inxManifest c.inxManifest;
  # The instance settings of a toplevel container with these nixos-container options.
  incus = args: (manifestOf (inxLib.mkContainer ({ path = sys; } // args))).incus or null;
  plain = incus { };
  devices = args: (incus args).devices or { };
  config = args: (incus args).config or { };
  raw = args: (config args)."raw.lxc" or "";

  initCmd = "lxc.init.cmd = /nix/var/nix/profiles/system/sw/bin/sh -c eval\${IFS}\"$INX_INIT\"";

  toplevelChecks =
    expect "path is the toplevel" (manifestOf (inxLib.mkContainer { path = sys; })).toplevel "${sys}"
    ++ expect "bindMounts: writable and read-only disks, shifted, the host path defaulting to the mount point"
      (devices {
        bindMounts."/data" = { hostPath = "/srv/data"; isReadOnly = false; };
        bindMounts."/var/lib/ro" = { };
      })
      {
        bind-data = { type = "disk"; source = "/srv/data"; path = "/data"; shift = true; };
        bind-var-lib-ro = { type = "disk"; source = "/var/lib/ro"; path = "/var/lib/ro"; shift = true; readonly = true; };
      }
    ++ expect "autoStart = true: boot.autostart" (config { autoStart = true; })."boot.autostart" true
    ++ expect "autoStart = false: boot.autostart off (nixos-container's default: not started at boot)"
      (config { autoStart = false; })."boot.autostart" false
    ++ expect "autoStart unset: Incus's own default (no key)" (plain.config ? "boot.autostart") false
    ++ check "ephemeral: the init wrapper makes a tmpfs root" (
      let r = raw { ephemeral = true; }; in
      lib.hasInfix "mount -t tmpfs -o mode=0755 inx-ephemeral /.inx-ephemeral;" r
      && lib.hasInfix "pivot_root . .inx-old;" r
      && lib.hasInfix "exec /nix/var/nix/profiles/system/init" r
      && lib.hasSuffix initCmd r
    )
    ++ expect "ephemeral = false: no wrapper" (raw { ephemeral = false; }) ""
    ++ check "a flake's own raw.lxc comes first, the wrapper's init.cmd last" (
      lib.hasPrefix "lxc.apparmor.profile = unconfined\n" (raw { ephemeral = true; incus.config."raw.lxc" = "lxc.apparmor.profile = unconfined"; })
    )
    ++ expect "privateNetwork = false: the profiles' network, nothing added" (incus { privateNetwork = false; hostBridge = "br0"; }) plain
    ++ expect "privateNetwork alone: a p2p veth (nixos-container's ve-<name>)" (devices { privateNetwork = true; }).eth0 {
      type = "nic"; nictype = "p2p"; name = "eth0";
    }
    ++ expect "privateNetwork with addresses, no bridge: a routed nic"
      (devices { privateNetwork = true; hostAddress = "10.231.136.1"; localAddress = "10.231.136.2"; localAddress6 = "fc00::2/64"; hostAddress6 = "fc00::1"; localMacAddress = "de:b7:73:01:10:90"; }).eth0
      {
        type = "nic"; nictype = "routed"; name = "eth0"; hwaddr = "de:b7:73:01:10:90";
        "ipv4.address" = "10.231.136.2"; "ipv4.host_address" = "10.231.136.1";
        "ipv6.address" = "fc00::2"; "ipv6.host_address" = "fc00::1";
      }
    ++ (
      let a = { privateNetwork = true; hostBridge = "br0"; hostAddress = "10.0.5.1"; localAddress = "10.0.5.2/24"; }; in
      expect "privateNetwork on hostBridge: a bridged nic" (devices a).eth0 { type = "nic"; nictype = "bridged"; parent = "br0"; name = "eth0"; }
      ++ check "privateNetwork on hostBridge: the addresses set inside, as nixos-container's init does" (
        lib.hasInfix "ip addr add 10.0.5.2/24 dev eth0; ip route add 10.0.5.1 dev eth0; ip route add default via 10.0.5.1;" (raw a)
        && lib.hasSuffix initCmd (raw a)
      )
    )
    ++ expect "tmpfs: LXC mount entries, mode 0755 unless given" (raw { tmpfs = [ "/var" "/tmp:mode=1777" ]; })
      "lxc.mount.entry = tmpfs var tmpfs mode=0755,create=dir 0 0\nlxc.mount.entry = tmpfs tmp tmpfs mode=1777,create=dir 0 0"
    ++ expect "allowedDevices: unix-char devices" (devices { allowedDevices = [ { node = "/dev/fuse"; modifier = "rwm"; } ]; }) {
      dev-dev-fuse = { type = "unix-char"; source = "/dev/fuse"; path = "/dev/fuse"; };
    }
    ++ expect "macvlans and interfaces: macvlan and physical nics" (devices { macvlans = [ "eth1" ]; interfaces = [ "eth2" ]; }) {
      mv-eth1 = { type = "nic"; nictype = "macvlan"; parent = "eth1"; name = "mv-eth1"; };
      eth2 = { type = "nic"; nictype = "physical"; parent = "eth2"; name = "eth2"; };
    }
    ++ expect "privateUsers = \"pick\": an isolated id range" (config { privateUsers = "pick"; })."security.idmap.isolated" true
    ++ expect "privateUsers = N: an isolated range from N"
      (lib.filterAttrs (n: _: lib.hasPrefix "security.idmap" n) (config { privateUsers = 65536; }))
      { "security.idmap.isolated" = true; "security.idmap.base" = 65536; }
    ++ expect "what Incus already gives changes nothing (enableTun, additionalCapabilities, copyResolvConf, restartIfChanged, the defaults)"
      (incus {
        enableTun = true;
        additionalCapabilities = [ "CAP_NET_ADMIN" ];
        copyResolvConf = false;
        restartIfChanged = false;
        timeoutStartSec = "1min";
        privateUsers = "no";
        extraFlags = [ ];
        extraVeths = { };
        networkNamespace = null;
      })
      plain
    ++ expect "forwardPorts beside bindMounts" (builtins.attrNames (devices { forwardPorts = [ { hostPort = 80; } ]; bindMounts."/a" = { }; })) [ "bind-a" "forward-tcp-80" ];

  # --- the nixpkgs path: `config` is a module beside `modules` ---
  evaluated = args: let c = inxLib.mkContainer ({ inherit nixpkgs system; } // args); in tried c.inxManifest.toplevel c.config;
  withConfig = evaluated {
    modules = [ { system.stateVersion = "25.11"; } ];
    config = { name, ... }: { networking.hostName = name; };
    specialArgs.name = "from-special-args";
  };
  nixpkgsChecks =
    check "config: evaluates with modules and specialArgs" (withConfig != null)
    ++ expect "config: the module's setting (through specialArgs)" withConfig.networking.hostName "from-special-args"
    ++ expect "config: inx's guest module is there" withConfig.boot.isContainer true
    ++ expect "a static private address turns DHCP off, as nixos-container does"
      (evaluated { privateNetwork = true; localAddress = "10.1.1.2"; }).networking.useDHCP false
    ++ expect "DHCP stays on for the profiles' network" (evaluated { }).networking.useDHCP true;

  # --- fromNixosContainers ---
  written = inxLib.fromNixosContainers {
    inherit nixpkgs system;
    containers = {
      web = { config = { networking.hostName = "web"; }; autoStart = true; bindMounts."/srv" = { hostPath = "/srv/web"; }; };
      built = { path = sys; ephemeral = true; };
    };
  };
  host = nixpkgs.lib.nixosSystem {
    inherit system;
    modules = [
      stub
      {
        containers.db = lib.mkIf true {
          config = lib.mkMerge [ { networking.hostName = "db"; } ];
          autoStart = true;
          privateNetwork = true;
          localAddress = "10.9.0.2";
          hostAddress = "10.9.0.1";
        };
        containers.old.path = sys;
      }
    ];
  };
  fromHost = inxLib.fromNixosContainers (host // { inherit nixpkgs; });
  fromChecks =
    expect "fromNixosContainers: every container, as written" (builtins.attrNames written) [ "built" "web" ]
    ++ expect "fromNixosContainers: `config` evaluated with the guest module" {
      name = (tried written.web.config written.web.config).networking.hostName or null;
      container = written.web.config.boot.isContainer or null;
    } { name = "web"; container = true; }
    ++ expect "fromNixosContainers: the options as mkContainer takes them" {
      auto = (manifestOf written.web).incus.config."boot.autostart" or null;
      bind = (manifestOf written.web).incus.devices.bind-srv.source or null;
      built = (manifestOf written.built).toplevel or null;
    } { auto = true; bind = "/srv/web"; built = "${sys}"; }
    ++ expect "fromNixosContainers on a host configuration: the modules from its definitions (mkIf, mkMerge), the options with nixpkgs' defaults"
      {
        names = builtins.attrNames fromHost;
        name = (tried fromHost.db.config fromHost.db.config).networking.hostName or null;
        dhcp = fromHost.db.config.networking.useDHCP or null;
        config = (manifestOf fromHost.db).incus.config or null;
        nic = (manifestOf fromHost.db).incus.devices.eth0.nictype or null;
        old = (manifestOf fromHost.old).incus.config or null;
      }
      {
        names = [ "db" "old" ];
        name = "db";
        dhcp = false;
        config = { "boot.autostart" = true; "security.nesting" = true; };
        nic = "routed";
        old = { "boot.autostart" = false; "security.nesting" = true; };
      };

  refusal = value: message: { inherit value message; };
  mk = args: (inxLib.mkContainer ({ path = sys; } // args)).inxManifest;
in
{
  failed = toplevelChecks ++ nixpkgsChecks ++ fromChecks;
  refusals = {
    extraFlags = refusal (mk { extraFlags = [ "--drop-capability=CAP_SYS_CHROOT" ]; }) "extraFlags has no faithful Incus mapping: extraFlags are systemd-nspawn flags; Incus says the same with incus.config";
    networkNamespace = refusal (mk { networkNamespace = "/run/netns/x"; }) "networkNamespace has no faithful Incus mapping: Incus cannot join an existing network namespace";
    extraVeths = refusal (mk { extraVeths.ve1 = { }; }) "extraVeths has no faithful Incus mapping: extra veth pairs are Incus nic devices";
    flake = refusal (mk { flake = "github:me/box"; }) "flake has no faithful Incus mapping: a container from a flake is what inx does";
    identity = refusal (mk { privateUsers = "identity"; }) "is a privileged container on Incus: incus.config.\"security.privileged\" = true";
    timeoutStartSec = refusal (mk { timeoutStartSec = "5min"; }) "timeoutStartSec has no Incus counterpart";
    configOnToplevel = refusal (mk { config = { }; }) "`config` is a NixOS module and needs `nixpkgs` and `system`";
    specialArgsOnToplevel = refusal (mk { specialArgs.x = 1; }) "specialArgs are for evaluating NixOS modules";
    pathAndToplevel = refusal (mk { toplevel = sys; }) "give `toplevel` or nixos-container's `path`, not both";
    relativeBind = refusal (mk { bindMounts."data" = { }; }) "bindMounts.\"data\": the mount point must be an absolute path";
    bindTypo = refusal (mk { bindMounts."/d" = { readOnly = true; }; }) "unknown attribute(s) readOnly";
    deviceClash = refusal (mk { bindMounts."/data" = { }; incus.devices.bind-data = { type = "none"; }; }) "incus.devices.bind-data is also the name of a device made from nixos-container options";
    eth0Clash = refusal (mk { privateNetwork = true; incus.devices.eth0 = { type = "none"; }; }) "privateNetwork makes the nic eth0, and incus.devices.eth0 is declared too";
    wrongType = refusal (mk { autoStart = "yes"; }) "autoStart must be true or false";
    badMac = refusal (mk { privateNetwork = true; localMacAddress = "de:b7"; }) "localMacAddress must be null or a MAC address";
    addressNotString = refusal (mk { privateNetwork = true; localAddress = 10; }) "localAddress must be null or an address string";
    ephemeralFromImage = refusal (mk { ephemeral = true; fromImage = true; }) "a container made from its image (fromImage) has neither at its first start";
    bridgeFromImage = refusal (mk { privateNetwork = true; hostBridge = "br0"; fromImage = true; }) "a container made from its image (fromImage) has neither at its first start";
    deviceClass = refusal (mk { allowedDevices = [ { node = "char-drm"; modifier = "rw"; } ]; }) "allowedDevices node \"char-drm\" is not a path under /dev";
    fromNothing = refusal (inxLib.fromNixosContainers { containers.x = { autoStart = true; }; }).x.inxManifest "containers.x has neither `config` nor `path`";
  };
}
