#!/usr/bin/env bash
# Builds partitioner.c into target/examples/c_partitioner.wasm:
#   wit-bindgen c      C bindings (and a component-type object) for world partitioner-plugin
#   clang + wasm-ld    a core wasm32-wasi module, linked with Debian's wasi-libc
#   wasm-tools         component new: the core module plus its type information -> component
# wit-bindgen and wasm-tools are taken from target/tools/bin (tests/setup installs them there
# with cargo) or else from PATH; WIT_BINDGEN, WASM_TOOLS and CC override. Exits 77 (skipped)
# when one is missing.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="$root/target/examples"
work="$out_dir/c-partitioner"
out="$out_dir/c_partitioner.wasm"
mkdir -p "$work"
rm -f "$out"

tool() {
  if [ -x "$root/target/tools/bin/$1" ]; then echo "$root/target/tools/bin/$1"; else command -v "$1" || echo "$1"; fi
}
wit_bindgen="${WIT_BINDGEN:-$(tool wit-bindgen)}"
wasm_tools="${WASM_TOOLS:-$(tool wasm-tools)}"
cc="${CC:-clang}"
for t in "$wit_bindgen" "$wasm_tools" "$cc"; do
  if ! command -v "$t" >/dev/null; then
    echo "c-partitioner: skipped: $t not found (tests/setup installs clang, lld, wasi-libc, wit-bindgen and wasm-tools)" >&2
    exit 77
  fi
done

rm -rf "$work/gen"
# wit-bindgen lists the files it writes on stderr: show that only when it fails.
if ! log=$("$wit_bindgen" c --world partitioner-plugin --out-dir "$work/gen" "$root/wit" 2>&1); then
  echo "$log" >&2
  exit 1
fi
# A reactor (a library, no main) built for WASI preview 1; the partitioner makes no WASI
# calls, so the module imports nothing but the broker's host interface and needs no adapter.
"$cc" --target=wasm32-wasi -mexec-model=reactor -O2 -Wall -Wextra -Werror \
  -I "$work/gen" -o "$work/partitioner.core.wasm" \
  "$here/partitioner.c" "$work/gen/partitioner_plugin.c" "$work/gen/partitioner_plugin_component_type.o" \
  -Wl,--strip-debug
"$wasm_tools" component new "$work/partitioner.core.wasm" -o "$out.tmp"
"$wasm_tools" validate --features component-model "$out.tmp"
mv "$out.tmp" "$out"
echo "c-partitioner: wrote $out ($(stat -c %s "$out") bytes)"
