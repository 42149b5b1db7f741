#!/usr/bin/env bash
# Builds app.py into target/examples/python_partitioner.wasm with componentize-py.
#
# componentize-py comes from the machine's python3 when it has the pinned version (tests/setup
# installs it there); otherwise from a venv under target/examples/ that this script creates
# and pip-installs it into once.
set -euo pipefail
COMPONENTIZE_PY_VERSION=0.25.1

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out_dir="$root/target/examples"
work="$out_dir/python-partitioner"
out="$out_dir/python_partitioner.wasm"
mkdir -p "$work"
rm -f "$out"

has_pinned() {
  "$1" -c "import importlib.metadata as m, sys; sys.exit(m.version('componentize-py') != '$COMPONENTIZE_PY_VERSION')" 2>/dev/null
}
python=python3
if ! has_pinned "$python"; then
  python="$work/venv/bin/python3"
  if ! has_pinned "$python"; then
    echo "python-partitioner: installing componentize-py $COMPONENTIZE_PY_VERSION into $work/venv" >&2
    rm -rf "$work/venv"
    python3 -m venv "$work/venv"
    "$python" -m pip install -q --disable-pip-version-check "componentize-py==$COMPONENTIZE_PY_VERSION"
  fi
fi
componentize_py() {
  "$python" -c 'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' "$@"
}

# The bindings (package wit_world) are for reading and for editors: componentize generates
# them again on the fly.
rm -rf "$work/bindings"
componentize_py --wit-path "$root/wit" --world partitioner-plugin bindings "$work/bindings" >/dev/null
cd "$here"
componentize_py --wit-path "$root/wit" --world partitioner-plugin componentize app --python-path "$here" -o "$out.tmp" >/dev/null
mv "$out.tmp" "$out"
echo "python-partitioner: wrote $out ($(stat -c %s "$out") bytes)"
