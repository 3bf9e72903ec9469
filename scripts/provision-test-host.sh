#!/usr/bin/env bash
# Makes a Debian 12 machine ready for inx's end-to-end tests: the inx host of provision-host.sh
# (Nix 2.8 from Debian's nix-bin, Incus from bookworm-backports, their daemons, a storage-only
# setup) plus the fixture tools, Nix 2.26 (Debian 13's, unpacked into /var/lib/inx-test/nix-2.26,
# whose nix-daemon replaces 2.8's), a Nix 2.34 client (Debian unstable's, in
# /var/lib/inx-test/nix-2.34), LXD and a test CA. Idempotent: what is already there is left
# as it is.
# Needs root. Logs go to $INX_TEST_LOG_DIR (default /var/log/inx-test).
set -euo pipefail

log_dir=${INX_TEST_LOG_DIR:-/var/log/inx-test}
mkdir -p "$log_dir"
say() { printf 'provision: %s\n' "$*" >&2; }
# SIGTERM, then wait up to 10 s for the process to go.
stop_pid() {
  kill -TERM "$1"
  for _ in $(seq 1 100); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.1
  done
}

if [ "$(id -u)" != 0 ]; then
  say "must run as root (it installs packages and starts daemons)"
  exit 1
fi

# The host inx needs (Nix, Incus, busybox-static, git; their daemons; a storage pool), with the
# test-only packages in the same apt run: squashfs-tools for the image fixtures; xz for metadata
# tarballs, openssl for a test CA (and the bench's pseudo-random payloads), Debian's python3 for
# a small HTTPS server on loopback, and LXD 5.0 (what ChromeOS ships) beside Incus.
extra=()
command -v mksquashfs >/dev/null || extra+=(squashfs-tools)
command -v xz >/dev/null || extra+=(xz-utils)
command -v openssl >/dev/null || extra+=(openssl)
command -v update-ca-certificates >/dev/null || extra+=(ca-certificates)
[ -x /usr/bin/python3 ] || extra+=(python3)
command -v lxd >/dev/null || extra+=(lxd)
# sshd for the multi-host bed (scripts/hosts.sh starts its own on 127.0.0.N:22; the image's
# policy-rc.d keeps the package from starting a system sshd).
[ -x /usr/sbin/sshd ] || extra+=(openssh-server)
# systemd-analyze scores the host module's inx-roots unit offline (tests/flake.rs).
command -v systemd-analyze >/dev/null || extra+=(systemd)
INX_LOG_DIR=$log_dir "$(dirname "$0")/provision-host.sh" "${extra[@]}"
# Where no policy-rc.d holds it back, the package starts a system sshd on every address, whose
# wildcard port 22 would keep the bed's sshds off 127.0.0.N:22: stop it when this run installed it.
if [[ " ${extra[*]} " == *" openssh-server "* ]] && command -v systemctl >/dev/null; then
  systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
fi

