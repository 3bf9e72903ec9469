#!/usr/bin/env bash
# The Incus 7.0 bed: Debian unstable's Incus 7.0 and Nix 2.34 on this Debian 12 machine, each
# with its own daemon, in a namespace of their own (the test-host notes' recipe). Needs root.
#
#   scripts/incus7.sh up            bring the bed up (a running bed is left as it is)
#   scripts/incus7.sh exec CMD...   run CMD inside it, in the checkout (as root, its PATH,
#                                   this environment's CI, TERM, INX_TEST_* and RUST_*)
#   scripts/incus7.sh down          stop every process of the bed and reset its state; the
#                                   unpacked Debian unstable tree is kept for the next `up`
#   scripts/incus7.sh purge         down, and remove the tree too
#
# Layout, under $INX_INCUS7_ROOT (default /var/lib/inx-test/incus7):
#   sys/        debootstrap's minbase of sid plus incus, nix-bin, busybox-static and the few
#               tools the end-to-end tests call; built once and kept (marker sys/.inx-ready
#               records what it holds); its /nix, /var/lib/incus, /tmp and logs are reset on
#               every `up`, so each run starts from an empty store and an empty Incus
#   holder.pid  the host PID of the bed's PID 1
#   log/        debootstrap's and apt's logs; log/bed/ the bed's own (its PID 1, nix-daemon,
#               incusd; bound at /var/log/inx-bed inside)
#
# The bed is a new mount, network and PID namespace entered with pivot_root (a chroot may not
# create the user namespaces unprivileged containers need), with a cgroup2-only mount (Incus 7's
# LXC refuses this machine's v1/v2 hybrid) that has no controllers: CPU, memory and other
# limits are not enforced there. Its network has loopback only. Killing its PID 1 ends every
# process in it, containers included. The checkout this script is in (and CARGO_TARGET_DIR,
# when it is elsewhere) is bound at the same path inside, so a test binary built on the host
# runs there as is.
set -euo pipefail

base=${INX_INCUS7_ROOT:-/var/lib/inx-test/incus7}
sys=$base/sys
repo=$(cd "$(dirname "$0")/.." && pwd)
# What the tree holds; a change here rebuilds it.
packages=(incus nix-bin busybox-static git procps iproute2 systemd-standalone-tmpfiles)
marker="sid minbase + ${packages[*]}"
say() { printf 'incus7: %s\n' "$*" >&2; }
bed_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

holder() { cat "$base/holder.pid" 2>/dev/null; }
# Whether the recorded PID is still the bed's PID 1 (not a process that reuses its number):
# its root holds the tree's marker.
alive() {
  local h
  h=$(holder) && [ -n "$h" ] && [ "/proc/$h/root/.inx-ready" -ef "$sys/.inx-ready" ]
}

# CMD inside the bed, with a clean environment.
in_bed() {
  local keep=() v
  for v in $(compgen -e); do
    case $v in CI | TERM | INX_TEST_* | RUST_*) keep+=("$v=${!v}") ;; esac
  done
  # In the checkout, as cargo runs tests (entering the mount namespace leaves the process in
  # its root; the checkout is bound at the same path there).
  nsenter -t "$(holder)" -m -n -p -- env -i -C "$repo" PATH="$bed_path" HOME=/root LANG=C.UTF-8 \
    "${keep[@]}" "$@"
}

answers() { alive && in_bed incus admin waitready --timeout "${1:-1}" >/dev/null 2>&1; }

