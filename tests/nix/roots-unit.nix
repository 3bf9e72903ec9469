# The host module's `inx-roots` unit file, as NixOS writes it (nixos/lib/systemd-lib.nix: one
# `Key=value` line per value, lists as repeated keys, booleans as true/false; the unit's
# description, ordering and unitConfig in [Unit], its PATH and serviceConfig in [Service]), for
# tests/flake.rs to score with `systemd-analyze security --offline=true`. The stand-in's NixOS
# has no unit files of its own; nothing here is built.
#
#   nix eval --raw --impure --expr \
#     'import ./tests/nix/roots-unit.nix { nixpkgs = builtins.getFlake "path:<stand-in>"; inx = ./.; }'
{ nixpkgs, inx }:
let
  inherit (nixpkgs) lib;
  system = "x86_64-linux";
  pkgs = nixpkgs.legacyPackages.${system};
  host = import (inx + "/lib/modules/host.nix") {
    inxPackages.${system}.inx = pkgs.callPackage (inx + "/lib/package.nix") { };
    inxFlake = {
      outPath = toString inx;
    };
  };
  config =
    (nixpkgs.lib.nixosSystem {
      inherit system;
      modules = [
        host
        { services.inx.enable = true; }
      ];
    }).config;
  unit = config.systemd.services.inx-roots;

  value =
    v:
    if v == true then
      "true"
    else if v == false then
      "false"
    else
      toString v;
  section =
    title: attrs:
    "[${title}]\n"
    + lib.concatStrings (
      lib.concatLists (
        lib.mapAttrsToList (name: v: map (x: "${name}=${value x}\n") (lib.toList v)) attrs
      )
    );
in
section "Unit" (
  {
    Description = unit.description;
    After = unit.after;
    PartOf = unit.partOf;
  }
  // unit.unitConfig
)
+ section "Service" (
  {
    Environment = lib.mapAttrsToList (n: v: "\"${n}=${v}\"") (
      unit.environment // { PATH = lib.makeBinPath unit.path; }
    );
  }
  // unit.serviceConfig
)
