# nixos/modules/config/system-path.nix (environment.systemPackages) and
# nixos/modules/system/etc/etc.nix (environment.etc).
{ lib, ... }:
{
  options.environment = {
    systemPackages = lib.mkOption {
      type = lib.types.listOf lib.types.package;
      default = [ ];
      description = "The packages in the system profile.";
    };
    etc = lib.mkOption {
      type = lib.types.attrsOf (
        lib.types.submodule {
          options = {
            text = lib.mkOption {
              type = lib.types.nullOr lib.types.lines;
              default = null;
              description = "The file's text.";
            };
            source = lib.mkOption {
              type = lib.types.nullOr lib.types.path;
              default = null;
              description = "The file's source.";
            };
          };
        }
      );
      default = { };
      description = "Files in /etc.";
    };
  };
}