# Debian unstable, from the mirror and key of this machine's own Debian source.
build_tree() {
  local src=/etc/apt/sources.list.d/debian.sources uri key
  uri=$(awk '/^URIs:/ { print $2; exit }' "$src")
  key=$(awk '/^Signed-By:/ { print $2; exit }' "$src")
  [ -n "$uri" ] || { say "cannot find a URIs: line in $src"; exit 1; }
  command -v debootstrap >/dev/null || {
    say "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >"$base/log/apt.log" 2>&1
  }
  local new=$sys.new
  rm -rf "$new"
  say "unpacking Debian unstable (minbase) into $sys"
  local keyring=()
  case $key in /*) keyring=(--keyring="$key") ;; esac
  debootstrap --variant=minbase "${keyring[@]}" sid "$new" "$uri" >"$base/log/debootstrap.log" 2>&1 \
    || { say "debootstrap failed: see $base/log/debootstrap.log"; tail -n 5 "$base/log/debootstrap.log" >&2; exit 1; }
  # sid's Release file may be past its Valid-Until; no daemon may start from a package script.
  echo 'Acquire::Check-Valid-Until "false";' >"$new/etc/apt/apt.conf.d/99inx-bed"
  printf '#!/bin/sh\nexit 101\n' >"$new/usr/sbin/policy-rc.d"
  chmod 0755 "$new/usr/sbin/policy-rc.d"
  say "installing ${packages[*]} there"
  unshare -m --propagation private -- sh -ec "
    mount -t proc proc '$new/proc'
    mount --rbind /dev '$new/dev'
    mount --rbind /sys '$new/sys'
    chroot '$new' env -i PATH='$bed_path' DEBIAN_FRONTEND=noninteractive apt-get update
    chroot '$new' env -i PATH='$bed_path' DEBIAN_FRONTEND=noninteractive \
      apt-get install -y --no-install-recommends ${packages[*]}
    chroot '$new' env -i PATH='$bed_path' apt-get clean
  " >"$base/log/apt.log" 2>&1 || { say "installing into sid failed: see $base/log/apt.log"; tail -n 5 "$base/log/apt.log" >&2; exit 1; }
  # Nix as the tests run it: no build users, no binary cache (none is reachable), flakes on, and
  # a local, empty global registry (Nix 2.34 fetches it before resolving any indirect reference).
  mkdir -p "$new/etc/nix"
  cat >"$new/etc/nix/nix.conf" <<'EOF'
build-users-group =
substituters =
sandbox = false
experimental-features = nix-command flakes
flake-registry = /etc/nix/registry.json
EOF
  echo '{"flakes":[],"version":2}' >"$new/etc/nix/registry.json"
  # The unprivileged user of tests/e2e/users.rs, as scripts/provision-test-host.sh adds it.
  chroot "$new" groupadd -f nix-users
  chroot "$new" groupadd -f incus-admin
  chroot "$new" useradd --create-home --groups incus-admin,nix-users --shell /bin/sh inx-e2e-user
  echo "$marker" >"$new/.inx-ready"
  rm -rf "$sys"
  mv "$new" "$sys"
}

# Empties what a run leaves: the store, Incus's state, temporary files.
reset_state() {
  rm -rf "$sys/nix" "$sys/var/lib/incus" "$sys/var/cache/incus" "$sys/var/log/incus" "$sys/tmp"
  mkdir -p "$sys/nix" "$sys/var/lib/incus" "$sys/tmp" "$sys/var/log/inx-bed"
  chmod 1777 "$sys/tmp"
  rm -rf "$base/log/bed"
  mkdir -p "$base/log/bed"
}

# PID 1 of the bed. Before pivot_root: binds of the checkout (and the target dir) and the log
# folder; after: proc of the new PID namespace, /dev from the old root, a sysfs of the new
# network namespace (the old root's shows the host's interfaces, so Incus would not find a
# bridge it made here), a plain cgroup2 on /sys/fs/cgroup, a tmpfs on /run, loopback up; then
# nix-daemon and incusd, and bash reaping
# whatever ends in the namespace. Never give nix-daemon NIX_REMOTE=daemon (it would connect to
# itself, forking until the machine runs out of PIDs).
start() {
  local binds=("$repo")
  local target=${CARGO_TARGET_DIR:-}
  if [ -n "$target" ]; then
    target=$(realpath -m "$target")
    case $target/ in "$repo"/*) ;; *) binds+=("$target") ;; esac
  fi
  local script
  script=$(cat <<EOF
set -e
read -r pid _ </proc/self/stat
echo "\$pid" >'$base/holder.pid.new'
mount --rbind '$sys' '$sys'
for d in ${binds[*]@Q}; do mkdir -p "$sys\$d"; mount --rbind "\$d" "$sys\$d"; done
mount --bind '$base/log/bed' '$sys/var/log/inx-bed'
cd '$sys'
mkdir -p .old-root
pivot_root . .old-root
cd /
mount -t proc proc /proc
mount --rbind /.old-root/dev /dev
mount -t sysfs sysfs /sys
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lock
umount -l /.old-root
rmdir /.old-root
ip link set lo up
export PATH='$bed_path' HOME=/root
setsid sh -c 'ulimit -n \$(ulimit -Hn); exec nix-daemon' </dev/null >/var/log/inx-bed/nix-daemon.log 2>&1 &
setsid /usr/libexec/incus/incusd --group incus-admin </dev/null >/var/log/inx-bed/incusd.log 2>&1 &
exec bash -c 'trap "" TERM INT; while :; do sleep 3600 & wait \$!; done'
EOF
)
  rm -f "$base/holder.pid" "$base/holder.pid.new"
  setsid unshare -m -n -p --fork --propagation private -- env -i PATH="$PATH" bash -c "$script" \
    </dev/null >"$base/log/bed/holder.log" 2>&1 &
  local i
  for i in $(seq 100); do [ -s "$base/holder.pid.new" ] && break; sleep 0.05; done
  [ -s "$base/holder.pid.new" ] || { say "the bed did not start: see $base/log/bed/holder.log"; exit 1; }
  mv "$base/holder.pid.new" "$base/holder.pid"
}

up() {
  [ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
  if answers; then return 0; fi
  down_processes
  mkdir -p "$base/log"
  if [ "$(cat "$sys/.inx-ready" 2>/dev/null)" != "$marker" ]; then build_tree; fi
  reset_state
  start
  local i
  for i in $(seq 200); do
    in_bed test -S /nix/var/nix/daemon-socket/socket 2>/dev/null && break
    sleep 0.1
  done
  in_bed test -S /nix/var/nix/daemon-socket/socket || { say "nix-daemon did not start: see $base/log/bed/holder.log and nix-daemon.log"; exit 1; }
  if ! in_bed incus admin waitready --timeout 60 >/dev/null; then
    say "incusd did not start: see $base/log/bed/incusd.log"
    tail -n 20 "$base/log/bed/incusd.log" >&2 || true
    exit 1
  fi
  # An inx host's storage-only setup, and no image updates (nothing is fetched from here).
  in_bed incus admin init --preseed <"$repo/scripts/storage-only.yaml"
  in_bed incus config set images.auto_update_interval=0
  say "up: $(in_bed incus version | tr '\n' ' '), $(in_bed nix --version); PID 1 of the bed is $(holder) on the host"
}

# Kills the bed's PID 1, which ends every process in its PID namespace; its mounts go with it.
down_processes() {
  local h i
  alive || { rm -f "$base/holder.pid"; return 0; }
  h=$(holder)
  # LXC 7 makes lxc.payload.NAME and lxc.monitor.NAME at the root of the cgroup2 tree, which
  # the bed shares with the host: note the instances, to remove what is left of theirs.
  local names=()
  mapfile -t names < <(in_bed incus list --all-projects --format csv --columns n 2>/dev/null || true)
  kill -KILL "$h" 2>/dev/null || true
  for i in $(seq 100); do kill -0 "$h" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$h" 2>/dev/null && { say "the bed's PID 1 ($h) does not end"; exit 1; }
  rm -f "$base/holder.pid"
  local cg n
  cg=$(findmnt -n -t cgroup2 -o TARGET | head -n1)
  if [ -n "$cg" ]; then
    for n in "${names[@]}"; do
      [ -n "$n" ] || continue
      find "$cg/lxc.payload.$n" "$cg/lxc.monitor.$n" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
  fi
}

down() {
  down_processes
  [ -d "$sys" ] && reset_state
  say "down"
}

purge() {
  down
  rm -rf "$base"
  say "purged $base"
}

case ${1:-} in
  up) up ;;
  exec)
    shift
    alive || { say "the bed is not up (scripts/incus7.sh up)"; exit 1; }
    in_bed "$@"
    ;;
  down) down ;;
  purge) purge ;;
  *) echo "usage: $0 up|exec CMD...|down|purge" >&2; exit 2 ;;
esac
