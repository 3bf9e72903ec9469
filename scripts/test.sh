#!/usr/bin/env bash
# README's test command, and what CI runs: makes this machine a test host (Nix, Incus and
# their daemons; needs root on Debian 12) and runs every test: unit and snapshot tests, CLI
# tests against stand-ins, and end-to-end tests against the real Nix and Incus.
# With CI set, an end-to-end test that cannot run fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" = 0 ]; then
  scripts/provision-test-host.sh
else
  echo "test: not root, so the host is not provisioned; end-to-end tests run only if Nix and Incus are ready" >&2
fi

cargo fmt --all -- --check
cargo test --locked --all-targets
