# nixos-container's options (`containers.<name>.*`, declared in nixpkgs'
# nixos/modules/virtualisation/nixos-containers.nix), taken by `mkContainer` with the same names,
# types and defaults, and turned into what they mean on Incus. docs/migration.md is the table
# of what each becomes; the evaluation tests (tests/nix/nixos-containers.nix) hold this file to
# it.
let
  where = "inx.lib.mkContainer";
  join = builtins.concatStringsSep;
  isStrList = l: builtins.isList l && builtins.all builtins.isString l;
  optional = c: x: if c then [ x ] else [ ];
  # Incus device names may not hold "/": "/var/lib/data" -> "var-lib-data".
  deviceName = prefix: path:
    let
      parts = builtins.filter (s: builtins.isString s && s != "") (builtins.split "/" path);
    in
    "${prefix}-${if parts == [ ] then "root" else join "-" parts}";
  noSlashPrefix = p: if builtins.substring 0 1 p == "/" then builtins.substring 1 (builtins.stringLength p) p else p;
  addressOf = a: builtins.head (builtins.split "/" a);

  # Every nixos-container option mkContainer knows, with nixpkgs' default. `path` is the
  # toplevel; `config` a NixOS module; the rest are read below.
  defaults = {
    additionalCapabilities = [ ];
    allowedDevices = [ ];
    autoStart = false;
    bindMounts = { };
    copyResolvConf = true;
    enableTun = false;
    ephemeral = false;
    extraFlags = [ ];
    extraVeths = { };
    flake = null;
    hostAddress = null;
    hostAddress6 = null;
    hostBridge = null;
    interfaces = [ ];
    localAddress = null;
    localAddress6 = null;
    localMacAddress = null;
    macvlans = [ ];
    networkNamespace = null;
    privateNetwork = false;
    privateUsers = "no";
    restartIfChanged = true;
    timeoutStartSec = "1min";
    tmpfs = [ ];
  };
  names = builtins.attrNames defaults;

  # Options with no faithful Incus mapping: set to anything but their default, they fail with
  # the Incus way to say it.
  refused = {
    extraFlags = "extraFlags are systemd-nspawn flags; Incus says the same with incus.config (limits.*, security.*, raw.lxc) and incus.devices";
    networkNamespace = "Incus cannot join an existing network namespace; give the container a nic device in incus.devices (nictype bridged, macvlan, physical, routed or p2p) or use privateNetwork";
    extraVeths = "extra veth pairs are Incus nic devices: incus.devices.<name> = { type = \"nic\"; nictype = \"p2p\"; } (or nictype = \"bridged\"; parent = <bridge>)";
    flake = "a container from a flake is what inx does: declare it with inx.lib.mkContainer in that flake's inxContainers";
  };

  checkType = name: ok: what: v: if ok then v else throw "${where}: ${name} must be ${what} (as nixos-container declares it)";

  # The init wrapper, nixos-container's containerInit on Incus: a few shell lines that run as the
  # container's PID 1 before the system's own init. LXC splits lxc.init.cmd at spaces with no
  # quoting, so the script travels in an environment variable and the command has no space.
  # Runs with the container's own system's tools (sw/bin has sh, ip, mount, pivot_root).
  initCmd = "/nix/var/nix/profiles/system/sw/bin/sh -c eval\${IFS}\"$INX_INIT\"";
  # Ephemeral: a tmpfs becomes the root. Every mount the container has (Incus's /dev, /proc,
  # /sys, the store, the profiles, bind mounts) is bound again into it, then pivot_root; the
  # rootfs on the storage pool is detached and never written. What the container writes lives
  # in memory and is gone when it stops, as with systemd-nspawn --ephemeral.
  ephemeralScript = join " " [
    "mount --make-rprivate /;"
    "mkdir -p /.inx-ephemeral;"
    "mount -t tmpfs -o mode=0755 inx-ephemeral /.inx-ephemeral;"
    "cd /.inx-ephemeral;"
    "bound=;"
    "while read -r _ _ _ _ m _; do"
    "case $m in /|/.inx-ephemeral|/.inx-ephemeral/*) continue;; esac;"
    "skip=; for d in $bound; do case $m in $d/*) skip=1;; esac; done;"
    "[ -n \"$skip\" ] && continue;"
    "if [ -d $m ]; then mkdir -p .$m; else mkdir -p .\${m%/*}; touch .$m; fi;"
    "mount --rbind $m .$m;"
    "bound=\"$bound $m\";"
    "done < /proc/self/mountinfo;"
    "mkdir .inx-old;"
    "pivot_root . .inx-old;"
    "umount -l /.inx-old;"
    "rmdir /.inx-old;"
  ];
  # On a bridge, nixos-container sets the addresses from inside (its containerInit); so does this.
  networkScript = c: join " " (
    [ "ip link set eth0 up;" ]
    ++ optional (c.localAddress != null) "ip addr add ${c.localAddress} dev eth0;"
    ++ optional (c.localAddress6 != null) "ip -6 addr add ${c.localAddress6} dev eth0;"
    ++ optional (c.hostAddress != null) "ip route add ${c.hostAddress} dev eth0; ip route add default via ${c.hostAddress};"
    ++ optional (c.hostAddress6 != null) "ip -6 route add ${c.hostAddress6} dev eth0; ip -6 route add default via ${c.hostAddress6};"
  );

  bindDevice = mountPoint: b:
    let
      at = "${where}: bindMounts.\"${mountPoint}\"";
      known = [ "hostPath" "isReadOnly" "mountPoint" ];
      unknown = builtins.filter (n: !(builtins.elem n known)) (builtins.attrNames b);
      point = b.mountPoint or mountPoint;
      source = if (b.hostPath or null) == null then point else b.hostPath;
      readOnly = b.isReadOnly or true;
    in
    if !(builtins.isAttrs b) then throw "${at} must be an attribute set { hostPath ? null; isReadOnly ? true; }"
    else if unknown != [ ] then throw "${at}: unknown attribute(s) ${join ", " unknown} (known: ${join ", " known})"
    else if !(builtins.isString point) || builtins.substring 0 1 point != "/" then throw "${at}: the mount point must be an absolute path"
    else if !(builtins.isString source) || builtins.substring 0 1 source != "/" then throw "${at}: hostPath must be an absolute path on the host"
    else if !(builtins.isBool readOnly) then throw "${at}: isReadOnly must be true or false"
    else {
      name = deviceName "bind" point;
      # shift=true: the container's root reads and writes the host's files as the host's root
      # does, which is what nixos-container's default (privateUsers = "no", no user namespace)
      # gives; a file written inside is owned by root (uid 0) on the host.
      value = {
        type = "disk";
        inherit source;
        path = point;
        shift = true;
      } // (if readOnly then { readonly = true; } else { });
    };

  deviceOf = d:
    if !(builtins.isAttrs d) || !(builtins.isString (d.node or null)) then
      throw "${where}: each allowedDevices entry is { node = \"/dev/...\"; modifier = \"rwm\"; }"
    else if builtins.substring 0 5 d.node != "/dev/" then
      throw "${where}: allowedDevices node \"${d.node}\" is not a path under /dev: device classes (such as char-drm) have no Incus counterpart; name each node (a unix-char device each)"
    else {
      name = deviceName "dev" d.node;
      # Incus passes a character device node through with its cgroup access; the modifier has
      # no Incus counterpart (the node is readable and writable).
      value = {
        type = "unix-char";
        source = d.node;
        path = d.node;
      };
    };

  # The nic that privateNetwork = true gives, `eth0` as nixos-container names it.
  nicOf = c:
    let
      mac = if c.localMacAddress != null then { hwaddr = c.localMacAddress; } else { };
    in
    if c.hostBridge != null then
      # On the host's bridge; the addresses are set from inside, as nixos-container does.
      { type = "nic"; nictype = "bridged"; parent = c.hostBridge; name = "eth0"; } // mac
    else if c.localAddress != null || c.localAddress6 != null then
      # A veth with the addresses on both ends and routes between them: Incus's routed nic
      # (it sets the container's address and the default route via the host's side itself).
      { type = "nic"; nictype = "routed"; name = "eth0"; }
      // (if c.localAddress != null then { "ipv4.address" = addressOf c.localAddress; } else { })
      // (if c.hostAddress != null then { "ipv4.host_address" = addressOf c.hostAddress; } else { })
      // (if c.localAddress6 != null then { "ipv6.address" = addressOf c.localAddress6; } else { })
      // (if c.hostAddress6 != null then { "ipv6.host_address" = addressOf c.hostAddress6; } else { })
      // mac
    else
      # A bare veth pair (nixos-container's ve-<name>): Incus's p2p nic.
      { type = "nic"; nictype = "p2p"; name = "eth0"; } // mac;
