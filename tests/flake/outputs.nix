# Every output of inx's flake as JSON, for tests/flake.rs (every_flake_output_evaluates): what
# Nix or a user reads of each, forced, for both systems. `inputs` are a probe flake's inputs:
# inx's copy and the nixpkgs stand-in it follows.
{ inx, nixpkgs, ... }:
let
  inherit (nixpkgs) lib;
  drvPaths = lib.mapAttrs (_: d: d.drvPath);
  perSystem =
    system:
    let
      pkgs = nixpkgs.legacyPackages.${system};
      toplevel = pkgs.writeTextDir "init" "";
    in
    {
      packages = drvPaths inx.packages.${system};
      inxOut = "${inx.packages.${system}.inx}";
      apps = lib.mapAttrs (_: a: { inherit (a) type program; }) inx.apps.${system};
      devShell = inx.devShells.${system}.default.drvPath;
      overlay = (pkgs.extend inx.overlays.default).inx.drvPath;
      checks = drvPaths inx.checks.${system};
      formatter = inx.formatter.${system}.drvPath;
      container = {
        toplevel = "${toplevel}";
        manifest = (inx.lib.mkContainer { inherit toplevel; }).inxManifest;
      };
    };
in
{
  systems = lib.genAttrs [
    "x86_64-linux"
    "aarch64-linux"
  ] perSystem;
  nixosModules = lib.mapAttrs (_: builtins.typeOf) inx.nixosModules;
  template = {
    path = "${inx.templates.default.path}";
    inherit (inx.templates.default) description;
    welcomeText = inx.templates.default.welcomeText or null;
  };
}
