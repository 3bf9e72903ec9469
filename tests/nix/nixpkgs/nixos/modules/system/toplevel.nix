# Declared in nixpkgs' nixos/modules/system/activation/top-level.nix (system.build is an
# attribute set of anything there too). The stand-in's toplevel is a derivation that is never
# built: `nix flake check --no-build` only needs its drvPath.
{ config, lib, ... }:
{
  options.system.build = lib.mkOption {
    type = lib.types.submodule { freeformType = with lib.types; lazyAttrsOf (uniq unspecified); };
    default = { };
    description = "Attribute set of derivations used to set up the system.";
  };
  config.system.build.toplevel = derivation {
    name = "nixos-system-stand-in";
    system = config.nixpkgs.hostPlatform.system;
    builder = "/bin/sh";
    args = [ "-c" "echo the stand-in system is never built; exit 1" ];
  };
}
