# nixos/modules/system/activation/top-level.nix: system.build (an attribute set of anything
# there too) and the toplevel, which refuses a failed assertion and shows every warning as the
# real one does. The stand-in's toplevel is never built: `nix flake check --no-build` only
# needs its drvPath.
{ config, lib, ... }:
let
  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
  checked =
    if failed != [ ] then
      throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}"
    else
      lib.foldr lib.warn true config.warnings;
in
{
  options.system.build = lib.mkOption {
    type = lib.types.submodule { freeformType = with lib.types; lazyAttrsOf (uniq unspecified); };
    default = { };
    description = "Attribute set of derivations used to set up the system.";
  };
  config.system.build.toplevel =
    assert checked;
    derivation {
      name = "nixos-system-stand-in-${config.system.nixos.label}";
      system = config.nixpkgs.hostPlatform.system;
      builder = "/bin/sh";
      args = [
        "-c"
        "echo the stand-in system is never built; exit 1"
      ];
      # What the real toplevel's closure holds, so the drvPath changes with it.
      packages = config.environment.systemPackages ++ config.systemd.packages;
      etc = builtins.toJSON (lib.mapAttrs (_: e: e.text) config.environment.etc);
    };
}
