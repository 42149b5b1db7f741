#!/usr/bin/env bash
# Builds partitioner.zig into target/examples/zig_partitioner.wasm:
#   wit-bindgen c         C glue and header for world partitioner-plugin
#   zig translate-c       the header as the Zig module `wit`
#   zig build-exe         a core wasm32-wasi reactor: partitioner.zig, the C glue, wasi-libc
#   wasm-tools            component new
# Zig comes from the `ziglang` PyPI package (python3 -m ziglang) or PATH, and must be the
# pinned version: Zig's language and CLI change between releases. Without it this script
# exits 77 (skipped). Zig's caches go under target/examples/zig-partitioner/.
set -euo pipefail
ZIG_VERSION=0.17.0

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="$root/target/examples"
work="$out_dir/zig-partitioner"
out="$out_dir/zig_partitioner.wasm"
mkdir -p "$work"
rm -f "$out"

if [ "$(python3 -m ziglang version 2>/dev/null)" = "$ZIG_VERSION" ]; then
  zig() { python3 -m ziglang "$@"; }
elif [ "$(command -v zig >/dev/null && zig version 2>/dev/null)" = "$ZIG_VERSION" ]; then
  zig() { command zig "$@"; }
else
  echo "zig-partitioner: skipped: no Zig $ZIG_VERSION (pip install ziglang==$ZIG_VERSION)" >&2
  exit 77
fi
tool() {
  if [ -x "$root/target/tools/bin/$1" ]; then echo "$root/target/tools/bin/$1"; else command -v "$1" || echo "$1"; fi
}
wit_bindgen="${WIT_BINDGEN:-$(tool wit-bindgen)}"
wasm_tools="${WASM_TOOLS:-$(tool wasm-tools)}"
for t in "$wit_bindgen" "$wasm_tools"; do
  if ! command -v "$t" >/dev/null; then
    echo "zig-partitioner: skipped: $t not found (tests/setup installs it)" >&2
    exit 77
  fi
done

rm -rf "$work/gen"
# wit-bindgen lists the files it writes on stderr: show that only when it fails.
if ! log=$("$wit_bindgen" c --world partitioner-plugin --out-dir "$work/gen" "$root/wit" 2>&1); then
  echo "$log" >&2
  exit 1
fi
caches=(--cache-dir "$work/cache" --global-cache-dir "$work/global-cache")
zig translate-c -target wasm32-wasi -lc "${caches[@]}" -I "$work/gen" "$work/gen/partitioner_plugin.h" >"$work/wit.zig"
# ReleaseSmall: the safety checks of ReleaseSafe pull in std's WASI-using panic machinery.
zig build-exe -target wasm32-wasi -O ReleaseSmall -fno-entry -mexec-model=reactor -lc "${caches[@]}" \
  --dep wit -I "$work/gen" -cflags -O2 -- "$work/gen/partitioner_plugin.c" "$work/gen/partitioner_plugin_component_type.o" \
  -Mroot="$here/partitioner.zig" -Mwit="$work/wit.zig" -femit-bin="$work/partitioner.core.wasm"
"$wasm_tools" component new "$work/partitioner.core.wasm" -o "$out.tmp"
"$wasm_tools" validate --features component-model "$out.tmp"
mv "$out.tmp" "$out"
echo "zig-partitioner: wrote $out ($(stat -c %s "$out") bytes)"
