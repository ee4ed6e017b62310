#!/usr/bin/env bash
# The long run of CPython's own regression tests (Debian's libpython3.11-testsuite) under the
# preload: the selected modules whole, in each mode against the same run without the preload,
# with a summary table (module, mode, tests run, passed, failed, skipped, seconds) and the
# known-bug tests checked alone. The ctest entry integration.cpython runs a subset of it
# (tests/integration/cpython.sh); both use tests/integration/cpython_regrtest.py.
#   scripts/cpython_tests.sh [--lib LIBPOOLGUARD] [--modes LIST] [--out DIR] [SPEC...]
# Modes: pymalloc, malloc (the default: both), redzone, leaks. SPEC: MODULE[:PATTERN,...] as
# cpython_regrtest.py takes it; default: the selection below. Without --lib, installs what is
# missing and builds the library into ${POOLGUARD_BUILD_DIR:-build}. Exits 1 when a test that
# passes without the preload does not pass with it.
set -euo pipefail

usage() {
  echo "usage: scripts/cpython_tests.sh [--lib LIBPOOLGUARD] [--modes pymalloc,malloc,redzone,leaks] [--out DIR] [MODULE[:PATTERN,...]...]"
}
bad_usage() {
  echo "cpython_tests.sh: $*" >&2
  usage >&2
  exit 2
}

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
lib="" modes="pymalloc,malloc" out=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --lib | --modes | --out)
      [[ $# -ge 2 && -n "$2" ]] || bad_usage "$1 needs a value"
      case "$1" in
        --lib) lib="$2" ;;
        --modes) modes="$2" ;;
        --out) out="$2" ;;
      esac
      shift 2
      ;;
    -*) bad_usage "unknown option: $1" ;;
    *) break ;;
  esac
done
IFS=, read -r -a mode_list <<<"$modes"
for m in "${mode_list[@]}"; do
  case "$m" in
    pymalloc | malloc | redzone | leaks) ;;
    *) bad_usage "unknown mode: '$m'" ;;
  esac
done
[[ -z "$lib" || -f "$lib" ]] || bad_usage "no such library: $lib"

specs=("$@")
if [[ ${#specs[@]} -eq 0 ]]; then
  specs=(test_threading test_functools test_bz2 test_subprocess test_gc test_weakref test_dict
    test_json test_pickle test_list test_set test_unicode)
fi

if [[ -z "$lib" ]]; then
  "$root/scripts/deps.sh"
  build_dir="$(POOLGUARD_BUILD_TARGETS=poolguard "$root/scripts/build.sh")"
  lib="$build_dir/preload/libpoolguard.so"
  [[ -f "$lib" ]] || { echo "cpython_tests.sh: build did not produce $lib" >&2; exit 1; }
fi
if [[ -z "$out" ]]; then
  out="$(mktemp -d "${TMPDIR:-/tmp}/pg-cpython.XXXXXX")"
fi
echo "cpython_tests.sh: outputs in $out" >&2

# Debian's python3 (3.11, the one the test suite belongs to), never one found on PATH.
exec /usr/bin/python3 "$root/tests/integration/cpython_regrtest.py" --lib "$lib" --out "$out" \
  --modes "$modes" --timeout 900 --known-bugs check --json "$out/results.json" "${specs[@]}"
