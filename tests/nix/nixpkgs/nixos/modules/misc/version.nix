# nixos/modules/misc/version.nix (system.stateVersion and system.nixos.*), with the values of a
# 26.11 pre-release (the vendored lib's).
{ lib, ... }:
let
  str = default: lib.mkOption {
    type = lib.types.str;
    inherit default;
    readOnly = true;
    description = "See nixos/modules/misc/version.nix.";
  };
in
{
  options.system = {
    stateVersion = lib.mkOption {
      type = lib.types.str;
      default = "26.11";
      description = "The NixOS release the system's stateful data was first made with.";
    };
    nixos = {
      release = str "26.11";
      codeName = str "Stand-in";
      label = str "26.11pre-stand-in";
      distroId = str "nixos";
      distroName = str "NixOS";
    };
  };
}
