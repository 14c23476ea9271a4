#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need (PostgreSQL, MariaDB,
# OpenSSH, openssl, zsh, fish and chromium from Debian packages; never starting the system
# services), fetches the pinned Deno from npm if needed, runs every test, and ends with the plain line
# "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
export NO_COLOR=1
unset RUST_BACKTRACE

bash scripts/install_test_deps.sh || { echo "test dependencies could not be installed" >&2; exit 1; }
scripts/deno.sh install --frozen --quiet || { echo "deno install failed" >&2; exit 1; }

log=$(mktemp)
trap 'rm -f "$log"' EXIT
scripts/deno.sh task test "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# Deno's summary looks like "ok | 12 passed (3 steps) | 0 failed (2s)"; CI reads a plain line.
summary=$(grep -E '^(ok|FAILED) \| [0-9]+ passed' "$log" | tail -n 1)
passed=$(sed -E 's/.*\| ([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| ([0-9]+) failed.*/\1/' <<<"$summary")
if [ -z "$summary" ]; then
  echo "no test summary found" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
echo "${passed} passed, ${failed} failed"
exit "$rc"
