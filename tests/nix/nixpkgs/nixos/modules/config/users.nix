# nixos/modules/config/users-groups.nix: only the password options, isNormalUser and extraGroups; and the
# per-user part of services/networking/ssh/sshd.nix (openssh.authorizedKeys.keys).
{ lib, ... }:
let
  nullStr = description: lib.mkOption {
    type = lib.types.nullOr lib.types.str;
    default = null;
    inherit description;
  };
in
{
  options.users.users = lib.mkOption {
    type = lib.types.attrsOf (
      lib.types.submodule {
        options = {
          hashedPassword = nullStr "The user's hashed password (\"!\" locks it).";
          initialPassword = nullStr "The user's password at first creation.";
          initialHashedPassword = nullStr "The user's hashed password at first creation.";
          password = nullStr "The user's clear-text password.";
          isNormalUser = lib.mkOption {
            type = lib.types.bool;
            default = false;
            description = "Whether this is a normal (human) user, with a home and a shell.";
          };
          extraGroups = lib.mkOption {
            type = lib.types.listOf lib.types.str;
            default = [ ];
            description = "The user's auxiliary groups.";
          };
          openssh.authorizedKeys.keys = lib.mkOption {
            type = lib.types.listOf lib.types.str;
            default = [ ];
            description = "Public keys that may log in as the user.";
          };
        };
      }
    );
    default = { };
    description = "Users.";
  };
}
