# nixos/lib/systemd-lib.nix and nixos/lib/systemd-unit-options.nix (the unit options, as
# nixos/modules/system/boot/systemd.nix uses them), and nixos/modules/system/boot/networkd.nix
# (systemd.network), and nixos/modules/system/boot/systemd/tmpfiles.nix (systemd.tmpfiles.rules).
# Only the unit options inx and its tests set or read.
{ lib, ... }:
let
  inherit (lib) types mkOption;
  units = mkOption {
    type = types.listOf types.str;
    default = [ ];
    description = "Unit names.";
  };
  unitOptions = {
    enable = mkOption {
      type = types.bool;
      default = true;
      description = "Whether the unit is made.";
    };
    description = mkOption {
      type = types.singleLineStr;
      default = "";
      description = "The unit's description.";
    };
    wantedBy = units;
    requiredBy = units;
    wants = units;
    requires = units;
    after = units;
    before = units;
    bindsTo = units;
    partOf = units;
    unitConfig = mkOption {
      type = types.attrsOf types.anything;
      default = { };
      description = "The [Unit] section.";
    };
  };
  service = {
    options = unitOptions // {
      path = mkOption {
        type = types.listOf (types.either types.package types.str);
        default = [ ];
        description = "Packages added to the service's PATH.";
      };
      environment = mkOption {
        type = types.attrsOf (types.nullOr (types.oneOf [ types.str types.path types.package ]));
        default = { };
        description = "Environment variables.";
      };
      serviceConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
        description = "The [Service] section.";
      };
      script = mkOption {
        type = types.lines;
        default = "";
        description = "Shell commands run as the service's main process.";
      };
      preStart = mkOption {
        type = types.lines;
        default = "";
        description = "Shell commands run before the service's main process.";
      };
      restartIfChanged = mkOption {
        type = types.bool;
        default = true;
        description = "Whether the service is restarted when it changed on a switch.";
      };
    };
  };
  socket = {
    options = unitOptions // {
      socketConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
        description = "The [Socket] section.";
      };
    };
  };
  network = {
    options = {
      matchConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
        description = "The [Match] section.";
      };
      networkConfig = mkOption {
        type = types.attrsOf types.anything;
        default = { };
        description = "The [Network] section.";
      };
      DHCP = mkOption {
        type = types.nullOr (types.enum [ "yes" "no" "ipv4" "ipv6" ]);
        default = null;
        description = "Whether to enable DHCP on the matched links.";
      };
    };
  };
in
{
  options.systemd = {
    # system/boot/systemd/tmpfiles.nix
    tmpfiles.rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "tmpfiles.d(5) lines.";
    };
    services = mkOption {
      type = types.attrsOf (types.submodule service);
      default = { };
      description = "Definition of systemd service units.";
    };
    sockets = mkOption {
      type = types.attrsOf (types.submodule socket);
      default = { };
      description = "Definition of systemd socket units.";
    };
    packages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      description = "Packages providing systemd units and hooks.";
    };
    additionalUpstreamSystemUnits = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "Upstream systemd units to add to the system.";
    };
    network = {
      enable = mkOption {
        type = types.bool;
        default = false;
        description = "Whether to enable networkd.";
      };
      networks = mkOption {
        type = types.attrsOf (types.submodule network);
        default = { };
        description = "Definition of systemd networks.";
      };
    };
  };
}
