# nixos/modules/config/nix.nix (nix.enable, nix.settings), services/system/nix-daemon.nix
# (nix.nrBuildUsers), services/misc/nix-gc.nix (nix.gc.automatic),
# services/misc/nix-optimise.nix (nix.optimise.automatic) and config/nix-flakes.nix
# (nix.registry). nix.settings is freeform, as there: flake-registry is one of its keys.
{ config, lib, ... }:
let
  inherit (lib) types mkOption;
  # nix.nix's settings type: Nix's settings, each an atom or a list of atoms.
  atom = types.nullOr (types.oneOf [ types.bool types.int types.float types.str types.path types.package ]);
  strings = default: description: mkOption {
    type = types.listOf types.str;
    inherit default description;
  };
  bool = default: description: mkOption {
    type = types.bool;
    inherit default description;
  };
in
{
  options.nix = {
    enable = bool true "Whether to enable Nix (the daemon, the store, the tools).";
    settings = mkOption {
      type = types.submodule {
        freeformType = types.attrsOf (types.either atom (types.listOf atom));
        options = {
          allowed-users = strings [ "*" ] "Users (or @groups) that may connect to the daemon.";
          trusted-users = strings [ "root" ] "Users (or @groups) the daemon trusts.";
          substituters = strings [ ] "Binary caches.";
          experimental-features = strings [ ] "Experimental Nix features.";
        };
      };
      default = { };
      description = "Nix's nix.conf.";
    };
    nrBuildUsers = mkOption {
      type = types.int;
      description = "Number of nixbld users to create.";
    };
    gc.automatic = bool false "Whether to collect garbage on a schedule (the nix-gc service).";
    optimise.automatic = bool false "Whether to optimise the store on a schedule.";
    # Each entry's from, to and exact, and how `flake` fills in `to`, as nix-flakes.nix has them.
    registry = mkOption {
      type = types.attrsOf (
        types.submodule (
          { config, name, ... }:
          let
            reference = types.attrsOf (types.oneOf [ types.str types.int types.bool types.path types.package ]);
          in
          {
            options = {
              from = mkOption {
                type = reference;
                description = "The flake reference to be rewritten.";
              };
              to = mkOption {
                type = reference;
                description = "The flake reference `from` is rewritten to.";
              };
              flake = mkOption {
                type = types.nullOr types.attrs;
                default = null;
                description = "The flake input `from` is rewritten to.";
              };
              exact = mkOption {
                type = types.bool;
                default = true;
                description = "Whether `from` must match exactly.";
              };
            };
            config = {
              from = lib.mkDefault {
                type = "indirect";
                id = name;
              };
              to = lib.mkIf (config.flake != null) (
                lib.mkDefault (
                  {
                    type = "path";
                    path = config.flake.outPath;
                  }
                  // lib.filterAttrs (n: _: lib.elem n [ "lastModified" "rev" "revCount" "narHash" ]) config.flake
                )
              );
            };
          }
        )
      );
      default = { };
      description = "The system-wide flake registry.";
    };
  };

  config = {
    # nix-daemon.nix sets it at mkDefault (32, or 0 with auto-allocate-uids).
    nix.nrBuildUsers = lib.mkDefault (if config.nix.settings.auto-allocate-uids or false then 0 else 32);
    # nix.nix appends the public cache, so a plain `[ ]` does not clear it.
    nix.settings.substituters = lib.mkAfter [ "https://cache.nixos.org/" ];
  };
}
