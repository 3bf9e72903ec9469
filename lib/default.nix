# inx's flake library. Takes only what it needs and never forces nixpkgs itself: on the
# `toplevel` path a flake with no nixpkgs at all evaluates.
{ guestModule }:

let
  imagesLib = import ./images.nix { imageModule = ./modules/image.nix; };
  nixosContainers = import ./nixos-containers.nix;

  # The schema of `inxManifest`; src/manifest.rs reads the same number.
  schemaVersion = 1;

  knownIncusAttrs = [ "config" "devices" "profiles" "remote" "target" ];

  checkIncus = incus:
    let unknown = builtins.filter (n: !(builtins.elem n knownIncusAttrs)) (builtins.attrNames incus);
    in
    if unknown == [ ] then incus
    else throw "inx.lib.mkContainer: unknown attribute(s) in incus: ${builtins.concatStringsSep ", " unknown} (known: ${builtins.concatStringsSep ", " knownIncusAttrs})";

  # Unprivileged containers get `security.nesting` unless the flake sets it: with it, the
  # distrobuilder generator leaves systemd's service sandboxing on instead of dropping it (as
  # nixpkgs' Incus tests check), and newer systemd units need it (canonical/lxd#13631).
  # Privileged containers do not: nesting makes them escapable.
  withDefaults = incus:
    let
      config = incus.config or { };
      privileged = builtins.elem (toString (config."security.privileged" or false)) [ "1" "true" ];
    in
    incus // { config = (if privileged then { } else { "security.nesting" = true; }) // config; };

  # `forwardPorts`, shaped as NixOS containers declare them (containers.<name>.forwardPorts in
  # nixos-containers.nix: protocol, hostPort, containerPort) plus `listenAddress`: each becomes
  # an Incus proxy device `forward-<protocol>-<hostPort>` from the host's address and port to the
  # container's loopback. The container's firewall never blocks loopback.
  forwardKnown = [ "protocol" "hostPort" "containerPort" "listenAddress" ];
  isPort = p: builtins.isInt p && p >= 1 && p <= 65535;
  forwardDevice = f:
    if !(builtins.isAttrs f) then throw "inx.lib.mkContainer: each forwardPorts entry is an attribute set such as { hostPort = 8080; containerPort = 80; }"
    else let
      where = "inx.lib.mkContainer: forwardPorts entry ${builtins.toJSON f}";
      unknown = builtins.filter (n: !(builtins.elem n forwardKnown)) (builtins.attrNames f);
      protocol = f.protocol or "tcp";
      hostPort = f.hostPort or (throw "${where}: hostPort is missing");
      containerPort = if (f.containerPort or null) == null then hostPort else f.containerPort;
      address = f.listenAddress or "0.0.0.0";
      # Incus reads `proto:address:port`; an IPv6 address goes in brackets.
      listenOn = if builtins.match ".*:.*" address != null then "[${address}]" else address;
    in
    if unknown != [ ] then throw "${where}: unknown attribute(s) ${builtins.concatStringsSep ", " unknown} (known: ${builtins.concatStringsSep ", " forwardKnown})"
    else if !(builtins.elem protocol [ "tcp" "udp" ]) then throw "${where}: protocol must be \"tcp\" or \"udp\""
    else if !(isPort hostPort) || !(isPort containerPort) then throw "${where}: ports are integers from 1 to 65535"
    else if !(builtins.isString address) || address == "" then throw "${where}: listenAddress must be an address such as \"127.0.0.1\""
    else {
      name = "forward-${protocol}-${toString hostPort}";
      value = {
        type = "proxy";
        listen = "${protocol}:${listenOn}:${toString hostPort}";
        connect = "${protocol}:127.0.0.1:${toString containerPort}";
      };
    };

  # `incus` with the forwards' devices added; a forward may not take a declared device's name,
  # and two forwards may not share a protocol and host port.
  withForwards = incus: forwardPorts:
    let
      devices = map forwardDevice forwardPorts;
      names = map (d: d.name) devices;
      declared = incus.devices or { };
      clash = builtins.filter (n: declared ? ${n}) names;
      twice = builtins.filter (n: builtins.length (builtins.filter (m: m == n) names) > 1) names;
    in
    if !(builtins.isList forwardPorts) then throw "inx.lib.mkContainer: forwardPorts is a list of { hostPort; containerPort ? hostPort; protocol ? \"tcp\"; listenAddress ? \"0.0.0.0\"; }"
    else if twice != [ ] then throw "inx.lib.mkContainer: forwardPorts has ${builtins.head twice} twice (one forward per protocol and host port)"
    else if clash != [ ] then throw "inx.lib.mkContainer: incus.devices.${builtins.head clash} is also the name of a forwardPorts device"
    else if forwardPorts == [ ] then incus
    else incus // { devices = declared // builtins.listToAttrs devices; };

  # Where the container runs and how inx reaches that host's store: `incus.remote` (a remote
  # the Incus client knows), `incus.target` (a cluster member) and `ssh = { user; host; port; }`
  # (for `nix copy --to ssh://` and the host profile; the host defaults to the address Incus has
  # for the remote or member). Written to the manifest as `host`, only when something is set,
  # so a local container's manifest reads as before. Names are checked again by the CLI.
  sshKnown = [ "user" "host" "port" ];
  isName = s: builtins.isString s && builtins.match "[A-Za-z0-9][A-Za-z0-9._-]*" s != null;
  hostOf = incus: ssh:
    let
      where = "inx.lib.mkContainer";
      unknown = builtins.filter (n: !(builtins.elem n sshKnown)) (builtins.attrNames ssh);
      remote = incus.remote or null;
      target = incus.target or null;
      set = builtins.filter (n: (ssh.${n} or null) != null) sshKnown;
    in
    if !(builtins.isAttrs ssh) then throw "${where}: ssh is an attribute set { user ? \"root\"; host ? <from Incus>; port ? 22; }"
    else if unknown != [ ] then throw "${where}: unknown attribute(s) in ssh: ${builtins.concatStringsSep ", " unknown} (known: ${builtins.concatStringsSep ", " sshKnown})"
    else if remote != null && !(isName remote) then throw "${where}: incus.remote must be the name of a remote from `incus remote list`, such as \"cluster\""
    else if target != null && !(isName target) then throw "${where}: incus.target must be the name of a cluster member, such as \"node2\""
    else if (ssh.user or null) != null && !(isName ssh.user) then throw "${where}: ssh.user must be a user name such as \"root\""
    else if (ssh.host or null) != null && !(isName ssh.host) then throw "${where}: ssh.host must be a host name or an IPv4 address"
    else if (ssh.port or null) != null && !(isPort ssh.port) then throw "${where}: ssh.port is an integer from 1 to 65535"
    else if remote == null && target == null && set == [ ] then { }
    else {
      host = (if remote != null then { inherit remote; } else { })
        // (if target != null then { inherit target; } else { })
        // (if set == [ ] then { } else { ssh = builtins.listToAttrs (map (n: { name = n; value = ssh.${n}; }) set); });
    };

  # The small, JSON-able description the CLI reads with one `nix eval`. Only `toplevel`'s
  # paths are forced; nothing else of the system is.
  # `fromImage` is written only when set, so manifests of containers that do not use it read
  # the same as before.
  manifestOf = { toplevel, incus, fromImage, ssh }: {
    inherit schemaVersion;
    toplevel = "${toplevel}";
    drvPath = toplevel.drvPath or null;
    incus = withDefaults (builtins.removeAttrs (checkIncus incus) [ "remote" "target" ]);
  } // (if fromImage then { fromImage = true; } else { }) // hostOf incus ssh;

  # `images` (see images.nix) are the derivations of this system's image files; without them
  # the container has no image outputs and `inx image` says so.
  fromToplevel = { toplevel, incus ? { }, forwardPorts ? [ ], images ? null, fromImage ? false, ssh ? { } }: {
    _type = "inx-container";
    inherit toplevel;
    images = if images == null then null else imagesLib.fromToplevel { inherit toplevel images; };
    inxManifest = manifestOf { inherit toplevel fromImage ssh; incus = withForwards incus forwardPorts; };
  };

  fromNixpkgs = { nixpkgs, system, modules ? [ ], specialArgs ? { }, incus ? { }, forwardPorts ? [ ], fromImage ? false, ssh ? { } }:
    let
      nixos = nixpkgs.lib.nixosSystem {
        inherit specialArgs;
        modules = [ guestModule { nixpkgs.hostPlatform = nixpkgs.lib.mkDefault system; } ] ++ modules;
      };
      toplevel = nixos.config.system.build.toplevel;
    in
    {
      _type = "inx-container";
      inherit toplevel nixos;
      inherit (nixos) config;
      images = imagesLib.fromNixpkgs { inherit nixpkgs system modules specialArgs; };
      inxManifest = manifestOf { inherit toplevel fromImage ssh; incus = withForwards incus forwardPorts; };
    };
