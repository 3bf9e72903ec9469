#!/usr/bin/env bash
# README's benchmark command: makes this machine a test host (Nix, Incus and their daemons, as
# scripts/test.sh does; needs root on Debian 12), then runs `cargo bench --bench scale`. The
# tables (Markdown) go to stdout, progress to stderr. INX_BENCH_RUNS sets the runs per figure;
# INX_BENCH_ONLY (say `image`, or `new,list`) runs only those scenarios (see benches/scale.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  scripts/provision-test-host.sh
  # The multi-host bed for the `hosts` scenario, down again however the bench ends.
  trap 'scripts/hosts.sh down || true' EXIT
  scripts/hosts.sh up
  export INX_TEST_HOSTS_ROOT=${INX_HOSTS_ROOT:-/var/lib/inx-test/hosts}
  # Incus's limits for many instances (a Debian 12 host's 128 inotify instances and 200 keys
  # run out long before 500 containers): the kernel's and every running incusd's, only raised.
  scripts/host-limits.sh
else
  echo "bench: not root, so the host is not provisioned; the bench needs Nix and Incus ready" >&2
fi

# The same client as the test command's main run: Nix 2.26 (what users run), where provisioned.
modern=/var/lib/inx-test/nix-2.26/bin
[ -x "$modern/nix" ] && PATH="$modern:$PATH"
cargo bench --locked --bench scale
