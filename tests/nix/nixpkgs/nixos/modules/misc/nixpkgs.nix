# Declared in nixpkgs' nixos/modules/misc/nixpkgs.nix (a platform there; a system string or
# an attribute set with `system` here, which is all inx reads).
{ lib, ... }:
{
  options.nixpkgs.hostPlatform = lib.mkOption {
    type = with lib.types; coercedTo str (system: { inherit system; }) (attrsOf anything);
    description = "The platform the system runs on.";
  };
}