# A Debian suite's Nix, unpacked beside Debian 12's 2.8 without touching the system's apt
# state: a private apt configuration that reads SUITE from the mirror and key of the existing
# Debian source, `apt-get download` of nix-bin and its libraries, `dpkg -x` into one folder.
# Its binaries run through that suite's own loader (Debian 12's glibc is too old for them), one
# wrapper per name (the nix binary picks its role by argv0).
# unpack_nix SUITE VERSION DIR (VERSION: what `nix --version` must show after "nix (Nix) ").
unpack_nix() {
  local suite=$1 version=$2 dir=$3
  if "$dir/bin/nix" --version 2>/dev/null | grep -qF " $version."; then return 0; fi
  say "installing Nix $version (Debian $suite's nix-bin) into $dir"
  local src=/etc/apt/sources.list.d/debian.sources uri key opt work name deb debs
  uri=$(awk '/^URIs:/ { print $2; exit }' "$src")
  key=$(awk '/^Signed-By:/ { print $2; exit }' "$src")
  [ -n "$uri" ] || { say "cannot find a URIs: line in $src to reuse for $suite"; exit 1; }
  # An inline key block is no file: then apt's own trusted keys check the suite's signature.
  case $key in /*) opt="[signed-by=$key] " ;; *) opt= ;; esac
  work=$dir.tmp
  rm -rf "$work" "$dir.new"
  mkdir -p "$work/lists/partial" "$work/cache/archives/partial" "$work/debs" "$dir.new/bin"
  printf 'deb %s%s %s main\n' "$opt" "$uri" "$suite" >"$work/sources.list"
  # sid's Release file can be past its Valid-Until date between mirror pushes.
  local apt_private=(-o Dir::Etc::sourcelist="$work/sources.list" -o Dir::Etc::sourceparts=/dev/null
    -o Dir::State::Lists="$work/lists" -o Dir::State::status=/dev/null -o Dir::Cache="$work/cache"
    -o APT::Sandbox::User=root -o Acquire::Check-Valid-Until=false)
  local apt_log=$log_dir/nix-$version-apt.log
  apt-get "${apt_private[@]}" update >"$apt_log" 2>&1 \
    || { say "apt-get update for $suite failed: see $apt_log"; exit 1; }
  # nix-bin and the libraries it needs (lib*, zlib1g); not perl, debconf and the like.
  mapfile -t debs < <(apt-cache "${apt_private[@]}" depends --recurse --no-recommends \
    --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances nix-bin \
    | grep -E '^(nix-bin|lib|zlib1g$)' | sort -u)
  (cd "$work/debs" && apt-get "${apt_private[@]}" download "${debs[@]}") >>"$apt_log" 2>&1 \
    || { say "downloading nix-bin from $suite failed: see $apt_log"; exit 1; }
  for deb in "$work"/debs/*.deb; do dpkg -x "$deb" "$dir.new/root"; done
  for name in nix nix-store nix-env nix-build nix-instantiate nix-collect-garbage nix-daemon \
    nix-shell nix-channel nix-copy-closure nix-hash nix-prefetch-url; do
    # Nix names /proc/self/exe (here the loader) as its build hook: name the wrapper instead.
    cat >"$dir.new/bin/$name" <<EOF
#!/bin/sh
R=$dir/root
export NIX_CONFIG="build-hook = $dir/bin/nix __build-remote
\${NIX_CONFIG:-}"
exec "\$R/usr/lib64/ld-linux-x86-64.so.2" --library-path "\$R/usr/lib/x86_64-linux-gnu:\$R/lib/x86_64-linux-gnu" --argv0 $name "\$R/usr/bin/nix" "\$@"
EOF
    chmod 0755 "$dir.new/bin/$name"
  done
  rm -rf "$dir" "$work"
  mv "$dir.new" "$dir"
  "$dir/bin/nix" --version | grep -qF " $version." || { say "Nix $version in $dir does not run"; exit 1; }
}
# Nix 2.26 (Debian 13's), the version users run: its nix-daemon replaces 2.8's below.
modern=/var/lib/inx-test/nix-2.26
unpack_nix trixie 2.26 "$modern"
# Nix 2.34 (Debian unstable's), the newest: a client only. Its daemon, started through the
# unpacked loader, hung at "copying '<flake>' to the store" (its workers likely re-execute
# /proc/self/exe, which is then the loader), so the daemon stays 2.26's.
unpack_nix sid 2.34 /var/lib/inx-test/nix-2.34

# Nix: flakes on, no binary cache (none can be reached from test machines).
conf=/etc/nix/nix.conf
mkdir -p /etc/nix
touch "$conf"
grep -q '^substituters' "$conf" || echo 'substituters =' >>"$conf"
grep -q '^sandbox' "$conf" || echo 'sandbox = false' >>"$conf"

# The daemon is Nix 2.26's, as on the hosts of users with a current Nix (2.8 clients talk to
# it too). A socket file can outlive its daemon: ask the daemon which version it is.
daemon_version() {
  timeout 10 "$modern/bin/nix" store info --store daemon --json 2>/dev/null \
    | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'
}
case $(daemon_version) in
  2.26.*) ;;
  *)
    # Debian's 2.8 daemon (named nix-daemon; 2.26's runs as its loader) on this host's socket,
    # not another mount namespace's: its main process; per-connection children finish.
    for pid in $(pgrep -x nix-daemon || true); do
      parent=$(ps -o ppid= -p "$pid" | tr -d ' ')
      [ "$(ps -o comm= -p "$parent" 2>/dev/null)" = nix-daemon ] && continue
      [ "/proc/$pid/root/nix/var/nix/daemon-socket" -ef /nix/var/nix/daemon-socket ] || continue
      say "stopping the running nix-daemon (pid $pid, $(daemon_version || true)) for Nix 2.26's"
      stop_pid "$pid"
    done
    say "starting nix-daemon (Nix 2.26)"
    rm -f /nix/var/nix/daemon-socket/socket
    mkdir -p /nix/var/nix/daemon-socket
    # From /: a daemon keeps its working folder, which may be a checkout removed later.
    (cd / && exec setsid "$modern/bin/nix-daemon" >"$log_dir/nix-daemon.log" 2>&1 </dev/null) &
    for _ in $(seq 1 100); do
      case $(daemon_version) in 2.26.*) break ;; esac
      sleep 0.1
    done
    case $(daemon_version) in
      2.26.*) ;;
      *) say "nix-daemon 2.26 did not start: see $log_dir/nix-daemon.log"; exit 1 ;;
    esac
    ;;
esac

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
    stop_pid "$pid"
  fi
}
stop_if_stale incusd
# An incusd started before its socket was given to incus-admin (provision-host.sh): once more.
socket=/var/lib/incus/unix.socket
if [ -S "$socket" ] && [ "$(stat -c %G "$socket")" != incus-admin ]; then
  pid=$(pgrep -x incusd | head -n1 || true)
  if [ -n "$pid" ]; then
    say "restarting incusd once so that its socket belongs to incus-admin (its containers keep running)"
    stop_pid "$pid"
  fi
fi

# Started again if stop_if_stale stopped it (provision-host.sh starts what does not answer).
INX_LOG_DIR=$log_dir "$(dirname "$0")/provision-host.sh"

# LXD 5.0 from Debian beside Incus, for the `--backend lxd` tests, with Incus's storage-only
# setup (provision-host.sh).
stop_if_stale lxd
if ! lxc info >/dev/null 2>&1; then
  say "starting lxd"
  # From /: a daemon keeps its working folder, which may be a checkout removed later.
  (cd / && exec setsid /usr/bin/lxd --group root >"$log_dir/lxd.log" 2>&1 </dev/null) &
  if ! timeout 60 lxd waitready; then
    say "lxd did not start: see $log_dir/lxd.log"
    tail -n 20 "$log_dir/lxd.log" >&2 || true
    exit 1
  fi
fi
if ! lxc storage show default >/dev/null 2>&1; then
  say "initialising lxd (dir pool, no network)"
  lxd init --preseed <"$(dirname "$0")/storage-only.yaml"
fi
# A user in incus-admin, for the end-to-end test of inx without sudo (tests/e2e/users.rs), and
# in nix-users: Debian's nix-bin lets only that group reach the daemon's socket.
if ! id inx-e2e-user >/dev/null 2>&1; then
  say "adding the user inx-e2e-user (groups incus-admin, nix-users)"
  useradd --create-home --groups incus-admin,nix-users --shell /bin/sh inx-e2e-user
elif ! id -nG inx-e2e-user | grep -qw nix-users; then
  usermod -aG nix-users inx-e2e-user
fi
# mdBook, which builds the manual (docs/, book.toml; tests/docs.rs): not in Debian, so from
# crates.io with cargo (about 2.5 minutes on two cores, once), without its web server.
mdbook_version=0.5.4
if [ "$(/var/lib/inx-test/mdbook/bin/mdbook --version 2>/dev/null)" != "mdbook v$mdbook_version" ]; then
  say "installing mdbook $mdbook_version (cargo install)"
  cargo install --locked --quiet --no-default-features --version "$mdbook_version" \
    --root /var/lib/inx-test/mdbook mdbook
fi
say "ready: $("$modern/bin/nix" --version), $(/var/lib/inx-test/nix-2.34/bin/nix --version) (client) and $(/usr/bin/nix --version) (daemon $(daemon_version)), incus $(incus version 2>/dev/null | tr '\n' ' '), lxd $(lxd --version)"
