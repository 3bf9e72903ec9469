#!/usr/bin/env bash
# The multi-host test bed: several "hosts" on this one machine, each with its own /nix/store,
# nix-daemon, sshd and incusd, all on loopback. Needs root, Nix, Incus and openssh-server
# (scripts/provision-test-host.sh installs them).
#
#   scripts/hosts.sh up       bring the bed up (idempotent: a running bed is left as it is)
#   scripts/hosts.sh down     stop every process of the bed and remove it (fine when there is none)
#   scripts/hosts.sh status   print each host and whether it answers
#   scripts/hosts.sh restart-incus N   restart host N's incusd (its containers stay as they are)
#
# Hosts: host2 (127.0.0.2, Incus cluster member `member2`, bootstraps the cluster), host3
# (127.0.0.3, joins as `member3`), host4 (127.0.0.4, a standalone Incus server). Host N lives
# under $INX_HOSTS_ROOT/hostN: a mount-namespace holder binds hostN/nix on /nix (and Incus'
# run, log and cache dirs, and a resolv.conf that points at 127.0.0.1 only), and every daemon
# of host N runs in that namespace. The daemons' nix-daemon is Debian's (/usr/bin/nix-daemon,
# Nix 2.8): the recipe in the test-host notes was verified with it and it is what `nix-store
# --serve` over ssh runs on each host.
#
# The main host reaches the bed with files under $INX_HOSTS_ROOT only, never root's own config:
#   INCUS_CONF=$INX_HOSTS_ROOT/incus-client   Incus client with remotes h2 (the cluster, via
#                                             member2) and h4
#   NIX_SSHOPTS="-F $INX_HOSTS_ROOT/ssh/config"  ssh for `nix copy --to ssh://root@127.0.0.N`
set -euo pipefail

root=${INX_HOSTS_ROOT:-/var/lib/inx-test/hosts}
hosts=(2 3 4)
say() { printf 'hosts: %s\n' "$*" >&2; }

# Run a command in host N's namespace, with its Incus.
in_host() {
  local n=$1
  shift
  local r=$root/host$n
  nsenter -t "$(cat "$r/holder.pid")" -m -- env INCUS_DIR="$r/incus" \
    PATH="/usr/libexec/incus:$PATH" "$@"
}

holder_alive() {
  local r=$root/host$1
  [ -f "$r/holder.pid" ] && kill -0 "$(cat "$r/holder.pid")" 2>/dev/null
}

