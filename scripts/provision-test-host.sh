#!/usr/bin/env bash
# Makes a Debian 12 machine ready for inx's end-to-end tests: installs Nix (Debian's nix-bin),
# Incus (bookworm-backports) and the fixture tools, then starts nix-daemon and incusd and gives
# Incus a storage-only setup. Idempotent: what is already there is left as it is.
# Needs root. Logs go to $INX_TEST_LOG_DIR (default /var/log/inx-test).
set -euo pipefail

log_dir=${INX_TEST_LOG_DIR:-/var/log/inx-test}
mkdir -p "$log_dir"
say() { printf 'provision: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ]; then
  say "must run as root (it installs packages and starts daemons)"
  exit 1
fi

need_pkgs=()
command -v nix >/dev/null || need_pkgs+=(nix-bin)
[ -x /bin/busybox ] && /bin/busybox --list 2>/dev/null | grep -qx sh && dpkg -s busybox-static >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v mksquashfs >/dev/null || need_pkgs+=(squashfs-tools)
command -v git >/dev/null || need_pkgs+=(git)
# The image tests: xz for metadata tarballs, openssl for a test CA, Debian's python3 for a
# small HTTPS server on loopback, and LXD 5.0 (what ChromeOS ships) beside Incus.
command -v xz >/dev/null || need_pkgs+=(xz-utils)
command -v openssl >/dev/null || need_pkgs+=(openssl)
command -v update-ca-certificates >/dev/null || need_pkgs+=(ca-certificates)
[ -x /usr/bin/python3 ] || need_pkgs+=(python3)
command -v lxd >/dev/null || need_pkgs+=(lxd)
need_incus=0
command -v incus >/dev/null || need_incus=1

if [ ${#need_pkgs[@]} -gt 0 ] || [ $need_incus = 1 ]; then
  # Incus 6.0 comes from bookworm-backports. Reuse the mirror and key of the existing Debian
  # source instead of naming a mirror here.
  src=/etc/apt/sources.list.d/debian.sources
  bp=/etc/apt/sources.list.d/inx-backports.sources
  if [ $need_incus = 1 ] && [ ! -f "$bp" ]; then
    uris=$(grep -m1 '^URIs:' "$src" || true)
    signed=$(grep -m1 '^Signed-By:' "$src" || true)
    if [ -z "$uris" ]; then
      say "cannot find a URIs: line in $src to reuse for bookworm-backports"
      exit 1
    fi
    printf 'Types: deb\n%s\nSuites: bookworm-backports\nComponents: main\n%s\n' "$uris" "$signed" >"$bp"
  fi
  say "apt-get update"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >"$log_dir/apt-update.log" 2>&1
  if [ ${#need_pkgs[@]} -gt 0 ]; then
    say "installing ${need_pkgs[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >"$log_dir/apt-install.log" 2>&1
  fi
  if [ $need_incus = 1 ]; then
    say "installing incus from bookworm-backports"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports incus >"$log_dir/apt-incus.log" 2>&1
  fi
fi

# Nix: flakes on, no binary cache (none can be reached from test machines).
conf=/etc/nix/nix.conf
mkdir -p /etc/nix
touch "$conf"
grep -q '^experimental-features' "$conf" || echo 'experimental-features = nix-command flakes' >>"$conf"
grep -q '^substituters' "$conf" || echo 'substituters =' >>"$conf"
grep -q '^sandbox' "$conf" || echo 'sandbox = false' >>"$conf"

# A socket file can outlive its daemon (a stopped session leaves it behind): ask the daemon.
daemon_up() { timeout 10 nix --extra-experimental-features nix-command store ping --store daemon >/dev/null 2>&1; }
if ! daemon_up; then
  say "starting nix-daemon"
  rm -f /nix/var/nix/daemon-socket/socket
  setsid nix-daemon >"$log_dir/nix-daemon.log" 2>&1 </dev/null &
  for _ in $(seq 1 100); do
    daemon_up && break
    sleep 0.1
  done
  daemon_up || { say "nix-daemon did not start: see $log_dir/nix-daemon.log"; exit 1; }
fi

# Debian's lxd package gives root a second, overlapping range in /etc/subuid and /etc/subgid;
# Incus then builds an id map that the kernel refuses and no container starts. Keep root's
# first range only (LXD uses it too).
for f in /etc/subuid /etc/subgid; do
  if [ -f "$f" ] && [ "$(grep -c '^root:' "$f")" -gt 1 ]; then
    say "keeping one root range in $f"
    awk -F: '$1 != "root" || !seen++' "$f" >"$f.inx-tmp" && mv "$f.inx-tmp" "$f"
  fi
done

# A test CA and a certificate for 127.0.0.1, for image servers on loopback. Incus and LXD read
# the system CA store once, at start, so the CA goes in before they start. An incusd that was
# already running before the CA was installed is restarted once (SIGTERM stops the daemon and
# leaves its containers running).
tls_dir=${INX_TEST_TLS_DIR:-/var/lib/inx-test/tls}
ca_store=/usr/local/share/ca-certificates/inx-test-ca.crt
if [ ! -s "$tls_dir/server.crt" ] || [ ! -s "$ca_store" ] || ! cmp -s "$tls_dir/ca.crt" "$ca_store"; then
  say "making a test CA and a certificate for 127.0.0.1 in $tls_dir"
  mkdir -p "$tls_dir"
  chmod 0700 "$tls_dir"
  (
    cd "$tls_dir"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=inx test CA" \
      -keyout ca.key -out ca.crt -addext basicConstraints=critical,CA:TRUE \
      -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    rm -f server.csr server.ext ca.srl
  )
  cp "$tls_dir/ca.crt" "$ca_store"
  update-ca-certificates >"$log_dir/update-ca-certificates.log" 2>&1
fi
# Whether a daemon's process started before the CA store or the id ranges last changed (it
# reads them only at start).
started_before_ca() {
  local pid=$1 started changed
  started=$(( $(date +%s) - $(ps -o etimes= -p "$pid" | tr -d ' ') ))
  changed=$(stat -c %Y /etc/ssl/certs/ca-certificates.crt /etc/subuid /etc/subgid | sort -n | tail -n1)
  [ "$started" -lt "$changed" ]
}
# Stops a daemon that started before the CA store or the id ranges last changed; the code below
# starts it again. SIGTERM leaves its containers running.
stop_if_stale() {
  local name=$1 pid
  pid=$(pgrep -x "$name" | head -n1 || true)
  if [ -n "$pid" ] && started_before_ca "$pid"; then
    say "restarting $name once so it reads the test CA and id ranges (its containers keep running)"
    kill -TERM "$pid"
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  fi
}
stop_if_stale incusd

if ! incus info >/dev/null 2>&1; then
  say "starting incusd"
  setsid /usr/libexec/incus/incusd --group root >"$log_dir/incusd.log" 2>&1 </dev/null &
  if ! timeout 60 incus admin waitready; then
    say "incusd did not start: see $log_dir/incusd.log"
    tail -n 20 "$log_dir/incusd.log" >&2 || true
    exit 1
  fi
fi

# The same storage-only setup for Incus and LXD.
preseed='storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      type: disk
      path: /
      pool: default
'
# A storage pool and a default profile with a root disk; no network (test containers need none,
# and `incus admin init --minimal` cannot pick a bridge subnet on these machines).
if ! incus storage show default >/dev/null 2>&1; then
  say "initialising incus (dir pool, no network)"
  printf '%s' "$preseed" | incus admin init --preseed
fi
# LXD 5.0 from Debian beside Incus, for the `--backend lxd` tests: the same storage-only setup.
stop_if_stale lxd
if ! lxc info >/dev/null 2>&1; then
  say "starting lxd"
  setsid /usr/bin/lxd --group root >"$log_dir/lxd.log" 2>&1 </dev/null &
  if ! timeout 60 lxd waitready; then
    say "lxd did not start: see $log_dir/lxd.log"
    tail -n 20 "$log_dir/lxd.log" >&2 || true
    exit 1
  fi
fi
if ! lxc storage show default >/dev/null 2>&1; then
  say "initialising lxd (dir pool, no network)"
  printf '%s' "$preseed" | lxd init --preseed
fi
say "ready: $(nix --version), incus $(incus version 2>/dev/null | tr '\n' ' '), lxd $(lxd --version)"
