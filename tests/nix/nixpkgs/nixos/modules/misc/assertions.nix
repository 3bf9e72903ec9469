# nixos/modules/misc/assertions.nix. The stand-in's toplevel fails on a failed assertion and
# prints each warning, as nixos/modules/system/activation/top-level.nix does.
{ lib, ... }:
{
  options = {
    assertions = lib.mkOption {
      type = lib.types.listOf lib.types.unspecified;
      internal = true;
      default = [ ];
      description = "Conditions that must hold, each with the message shown when it does not.";
    };
    warnings = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      internal = true;
      default = [ ];
      description = "Messages printed when the system is evaluated.";
    };
  };
}
