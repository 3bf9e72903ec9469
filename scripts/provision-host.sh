#!/usr/bin/env bash
# Makes a Debian or Ubuntu machine an inx host: installs Nix (the distribution's nix-bin), Incus
# (Debian 12: from bookworm-backports; elsewhere: the distribution's own), busybox-static and
# git, then makes sure a nix-daemon and incusd answer and gives Incus a storage pool and a
# default profile (no network). What `scripts/try.sh` needs; `provision-test-host.sh` adds the
# test-only parts on top. Idempotent: what is already there is left as it is.
# Needs root. Logs go to $INX_LOG_DIR (default /var/log/inx). Each package it installs is added
# as a line to the file $INX_PROVISION_RECORD names, when set (try.sh's undo lists them).
set -euo pipefail

log_dir=${INX_LOG_DIR:-/var/log/inx}
mkdir -p "$log_dir"
say() { printf 'provision: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "must run as root (it installs packages and starts daemons)"
  exit 1
fi

# shellcheck disable=SC1091
. /etc/os-release
need_pkgs=()
command -v nix >/dev/null || need_pkgs+=(nix-bin)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx sh && dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v git >/dev/null || need_pkgs+=(git)
# Any extra packages the caller wants (the test host's), installed in the same apt run.
need_pkgs+=("$@")
need_incus=0
command -v incus >/dev/null || need_incus=1

record() {
  [ -n "${INX_PROVISION_RECORD:-}" ] || return 0
  mkdir -p "$(dirname "$INX_PROVISION_RECORD")"
  printf '%s\n' "$@" >>"$INX_PROVISION_RECORD"
}

if [ ${#need_pkgs[@]} -gt 0 ] || [ $need_incus = 1 ]; then
  suite=
  # Debian 12 has Incus 6.0 in bookworm-backports only. Reuse the mirror and key of the
  # existing Debian source instead of naming a mirror here.
  if [ $need_incus = 1 ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
    suite=bookworm-backports
    src=/etc/apt/sources.list.d/debian.sources
    bp=/etc/apt/sources.list.d/inx-backports.sources
    if [ ! -f "$bp" ]; then
      uris=$(grep -m1 '^URIs:' "$src" 2>/dev/null || true)
      signed=$(grep -m1 '^Signed-By:' "$src" 2>/dev/null || true)
      if [ -z "$uris" ]; then
        say "cannot find a URIs: line in $src to reuse for bookworm-backports"
        exit 1
      fi
      printf 'Types: deb\n%s\nSuites: bookworm-backports\nComponents: main\n%s\n' "$uris" "$signed" >"$bp"
      record "apt source $bp"
    fi
  fi
  say "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log_dir/apt-update.log" 2>&1
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >"$log_dir/apt-install.log" 2>&1 \
      || { say "apt-get install failed: see $log_dir/apt-install.log"; exit 1; }
    record "${need_pkgs[@]}"
  fi
  if [ $need_incus = 1 ]; then
    say "installing incus${suite:+ from $suite}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${suite:+-t "$suite"} incus >"$log_dir/apt-incus.log" 2>&1 \
      || { say "installing incus failed: see $log_dir/apt-incus.log"; exit 1; }
    record incus
  fi
fi

conf=/etc/nix/nix.conf
mkdir -p /etc/nix
touch "$conf"
# inx asks for flakes itself; this is for the `nix` commands users type.
grep -q '^experimental-features' "$conf" || echo 'experimental-features = nix-command flakes' >>"$conf"

# A daemon: systemd starts the packaged ones; on a machine without systemd as PID 1, start
# them here, in the background.
if ! timeout 10 nix --extra-experimental-features nix-command store ping --store daemon >/dev/null 2>&1; then
  say "starting nix-daemon"
  mkdir -p /nix/var/nix/daemon-socket
  rm -f /nix/var/nix/daemon-socket/socket
  # From /: a daemon keeps its working folder, which may be a checkout removed later.
  (cd / && exec setsid nix-daemon >"$log_dir/nix-daemon.log" 2>&1 </dev/null) &
  for _ in $(seq 1 100); do
    timeout 10 nix --extra-experimental-features nix-command store ping --store daemon >/dev/null 2>&1 && break
    sleep 0.1
  done
fi

# Its socket belongs to incus-admin (the group Debian's incus package makes, as the packaged
# service does): members use Incus, and inx, without sudo.
if ! incus info >/dev/null 2>&1; then
  say "starting incusd"
  # From /: a daemon keeps its working folder, which may be a checkout removed later.
  (cd / && exec setsid /usr/libexec/incus/incusd --group incus-admin >"$log_dir/incusd.log" 2>&1 </dev/null) &
  if ! timeout 60 incus admin waitready; then
    say "incusd did not start: see $log_dir/incusd.log"
    tail -n 20 "$log_dir/incusd.log" >&2 || true
    exit 1
  fi
fi

# A storage pool and a default profile with a root disk, and no network: inx's containers need
# none, and `incus admin init --minimal` cannot always pick a free subnet for a bridge. A host
# that already has a pool keeps its own setup.
if ! incus storage show default >/dev/null 2>&1; then
  say "initialising incus (dir pool, no network)"
  incus admin init --preseed <"$(dirname "$0")/storage-only.yaml"
fi
say "host ready: $(nix --version), incus $(incus version 2>/dev/null | sed -n 's/^Server version: //p')"
