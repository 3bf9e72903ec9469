#!/usr/bin/env bash
# README's test command, and what CI runs: makes this machine a test host (Nix, Incus and
# their daemons; needs root on Debian 12) and runs every test: unit and snapshot tests, CLI
# tests against stand-ins, and end-to-end tests against the real Nix and Incus. The main run
# has Nix 2.26 (what users run) first on PATH; then the end-to-end suite runs again with
# Debian 12's Nix 2.8 client, the oldest inx supports; the flake and end-to-end suites with
# Nix 2.34's client, the newest; and the end-to-end, GC and generations suites on Incus 7.0 with
# Nix 2.34 (scripts/incus7.sh).
# With CI set, an end-to-end test that cannot run fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

# Skipped end-to-end and flake tests each add a line here (cargo test hides a passing test's stderr).
target=${CARGO_TARGET_DIR:-$PWD/target}
export INX_TEST_SKIPS=$target/tmp/inx-test-skips
mkdir -p "$target/tmp"

if [ "$(id -u)" = 0 ]; then
  # README's "Try it" first, on the machine as it is (on CI's fresh machine: before anything is
  # installed), and again (it must be safe to run twice). tests/try_it.rs checks what each run
  # printed, what it left running, and its --undo.
  export INX_TEST_TRY_LOG=$target/tmp/try-it
  for n in 1 2; do
    printf '\n=== test: README'"'"'s "Try it", run %s (scripts/try.sh)\n' "$n" >&2
    rc=0
    scripts/try.sh >"$INX_TEST_TRY_LOG.$n.out" 2>"$INX_TEST_TRY_LOG.$n.err" || rc=$?
    echo "$rc" >"$INX_TEST_TRY_LOG.$n.rc"
    tail -n 5 "$INX_TEST_TRY_LOG.$n.err" >&2
  done
  scripts/provision-test-host.sh
else
  echo "test: not root, so the host is not provisioned; end-to-end tests run only if Nix and Incus are ready" >&2
fi

# Both clients, for tests that want a given one.
export INX_TEST_NIX_MODERN=/var/lib/inx-test/nix-2.26/bin
export INX_TEST_NIX_OLD=/usr/bin
export INX_TEST_NIX_NEWEST=/var/lib/inx-test/nix-2.34/bin
# mdBook for the manual's test (tests/docs.rs), as provisioning installs it.
export PATH=/var/lib/inx-test/mdbook/bin:$PATH
# Resolved once: the compatibility run puts /usr/bin first on PATH.
cargo=$(command -v cargo)

cargo fmt --all -- --check
# Lints: Cargo.toml's [lints] table, every warning an error.
"$cargo" clippy --locked --all-targets -- -D warnings

failed=()
# The multi-host bed (scripts/hosts.sh) for tests/hosts.rs, down again however the run ends.
if [ "$(id -u)" = 0 ]; then
  trap 'scripts/hosts.sh down || true; scripts/incus7.sh down || true' EXIT
  scripts/hosts.sh down
  scripts/hosts.sh up
  export INX_TEST_HOSTS_ROOT=${INX_HOSTS_ROOT:-/var/lib/inx-test/hosts}
fi
# One labelled cargo test run with `dir` first on PATH, then the tests it skipped.
run() {
  local label=$1 dir=$2
  shift 2
  : >"$INX_TEST_SKIPS"
  printf '\n=== test: %s (%s)\n' "$label" "$(PATH="$dir:$PATH" nix --version 2>&1 || echo "no nix in $dir")" >&2
  PATH="$dir:$PATH" "$cargo" test --locked "$@" || failed+=("$label")
  printf '=== test: %s: skipped: %s tests\n' "$label" "$(wc -l <"$INX_TEST_SKIPS")" >&2
  sed 's/^/  skipped /' "$INX_TEST_SKIPS" >&2
}
run "main run, Nix 2.26 client" "$INX_TEST_NIX_MODERN" --all-targets
run "compatibility run, end-to-end suite with Debian's Nix 2.8 client" "$INX_TEST_NIX_OLD" --test e2e
# The newest Nix (Debian unstable's 2.34) as the client, against the same 2.26 daemon: the flake
# suite (it evaluates with this Nix as its modern one) and the end-to-end suite.
INX_TEST_NIX_MODERN=$INX_TEST_NIX_NEWEST run "newest run, flake and end-to-end suites with Nix 2.34's client" \
  "$INX_TEST_NIX_NEWEST" --test flake --test e2e

# The end-to-end, GC and generations suites once more on Incus 7.0 with Nix 2.34 (client and
# daemon), Debian unstable's, in the bed of scripts/incus7.sh (its own namespaces and daemons;
# the checkout is bound at the same path there, so the test binaries built here run there as
# they are). Its instances are named apart from the host's (LXC 7 puts their cgroups at the
# shared tree's root).
if [ "$(id -u)" = 0 ]; then
  label="Incus 7.0 bed, end-to-end, GC and generations suites with Debian unstable's Incus 7.0 and Nix 2.34"
  : >"$INX_TEST_SKIPS"
  started=$SECONDS
  scripts/incus7.sh down || true
  if scripts/incus7.sh up; then
    printf '\n=== test: %s (bed up in %s s: %s)\n' "$label" $((SECONDS - started)) \
      "$(scripts/incus7.sh exec nix --version)" >&2
    mapfile -t bins < <("$cargo" test --locked --no-run --test e2e --test gc --test generations \
      --message-format=json | grep '"kind":\["test"\]' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p')
    started=$SECONDS
    [ ${#bins[@]} = 3 ] || failed+=("$label (found ${#bins[@]} of its 3 test binaries)")
    for bin in "${bins[@]}"; do
      scripts/incus7.sh exec env INX_TEST_INSTANCE_PREFIX=i7 "$bin" || failed+=("$label: ${bin##*/}")
    done
    printf '=== test: %s: %s s; skipped: %s tests\n' "$label" $((SECONDS - started)) "$(wc -l <"$INX_TEST_SKIPS")" >&2
    sed 's/^/  skipped /' "$INX_TEST_SKIPS" >&2
  else
    failed+=("$label (the bed did not come up)")
  fi
fi

if [ ${#failed[@]} -gt 0 ]; then
  printf '=== test: FAILED: %s\n' "${failed[@]}" >&2
  exit 1
fi