# PIDs of every process whose mount table mentions the bed's root (holders, nix-daemons and the
# children they move into their own namespaces, sshd, incusd, LXC monitors, containers).
bed_pids() {
  local f pid
  for f in /proc/[0-9]*/mountinfo; do
    pid=${f#/proc/}
    pid=${pid%/mountinfo}
    [ "$pid" = $$ ] && continue
    grep -qF " $root/" "$f" 2>/dev/null && echo "$pid"
  done
  return 0
}

ssh_setup() {
  mkdir -p "$root/ssh"
  chmod 700 "$root/ssh"
  [ -f "$root/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C inx-hosts -f "$root/ssh/id_ed25519"
  cat >"$root/ssh/config" <<EOF
Host 127.0.0.2 127.0.0.3 127.0.0.4
  User root
  IdentityFile $root/ssh/id_ed25519
  IdentitiesOnly yes
  UserKnownHostsFile $root/ssh/known_hosts
  StrictHostKeyChecking accept-new
  BatchMode yes
EOF
}

host_up() {
  local n=$1 r=$root/host$n
  if holder_alive "$n" && in_host "$n" incus admin waitready --timeout 1 >/dev/null 2>&1; then
    return 0
  fi
  mkdir -p "$r"/{nix,run-incus,log-incus,cache-incus,incus,ssh} /run/incus /var/log/incus /var/cache/incus /run/sshd
  echo 'nameserver 127.0.0.1' >"$r/resolv.conf"
  setsid unshare --mount --propagation private --fork -- sh -ec "
    mount --bind '$r/nix' /nix
    mount --bind '$r/run-incus' /run/incus
    mount --bind '$r/log-incus' /var/log/incus
    mount --bind '$r/cache-incus' /var/cache/incus
    mount --bind '$r/resolv.conf' /etc/resolv.conf
    echo \$\$ > '$r/holder.pid.new'
    exec sleep infinity" </dev/null >/dev/null 2>&1 &
  local i
  for i in $(seq 100); do [ -s "$r/holder.pid.new" ] && break; sleep 0.05; done
  mv "$r/holder.pid.new" "$r/holder.pid"
  # Wait until the binds are in place.
  for i in $(seq 100); do
    in_host "$n" test -e /nix/.inx-host$n 2>/dev/null && break
    touch "$r/nix/.inx-host$n"
    sleep 0.05
  done

  in_host "$n" nix-store --init
  in_host "$n" setsid sh -c 'ulimit -n $(ulimit -Hn); exec nix-daemon' </dev/null >"$r/nix-daemon.log" 2>&1 &

  [ -f "$r/ssh/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$r/ssh/host_key"
  cp "$root/ssh/id_ed25519.pub" "$r/ssh/authorized_keys"
  # host4 also listens on 2222, for the tests of a declared ssh port.
  local extra=
  [ "$n" = 4 ] && extra="ListenAddress 127.0.0.$n:2222"
  cat >"$r/ssh/sshd_config" <<EOF
ListenAddress 127.0.0.$n:22
$extra
HostKey $r/ssh/host_key
AuthorizedKeysFile $r/ssh/authorized_keys
PidFile none
UsePAM no
PermitRootLogin prohibit-password
PasswordAuthentication no
StrictModes no
EOF
  in_host "$n" setsid /usr/sbin/sshd -D -e -f "$r/ssh/sshd_config" </dev/null >"$r/sshd.log" 2>&1 &
  in_host "$n" setsid incusd --group root </dev/null >"$r/incusd.log" 2>&1 &
  in_host "$n" incus admin waitready --timeout 60
}

preseed() {
  local n=$1 cluster=$2
  cat <<EOF
config:
  core.https_address: 127.0.0.$n:8443
  images.auto_update_interval: "0"
storage_pools:
- name: default
  driver: dir
profiles:
- name: default
  devices:
    root:
      path: /
      pool: default
      type: disk
$cluster
EOF
}

initialised() { in_host "$1" incus storage show default >/dev/null 2>&1; }

up() {
  [ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }
  command -v /usr/sbin/sshd >/dev/null || { say "needs openssh-server (/usr/sbin/sshd)"; exit 1; }
  if ss -Hltn 2>/dev/null | awk '{print $4}' | grep -qxE '(0\.0\.0\.0|\*|\[::\]):(22|8443)'; then
    say "a listener on every address holds port 22 or 8443 (a system sshd or incusd?): the bed's hosts cannot bind 127.0.0.N"
    exit 1
  fi
  mkdir -p "$root"
  ssh_setup
  local n
  for n in "${hosts[@]}"; do host_up "$n"; done

  initialised 2 || preseed 2 "cluster: {server_name: member2, enabled: true}" | in_host 2 incus admin init --preseed
  initialised 4 || preseed 4 "" | in_host 4 incus admin init --preseed
  if ! initialised 3; then
    in_host 2 incus cluster remove --force --yes member3 >/dev/null 2>&1 || true
    local jt
    jt=$(in_host 2 incus cluster add member3 -q)
    preseed 3 "cluster:
  enabled: true
  server_name: member3
  server_address: 127.0.0.3:8443
  cluster_token: $jt
  member_config:
  - {entity: storage-pool, name: default, key: source, value: \"\"}" | in_host 3 incus admin init --preseed
  fi

  export INCUS_CONF=$root/incus-client
  mkdir -p "$INCUS_CONF"
  local name
  for name in 2 4; do
    if ! incus remote list -f csv 2>/dev/null | grep -q "^h$name,"; then
      local tok
      tok=$(in_host "$name" incus config trust add "main-h$name-$RANDOM" -q)
      incus remote add "h$name" "$tok" >/dev/null
    fi
  done
  say "up: host2 (member2), host3 (member3), host4 under $root; INCUS_CONF=$INCUS_CONF NIX_SSHOPTS='-F $root/ssh/config'"
}

down() {
  local pids pass
  for pass in 1 2 3 4 5 6 7 8 9 10; do
    mapfile -t pids < <(bed_pids)
    [ ${#pids[@]} -eq 0 ] && break
    if [ "$pass" -lt 6 ]; then kill -TERM "${pids[@]}" 2>/dev/null || true; else kill -KILL "${pids[@]}" 2>/dev/null || true; fi
    sleep 0.3
  done
  mapfile -t pids < <(bed_pids)
  [ ${#pids[@]} -eq 0 ] || { say "down: processes still hold $root: ${pids[*]}"; exit 1; }
  # Mounts the daemons left in this namespace (Incus' shmounts, guest API), deepest first.
  local m
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(awk -v r="$root/" 'index($5, r) == 1 {print $5}' /proc/self/mountinfo | sort -r)
  rm -rf "$root"
  say "down: $root removed"
}

status() {
  local n rc=0
  for n in "${hosts[@]}"; do
    if holder_alive "$n" && in_host "$n" incus admin waitready --timeout 1 >/dev/null 2>&1; then
      say "host$n (127.0.0.$n): up"
    else
      say "host$n (127.0.0.$n): down"
      rc=1
    fi
  done
  return $rc
}

# Restarts host N's incusd as a reboot of that host would (for tests of what Incus does at its
# start, such as boot.autostart): SIGTERM ends the daemon and leaves its containers as they
# are, then it starts again in the host's namespace.
restart_incus() {
  local n=$1 r=$root/host$1 pid found=
  for pid in $(pgrep -x incusd); do
    if tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx "INCUS_DIR=$r/incus"; then
      found=$pid
    fi
  done
  [ -n "$found" ] || { say "host$n: no incusd runs"; return 1; }
  kill -TERM "$found"
  for _ in $(seq 300); do kill -0 "$found" 2>/dev/null || break; sleep 0.1; done
  in_host "$n" setsid incusd --group root </dev/null >>"$r/incusd.log" 2>&1 &
  in_host "$n" incus admin waitready --timeout 60
  say "host$n: incusd restarted"
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  restart-incus) restart_incus "${2:?which host: 2, 3 or 4}" ;;
  *) echo "usage: $0 up|down|status|restart-incus N" >&2; exit 2 ;;
esac