in
rec {
  /* Declares a container for `inxContainers.<name>`. Either
       mkContainer { nixpkgs, system, modules, specialArgs ? {}, incus ? {} }
     (evaluates NixOS with inx's guest module) or
       mkContainer { toplevel, incus ? {} }
     (an already-built NixOS system, such as nixosConfigurations.x.config.system.build.toplevel).
     `incus` = { config ? {}; devices ? {}; profiles ? [ "default" ]; remote ? null; target ? null; }
     is added to the instance; `remote` and `target` say where it runs (an Incus remote, a
     cluster member) and `ssh = { user ? "root"; host ? <from Incus>; port ? 22; }` how inx
     reaches that host's store (see hostOf).
     `forwardPorts` = [ { hostPort; containerPort ? hostPort; protocol ? "tcp";
     listenAddress ? "0.0.0.0"; } ] adds a proxy device per entry (see withForwards).
     `fromImage = true` makes `inx up` create the container from its image instead of the shared
     store. On the toplevel path, `images = { container = { metadata; squashfs; }; ... }` gives
     the image files (see images.nix); the nixpkgs path makes them with nixpkgs' modules.
     nixos-container's options (`config`, `path`, `bindMounts`, `autoStart`, `ephemeral`,
     `privateNetwork`, ...) are taken too and become Incus settings (nixos-containers.nix,
     docs/migration.md). */
  mkContainer = args0:
    let args = nixosContainers.translate args0; in
    if args ? toplevel && args ? nixpkgs then
      throw "inx.lib.mkContainer: give either `toplevel` or `nixpkgs` (with `system` and `modules`), not both"
    else if args ? toplevel then fromToplevel args
    else if args ? nixpkgs then fromNixpkgs args
    else throw "inx.lib.mkContainer: give `toplevel` (a built NixOS system) or `nixpkgs`, `system` and `modules`";

  /* `inxContainers` for every container a host declares with nixos-container
     (`containers.<name>`), each through mkContainer with the same options. Takes either
       fromNixosContainers self.nixosConfigurations.myhost
     (a NixOS configuration: each container's `config` modules are read from the host's option
     definitions and evaluated once, with inx's guest module, by the container's `nixpkgs`;
     a container with only `path` keeps that system), or
       fromNixosContainers { containers = { ... }; nixpkgs ? <flake>; system ? "x86_64-linux"; }
     (the `containers` attribute set as written in the host's configuration). */
  fromNixosContainers = arg:
    let
      where = "inx.lib.fromNixosContainers";
      evaluated = builtins.isAttrs arg && arg ? config && builtins.isAttrs arg.config && arg.config ? containers;
      containers =
        if evaluated then arg.config.containers
        else if builtins.isAttrs arg && arg ? containers then arg.containers
        else throw "${where}: give a host's NixOS configuration (nixosConfigurations.<host>) or { containers = { ... }; nixpkgs; system; }";
      # The host's pkgs says its platform on every NixOS; nixpkgs.hostPlatform has no default
      # (reading it unset throws), so it is only the fallback.
      system = arg.system or (if evaluated then arg.pkgs.stdenv.hostPlatform.system or arg.config.nixpkgs.hostPlatform.system else null);

      # Option definitions as written: mkMerge, mkIf and priorities unwrapped.
      plain = v:
        let t = if builtins.isAttrs v then v._type or null else null; in
        if t == "merge" then builtins.concatMap plain v.contents
        else if t == "if" then (if v.condition then plain v.content else [ ])
        else if t == "override" || t == "order" then plain v.content
        else [ v ];
      definitions = if evaluated && arg ? options then builtins.concatMap plain (arg.options.containers.definitions or [ ]) else [ ];
      modulesOf = name: c:
        if !evaluated then (if c ? config then [ c.config ] else [ ])
        else builtins.concatMap
          (d:
            if !(builtins.isAttrs d) || !(d ? ${name}) then [ ]
            else builtins.concatMap
              (cd:
                if builtins.isAttrs cd then (if cd ? config then plain cd.config else [ ])
                else throw "${where}: containers.${name} is written as a function; write it as an attribute set, or pass { containers; nixpkgs; system; }")
              (plain d.${name}))
          definitions;

      # nixos-container's `nixpkgs` is a path; mkContainer evaluates with a flake's lib.
      nixpkgsOf = c:
        if arg ? nixpkgs then arg.nixpkgs
        else if evaluated && c ? nixpkgs then {
          outPath = c.nixpkgs;
          lib = import "${c.nixpkgs}/lib" // {
            nixosSystem = a: import "${c.nixpkgs}/nixos/lib/eval-config.nix" (a // { system = null; });
          };
        }
        else throw "${where}: a container with `config` needs `nixpkgs` (the nixpkgs flake) to evaluate it";

      keep = nixosContainers.names ++ [ "forwardPorts" "specialArgs" ];
      one = name: c:
        let
          modules = modulesOf name c;
          # An evaluated host has every option (defaults included, and the removed `pkgs`,
          # which throws when read): take the known ones. As written, all of them, so a
          # misspelt one fails.
          options =
            if evaluated then builtins.intersectAttrs (builtins.listToAttrs (map (n: { name = n; value = null; }) keep)) c
            else builtins.removeAttrs c [ "config" "path" "nixpkgs" ];
        in
        if !(builtins.isAttrs c) then throw "${where}: containers.${name} must be an attribute set"
        else if modules != [ ] then mkContainer (options // {
          nixpkgs = nixpkgsOf c;
          system = if system == null then throw "${where}: give `system` for containers.${name}" else system;
          inherit modules;
        })
        else if c ? path then mkContainer (options // { inherit (c) path; })
        else throw "${where}: containers.${name} has neither `config` nor `path`";
    in
    builtins.mapAttrs one containers;

  inherit schemaVersion;
}
