#!/usr/bin/env bash
# README's "Try it": on a fresh Debian or Ubuntu machine, as root, makes it an inx host
# (provision-host.sh: Nix, Incus, their daemons, a storage pool), builds inx, and brings up
# examples/offline (a copy of it in /var/lib/inx-try/offline): a container that boots from
# the shared /nix/store and serves a page on 127.0.0.1:8080. Then it shows what happened and
# what to type next. Safe to run again.
#   scripts/try.sh           try it
#   scripts/try.sh --undo    destroy the example's container and remove what this script made;
#                            it lists the packages it installed, which it leaves.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
example=$repo/examples/offline
state=/var/lib/inx-try
# The example's `busybox` input names this folder.
busybox=$state/busybox
# The example runs from a copy whose `inx` input is a copy of inx's flake and lib: Debian 12's
# Nix 2.8 cannot keep a lock of the checkout's `path:../..` (it hashes the whole checkout,
# target/ too, and refuses once anything there changed); Nix 2.26 and later can.
work=$state/offline
inx_copy=$state/inx
link=/usr/local/bin/inx
# What `cargo build` makes (CARGO_TARGET_DIR moves it).
bin=${CARGO_TARGET_DIR:-$repo/target}/debug/inx
say() { printf 'try: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "run me as root (sudo $0): I install Nix and Incus and start their daemons"
  exit 1
fi

undo() {
  if [ -x "$bin" ]; then
    say "destroying the example's container (inx destroy --force demo)"
    # Found by name on the local server: no flake needed.
    (cd / && "$bin" destroy --force demo) || say "inx destroy failed: the container 'demo' may be left (incus delete --force demo)"
  fi
  if [ -L "$link" ] && [ "$(readlink "$link")" = "$bin" ]; then
    rm -f "$link"
    say "removed $link"
  fi
  if [ -f "$state/installed" ]; then
    say "left installed (remove them yourself if nothing else needs them):"
    sed 's/^/  /' "$state/installed" >&2
    say "  for example: apt-get remove --purge $(grep -v '^apt source ' "$state/installed" | tr '\n' ' ')"
  fi
  rm -rf "$state"
  say "removed $state; the Nix store and Incus's storage pool stay (nix-collect-garbage frees the store)"
}

case "${1:-}" in
  "") ;;
  --undo)
    undo
    exit 0
    ;;
  *)
    say "usage: $0 [--undo]"
    exit 2
    ;;
esac

# Checked before anything is installed.
if ! command -v cargo >/dev/null; then
  say "cargo is missing: inx is built from this checkout with Rust $(sed -n 's/^rust-version = "\(.*\)"/\1/p' Cargo.toml) or later (rustup.rs); nothing was changed"
  exit 1
fi

say "1/4 the host: Nix, Incus and their daemons (scripts/provision-host.sh)"
mkdir -p "$state"
INX_PROVISION_RECORD=$state/installed scripts/provision-host.sh

say "2/4 inx: cargo build"
cargo build --locked --quiet
if [ ! -e "$link" ]; then
  ln -s "$bin" "$link"
  say "linked $link to this checkout's inx"
elif [ "$(readlink -f "$link")" != "$(readlink -f "$bin")" ]; then
  say "$link is another inx: using this checkout's ($bin)"
  link=$bin
fi

say "3/4 the offline example's one program: Debian's static busybox in $busybox"
# Made once and then kept: the example's flake.lock holds its hash.
if [ ! -x "$busybox/bin/busybox" ]; then
  mkdir -p "$busybox/bin"
  cp /bin/busybox "$busybox/bin/busybox"
  ln -sfn busybox "$busybox/bin/sh"
fi

# inx's flake, lib and the system fixture the example imports, as the example's input: copied
# again when the checkout's changed (then
# the copy's lock goes, and Nix locks the new one); the example's flake.nix only when there is
# none yet, so edits to it stay.
fresh=$state/inx.new
rm -rf "$fresh"
mkdir -p "$fresh"
cp "$repo/flake.nix" "$fresh/"
cp -r "$repo/lib" "$fresh/"
mkdir -p "$fresh/tests/fixtures"
cp "$repo/tests/fixtures/synthetic-system.nix" "$fresh/tests/fixtures/"
if ! diff -rq "$fresh" "$inx_copy" >/dev/null 2>&1; then
  rm -rf "$inx_copy"
  mv "$fresh" "$inx_copy"
  rm -f "$work/flake.lock"
else
  rm -rf "$fresh"
fi
if [ ! -f "$work/flake.nix" ]; then
  mkdir -p "$work"
  sed "s|path:../..|path:$inx_copy|" "$example/flake.nix" >"$work/flake.nix"
  say "copied examples/offline to $work (inx as $inx_copy)"
fi

say "4/4 inx up, in $work"
cd "$work"
"$link" up
"$link" list

# GET http://127.0.0.1:8080/ with bash alone (a fresh machine may have no curl): the body.
get_page() {
  exec 3<>/dev/tcp/127.0.0.1/8080 || return 1
  printf 'GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
  timeout 5 cat <&3 | sed '1,/^\r*$/d'
  exec 3<&-
}
# The page, through the proxy device; its web server starts with the container.
page=
for _ in $(seq 1 50); do
  page=$(get_page 2>/dev/null) && [ -n "$page" ] && break
  sleep 0.2
done
if [ -z "$page" ]; then
  say "the container runs, but 127.0.0.1:8080 does not answer (is the port taken by something else?)"
  exit 1
fi

cat <<EOF

The container 'demo' runs the system $work/flake.nix declares, straight from the
host's /nix/store. Its web server answers on the host's loopback (an Incus proxy device):
  \$ curl http://127.0.0.1:8080/
  $page

Next, in $work (a copy of examples/offline):
  inx shell demo            a shell inside (exit leaves it)
  inx list                  what runs, and which generation
  edit flake.nix            change \`page\`, then: inx up
                            (the container switches to the new system in place, no restart)
  inx rollback demo         back to the previous system
  inx destroy demo          the container, its host profile and its GC roots go
Undo all of this:           sudo $repo/scripts/try.sh --undo

EOF

# The real NixOS examples need nixpkgs and its binary cache.
if timeout 20 nix --extra-experimental-features nix-command store ping --store https://cache.nixos.org >/dev/null 2>&1; then
  cat <<EOF
This machine reaches the NixOS binary cache: a real NixOS container (nginx behind a port
forward) is one command away:
  cd $repo/examples/nixos && inx up
EOF
else
  cat <<EOF
The real NixOS examples (examples/nixos and the others) need nixpkgs and its binary cache,
which this machine cannot reach: run them where it can.
EOF
fi