in
{
  inherit names;

  /* Splits mkContainer's arguments: nixos-container's options become `incus` settings and
     modules; `path` becomes `toplevel`; `config` joins `modules`. Returns the arguments
     mkContainer's two paths take. */
  translate = args:
    let
      given = builtins.filter (n: args ? ${n}) names;
      c = defaults // builtins.intersectAttrs defaults args;
      onToplevel = args ? toplevel || args ? path;
      incus = args.incus or { };
      declared = incus.devices or { };
      config = incus.config or { };

      bad = builtins.filter (n: c.${n} != defaults.${n}) (builtins.attrNames refused);

      _types = builtins.all (x: x) [
        (checkType "autoStart" (builtins.isBool c.autoStart) "true or false" true)
        (checkType "ephemeral" (builtins.isBool c.ephemeral) "true or false" true)
        (checkType "privateNetwork" (builtins.isBool c.privateNetwork) "true or false" true)
        (checkType "enableTun" (builtins.isBool c.enableTun) "true or false" true)
        (checkType "restartIfChanged" (builtins.isBool c.restartIfChanged) "true or false" true)
        (checkType "copyResolvConf" (builtins.isBool c.copyResolvConf) "true or false" true)
        (checkType "bindMounts" (builtins.isAttrs c.bindMounts) "an attribute set keyed by mount point" true)
        (checkType "allowedDevices" (builtins.isList c.allowedDevices) "a list of { node; modifier; }" true)
        (checkType "additionalCapabilities" (isStrList c.additionalCapabilities) "a list of strings" true)
        (checkType "tmpfs" (isStrList c.tmpfs) "a list of strings" true)
        (checkType "macvlans" (isStrList c.macvlans) "a list of host interface names" true)
        (checkType "interfaces" (isStrList c.interfaces) "a list of host interface names" true)
        (checkType "timeoutStartSec" (builtins.isString c.timeoutStartSec) "a string such as \"1min\"" true)
        (builtins.all (n: checkType n (c.${n} == null || builtins.isString c.${n}) "null or an address string" true)
          [ "hostBridge" "hostAddress" "hostAddress6" "localAddress" "localAddress6" ])
        (checkType "localMacAddress"
          (c.localMacAddress == null || (builtins.isString c.localMacAddress && builtins.match "([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}" c.localMacAddress != null))
          "null or a MAC address such as \"de:b7:73:01:10:90\"" true)
        (checkType "privateUsers" (builtins.isInt c.privateUsers || builtins.elem c.privateUsers [ "no" "identity" "pick" ]) "an integer or one of \"no\", \"identity\", \"pick\"" true)
      ];

      binds = builtins.attrValues (builtins.mapAttrs bindDevice c.bindMounts);
      nics =
        optional c.privateNetwork { name = "eth0"; value = nicOf c; }
        ++ map (i: { name = "mv-${i}"; value = { type = "nic"; nictype = "macvlan"; parent = i; name = "mv-${i}"; }; }) c.macvlans
        ++ map (i: { name = i; value = { type = "nic"; nictype = "physical"; parent = i; name = i; }; }) c.interfaces;
      added = binds ++ map deviceOf c.allowedDevices ++ nics;
      addedNames = map (d: d.name) added;
      twice = builtins.filter (n: builtins.length (builtins.filter (m: m == n) addedNames) > 1) addedNames;
      # privateNetwork's eth0 beside a declared one has its own message below.
      clash = builtins.filter (n: declared ? ${n} && !(n == "eth0" && c.privateNetwork)) addedNames;

      # nspawn's --tmpfs=PATH[:OPTIONS], mode 0755 by default: an LXC mount entry.
      tmpfsLine = t:
        let
          parts = builtins.match "([^:]+)(:(.*))?" t;
          path = builtins.elemAt parts 0;
          opts = builtins.elemAt parts 2;
        in
        if parts == null || builtins.substring 0 1 path != "/" then throw "${where}: tmpfs entry \"${t}\" must be an absolute path, optionally :options"
        else "lxc.mount.entry = tmpfs ${noSlashPrefix path} tmpfs ${if opts == null then "mode=0755" else opts},create=dir 0 0";

      wrapped = c.ephemeral || (c.privateNetwork && c.hostBridge != null);
      initScript = join " " (
        [ "set -e; PATH=/nix/var/nix/profiles/system/sw/bin;" ]
        ++ optional (c.privateNetwork && c.hostBridge != null) (networkScript c)
        ++ optional c.ephemeral ephemeralScript
        ++ [ "unset INX_INIT; exec /nix/var/nix/profiles/system/init" ]
      );
      rawLines =
        map tmpfsLine c.tmpfs
        ++ optional wrapped "lxc.environment = INX_INIT=${initScript}"
        ++ optional wrapped "lxc.init.cmd = ${initCmd}";
      raw = join "\n" ((optional (config ? "raw.lxc") config."raw.lxc") ++ rawLines);

      idmap =
        if c.privateUsers == "pick" then { "security.idmap.isolated" = true; }
        else if builtins.isInt c.privateUsers then { "security.idmap.isolated" = true; "security.idmap.base" = c.privateUsers; }
        else { };

      newConfig =
        (if args ? autoStart then { "boot.autostart" = c.autoStart; } else { })
        // idmap
        // config
        // (if rawLines == [ ] then { } else { "raw.lxc" = raw; });

      incus' = incus
        // (if added == [ ] then { } else { devices = builtins.listToAttrs added // declared; })
        // (if newConfig == { } then { } else { config = newConfig; });

      extraModules =
        optional (args ? config) args.config
        # nixos-container turns DHCP off in every container; inx keeps it for the profile's nic,
        # and turns it off where the address is static.
        ++ optional (c.privateNetwork && (c.localAddress != null || c.localAddress6 != null))
          ({ lib, ... }: { networking.useDHCP = lib.mkDefault false; });

      rest = builtins.removeAttrs args (names ++ [ "config" "path" ] ++ optional onToplevel "specialArgs");
    in
    if given == [ ] && !(args ? config) && !(args ? path) then args
    else if args ? path && args ? toplevel then throw "${where}: give `toplevel` or nixos-container's `path`, not both"
    else if onToplevel && args ? config then throw "${where}: `config` is a NixOS module and needs `nixpkgs` and `system` to evaluate; with `toplevel`/`path` the system is already built"
    else if onToplevel && (args.specialArgs or { }) != { } then throw "${where}: specialArgs are for evaluating NixOS modules; with `toplevel`/`path` the system is already built"
    else if bad != [ ] then throw "${where}: ${builtins.head bad} has no faithful Incus mapping: ${refused.${builtins.head bad}}"
    else if c.privateUsers == "identity" then throw "${where}: privateUsers = \"identity\" (the host's own user ids) is a privileged container on Incus: incus.config.\"security.privileged\" = true, if you mean it"
    else if c.timeoutStartSec != defaults.timeoutStartSec then throw "${where}: timeoutStartSec has no Incus counterpart (Incus does not time a container's start); leave it at \"1min\""
    else if !_types then throw "unreachable"
    else if twice != [ ] then throw "${where}: two bindMounts/allowedDevices/macvlans/interfaces entries make the device ${builtins.head twice}"
    else if clash != [ ] then throw "${where}: incus.devices.${builtins.head clash} is also the name of a device made from nixos-container options"
    else if (args.fromImage or false) && (c.ephemeral || (c.privateNetwork && c.hostBridge != null)) then throw "${where}: ephemeral, and privateNetwork with hostBridge, start the container through a wrapper of the system's own (its profile, on the shared store); a container made from its image (fromImage) has neither at its first start: drop fromImage, or set the address in the guest's networking options"
    else if c.privateNetwork && (declared ? eth0) then throw "${where}: privateNetwork makes the nic eth0, and incus.devices.eth0 is declared too: keep one"
    else rest
      // { incus = incus'; }
      // (if args ? path then { toplevel = args.path; } else { })
      // (if extraModules == [ ] || onToplevel then { } else { modules = (args.modules or [ ]) ++ extraModules; });
}
