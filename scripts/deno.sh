#!/usr/bin/env bash
# Runs the pinned Deno (2.9.6). Uses `deno` from PATH when it is that version, otherwise installs
# it once from the npm registry into ~/.cache/hecate/deno (the only registry reachable in CI).
set -euo pipefail
DENO_VERSION=2.9.6
if command -v deno >/dev/null 2>&1 && deno --version 2>/dev/null | head -1 | grep -q "deno ${DENO_VERSION} "; then
  exec deno "$@"
fi
prefix="${HECATE_DENO_PREFIX:-$HOME/.cache/hecate/deno-${DENO_VERSION}}"
bin="$prefix/node_modules/.bin/deno"
if [ ! -x "$bin" ]; then
  mkdir -p "$prefix"
  npm install --silent --no-audit --no-fund --prefix "$prefix" "deno@${DENO_VERSION}" >&2
fi
exec "$bin" "$@"
