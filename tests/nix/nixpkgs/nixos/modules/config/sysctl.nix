# nixos/modules/config/sysctl.nix: boot.kernel.sysctl with the real option's type (a freeform
# submodule of single-valued entries: two definitions of one key at the same priority fail, as
# lib.mergeOneOption makes them; a bool, string, integer or null each), and the NixOS-wide
# defaults inx's limits meet (vm.max_map_count, and the inotify limits nixpkgs sets for every
# system since mid-2025), at mkDefault as there. Its file in /etc is in the toplevel, so a
# sysctl that fails to merge fails the system, as on NixOS. The real option also declares
# net.core.{rmem,wmem}_max (the highest definition wins), which inx does not touch.
{ config, lib, ... }:
let
  value = lib.mkOptionType {
    name = "sysctl option value";
    check =
      v:
      let
        ok = x: lib.isBool x || lib.isString x || lib.isInt x || x == null;
      in
      ok v || (v._type or "" == "override" && ok v.content);
    merge = loc: defs: lib.mergeOneOption loc defs;
  };
in
{
  options.boot.kernel.sysctl = lib.mkOption {
    type = lib.types.submodule { freeformType = lib.types.attrsOf value; };
    default = { };
    description = "Runtime parameters of the Linux kernel, as set by sysctl(8).";
  };

  config = {
    environment.etc."sysctl.d/60-nixos.conf".text = lib.concatStrings (
      lib.mapAttrsToList (
        k: v: lib.optionalString (v != null) "${k}=${if v == false then "0" else toString v}\n"
      ) config.boot.kernel.sysctl
    );
    boot.kernel.sysctl = {
      "vm.max_map_count" = lib.mkDefault 1048576;
      "fs.inotify.max_user_instances" = lib.mkDefault 524288;
      "fs.inotify.max_user_watches" = lib.mkDefault 524288;
    };
  };
}
