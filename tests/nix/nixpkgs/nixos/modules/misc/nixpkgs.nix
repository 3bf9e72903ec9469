# Declared in nixpkgs' nixos/modules/misc/nixpkgs.nix: hostPlatform (a platform there; a system
# string or an attribute set with `system` here, which is all inx reads) and pkgs (an instance
# made elsewhere, used as the modules' `pkgs`; eval.nix forwards it as nixpkgs does).
{ lib, ... }:
{
  options.nixpkgs.hostPlatform = lib.mkOption {
    type = with lib.types; coercedTo str (system: { inherit system; }) (attrsOf anything);
    description = "The platform the system runs on.";
  };
  options.nixpkgs.pkgs = lib.mkOption {
    type = lib.types.pkgs;
    description = "An evaluation of Nixpkgs; the top level attribute set of packages.";
  };
}
