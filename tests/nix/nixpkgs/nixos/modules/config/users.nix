# nixos/modules/config/users-groups.nix: only the password options.
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
        };
      }
    );
    default = { };
    description = "Users.";
  };
}
