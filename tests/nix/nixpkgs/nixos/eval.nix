# The stand-in's `lib.nixosSystem`: the real module system (lib.evalModules from the real
# nixpkgs lib) over typed stub declarations of the NixOS options inx and its examples touch
# (modules/, each citing the nixpkgs file that declares the real option). A misspelt option or
# a wrong type fails here as it would on NixOS; nothing is built.
{ lib, pkgsFor }:

{ modules, specialArgs ? { }, system ? null, ... }:
let
  eval = lib.evalModules {
    class = "nixos";
    specialArgs = { modulesPath = ./modules; } // specialArgs;
    modules = import ./modules/module-list.nix ++ modules ++ [
      ({ config, options, ... }: {
        _module.args.pkgs =
          if options.nixpkgs.pkgs.isDefined then config.nixpkgs.pkgs
          else pkgsFor config.nixpkgs.hostPlatform.system;
      })
    ] ++ lib.optional (system != null) { nixpkgs.hostPlatform = lib.mkDefault system; };
  };
in
eval // { inherit (eval.config.system.build) toplevel; }
