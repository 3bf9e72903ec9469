#!/usr/bin/env bash
# Raises this machine's limits to those Incus documents for hosts with many instances, and never
# lowers one: the sysctls of lib/modules/incus-sysctl.conf, and the open files and locked memory
# of every running incusd (lib/modules/incus-service-limits.conf; instances it starts later
# inherit them). For a host where nothing applies those files, such as the test host (PID 1 is
# not systemd: no /etc/sysctl.d at boot, incusd started by hand); scripts/bench.sh runs it. The
# changes last until reboot (or incusd's restart). docs/modules.md says how to keep them.
#   scripts/host-limits.sh            raise them (root)
#   scripts/host-limits.sh --dry-run  only say what it would raise
# It says what it raised and what it left: already as high, absent from this kernel, or refused
# (a kernel refuses some values, and a container or namespace most writes). It fails only when
# it cannot read the two files, or is not root without --dry-run.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf 'host-limits: %s\n' "$*" >&2; }
dry=
case "${1:-}" in
  '') ;;
  --dry-run) dry=1 ;;
  *)
    say "unknown argument '$1' (--dry-run or nothing)"
    exit 2
    ;;
esac
if [ -z "$dry" ] && [ "$(id -u)" != 0 ]; then
  say "must run as root to raise limits (--dry-run shows them)"
  exit 1
fi

sysctls=lib/modules/incus-sysctl.conf
unit=lib/modules/incus-service-limits.conf
# `key = value` lines, comments and blank lines skipped.
wanted=$(sed -n 's/^\([a-z0-9_.-]*\) *= *\([0-9]*\) *$/\1 \2/p' "$sysctls")
nofile=$(sed -n 's/^LimitNOFILE=\([0-9]*\)$/\1/p' "$unit")
memlock=$(sed -n 's/^LimitMEMLOCK=\(.*\)$/\1/p' "$unit")
[ "$memlock" = infinity ] && memlock=unlimited
if [ -z "$wanted" ] || [ -z "$nofile" ] || [ -z "$memlock" ]; then
  say "no limits read from $sysctls and $unit"
  exit 1
fi

# Sysctls: each file under /proc/sys, compared as a number.
while read -r key want; do
  file=/proc/sys/${key//.//}
  if ! have=$(cat "$file" 2>/dev/null); then
    say "$key: not in this kernel (or this namespace), left"
  elif [ "$have" -ge "$want" ] 2>/dev/null; then
    say "$key = $have, at least $want already"
  elif [ -n "$dry" ]; then
    say "$key = $have, would raise to $want"
  elif (echo "$want" >"$file") 2>/dev/null && [ "$(cat "$file")" = "$want" ]; then
    say "$key: raised from $have to $want"
  else
    say "$key = $have: the kernel refused $want, left"
  fi
done <<<"$wanted"

# Whether limit $1 is below $2 (either a number or `unlimited`).
below() { [ "$1" != unlimited ] && { [ "$2" = unlimited ] || [ "$1" -lt "$2" ]; }; }
# Running incusd processes (the main one and, on a test bed, its hosts'): each soft and hard
# limit raised to the wanted one where it is lower.
pids=$(pgrep -x incusd || true)
[ -n "$pids" ] || say "no incusd runs: its limits are left to whatever starts it"
for pid in $pids; do
  for limit in "nofile $nofile" "memlock $memlock"; do
    read -r name want <<<"$limit"
    if ! read -r soft hard < <(prlimit --pid "$pid" "--$name" --output SOFT,HARD --noheadings 2>/dev/null); then
      say "incusd $pid: cannot read its $name limit, left"
      continue
    fi
    new_soft=$soft new_hard=$hard
    below "$soft" "$want" && new_soft=$want
    below "$hard" "$want" && new_hard=$want
    if [ "$new_soft:$new_hard" = "$soft:$hard" ]; then
      say "incusd $pid: $name $soft:$hard, at least $want already"
    elif [ -n "$dry" ]; then
      say "incusd $pid: $name $soft:$hard, would raise to $new_soft:$new_hard"
    elif prlimit --pid "$pid" "--$name=$new_soft:$new_hard" 2>/dev/null; then
      say "incusd $pid: $name raised from $soft:$hard to $new_soft:$new_hard"
    else
      say "incusd $pid: $name $soft:$hard: raising to $new_soft:$new_hard was refused, left"
    fi
  done
done
