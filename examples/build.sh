#!/usr/bin/env bash
# Builds the example plugins into target/examples/: the Python and C ports of the murmur2
# partitioner always (this script fails if either fails), the JavaScript and Zig ones when
# their tools are on the machine (their build scripts exit 77 when not, and are skipped; a
# build whose tools are there and that fails, fails this script too). tests/setup installs
# the tools; set STROM_EXAMPLES=all for the optional ones.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

failed=()
built=()
skipped=()
for example in python-partitioner c-partitioner js-partitioner zig-partitioner; do
  started=$(date +%s%N)
  bash "$here/$example/build.sh"
  status=$?
  tenths=$((($(date +%s%N) - started) / 100000000))
  case "$status" in
    0) built+=("$example ($((tenths / 10)).$((tenths % 10)) s)") ;;
    77)
      case "$example" in
        python-partitioner | c-partitioner) failed+=("$example (its tools are missing: run tests/setup)") ;;
        *) skipped+=("$example") ;;
      esac
      ;;
    *) failed+=("$example (exit $status)") ;;
  esac
done

echo "examples built: ${built[*]:-none}"
[ ${#skipped[@]} -eq 0 ] || echo "examples skipped (tools not installed): ${skipped[*]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "examples FAILED: ${failed[*]}" >&2
  exit 1
fi
