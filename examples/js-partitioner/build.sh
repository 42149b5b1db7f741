#!/usr/bin/env bash
# Builds partitioner.js into target/examples/js_partitioner.wasm with the componentize-js API
# (build.mjs; the `jco componentize` CLI is not used). Needs node and this directory's
# node_modules (`npm install` here, which tests/setup does when STROM_EXAMPLES=all); without
# them this script exits 77 (skipped).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="$root/target/examples/js_partitioner.wasm"
mkdir -p "$(dirname "$out")"
rm -f "$out"

if ! command -v node >/dev/null || [ ! -d "$here/node_modules/@bytecodealliance/componentize-js" ]; then
  echo "js-partitioner: skipped: needs node and componentize-js (cd examples/js-partitioner && npm install)" >&2
  exit 77
fi
node "$here/build.mjs" "$out.tmp"
mv "$out.tmp" "$out"
echo "js-partitioner: wrote $out ($(stat -c %s "$out") bytes)"
