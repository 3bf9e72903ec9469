#!/bin/sh
# Recording stand-in for nix, nix-store, nix-env and incus, used by tests/cli.rs.
# The test writes this script into a sandbox (replacing @SANDBOX@ and the interpreter line)
# and symlinks it under each program's name. Each call:
#   - appends one line to calls.log: the program name, then every argument in brackets;
#   - saves its stdin, when there is any, to stdin/<prog>-<verb>;
#   - answers from responses/<prog>-<verb>.out (stdout), .err (stderr), .code (exit code,
#     default 0).
# The verb is the first argument after the global options --project X,
# --extra-experimental-features X, (nix-store) --add-root X and (nix-env) --profile X, with
# leading dashes removed:
# `nix-store --realise ...` is nix-store-realise, `nix-env --profile P --set S` is nix-env-set.
# Needs only sh builtins plus cat and rm.
dir='@SANDBOX@'
prog=${0##*/}

line=$prog
for arg in "$@"; do
  line="$line [$arg]"
done
printf '%s\n' "$line" >>"$dir/calls.log"

verb=
while [ "$#" -gt 0 ]; do
  case $1 in
    --project | --extra-experimental-features | --add-root | --profile)
      shift
      [ "$#" -gt 0 ] && shift
      ;;
    *)
      verb=${1#--}
      break
      ;;
  esac
done

input="$dir/stdin/$prog-$verb"
cat >"$input"
[ -s "$input" ] || rm -f "$input"

response="$dir/responses/$prog-$verb"
[ -f "$response.out" ] && cat "$response.out"
[ -f "$response.err" ] && cat "$response.err" >&2
code=0
[ -f "$response.code" ] && read -r code <"$response.code"
exit "$code"
