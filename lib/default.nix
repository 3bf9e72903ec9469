# inx's flake library. Takes only what it needs and never forces nixpkgs itself: on the
# `toplevel` path a flake with no nixpkgs at all evaluates.
{ guestModule }:

let
  imagesLib = import ./images.nix { imageModule = ./modules/image.nix; };

  # The schema of `inxManifest`; src/manifest.rs reads the same number.
  schemaVersion = 1;

  knownIncusAttrs = [ "config" "devices" "profiles" ];

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

  # The small, JSON-able description the CLI reads with one `nix eval`. Only `toplevel`'s
  # paths are forced; nothing else of the system is.
  # `fromImage` is written only when set, so manifests of containers that do not use it read
  # the same as before.
  manifestOf = { toplevel, incus, fromImage }: {
    inherit schemaVersion;
    toplevel = "${toplevel}";
    drvPath = toplevel.drvPath or null;
    incus = withDefaults (checkIncus incus);
  } // (if fromImage then { fromImage = true; } else { });

  # `images` (see images.nix) are the derivations of this system's image files; without them
  # the container has no image outputs and `inx image` says so.
  fromToplevel = { toplevel, incus ? { }, images ? null, fromImage ? false }: {
    _type = "inx-container";
    inherit toplevel;
    images = if images == null then null else imagesLib.fromToplevel { inherit toplevel images; };
    inxManifest = manifestOf { inherit toplevel incus fromImage; };
  };

  fromNixpkgs = { nixpkgs, system, modules ? [ ], specialArgs ? { }, incus ? { }, fromImage ? false }:
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
      inxManifest = manifestOf { inherit toplevel incus fromImage; };
    };
in
{
  /* Declares a container for `inxContainers.<name>`. Either
       mkContainer { nixpkgs, system, modules, specialArgs ? {}, incus ? {} }
     (evaluates NixOS with inx's guest module) or
       mkContainer { toplevel, incus ? {} }
     (an already-built NixOS system, such as nixosConfigurations.x.config.system.build.toplevel).
     `incus` = { config ? {}; devices ? {}; profiles ? [ "default" ]; } is added to the instance.
     `fromImage = true` makes `inx up` create the container from its image instead of the shared
     store. On the toplevel path, `images = { container = { metadata; squashfs; }; ... }` gives
     the image files (see images.nix); the nixpkgs path makes them with nixpkgs' modules. */
  mkContainer = args:
    if args ? toplevel && args ? nixpkgs then
      throw "inx.lib.mkContainer: give either `toplevel` or `nixpkgs` (with `system` and `modules`), not both"
    else if args ? toplevel then fromToplevel args
    else if args ? nixpkgs then fromNixpkgs args
    else throw "inx.lib.mkContainer: give `toplevel` (a built NixOS system) or `nixpkgs`, `system` and `modules`";

  inherit schemaVersion;
}
