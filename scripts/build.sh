#!/usr/bin/env bash
# Configures and builds poolguard with Ninja (RelWithDebInfo) into ${POOLGUARD_BUILD_DIR:-build}.
#   scripts/build.sh [EXTRA CMAKE ARGS...]       e.g. scripts/build.sh -DPOOLGUARD_BENCH=OFF
# POOLGUARD_BUILD_TARGETS="a b" builds only those targets (default: all).
# Shared by run.sh and test.sh; prints the build directory's path as its last line on stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${POOLGUARD_BUILD_DIR:-build}"
[[ "$build_dir" == /* ]] || build_dir="$root/$build_dir"

# A build directory made with another generator cannot be reconfigured with Ninja.
cache="$build_dir/CMakeCache.txt"
if [[ -f "$cache" ]] && ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$cache"; then
  echo "build.sh: $build_dir was configured with another generator; remove it or set POOLGUARD_BUILD_DIR" >&2
  exit 1
fi

cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo "$@" >&2

targets=()
if [[ -n "${POOLGUARD_BUILD_TARGETS:-}" ]]; then
  read -r -a names <<<"$POOLGUARD_BUILD_TARGETS"
  targets=(--target "${names[@]}")
fi
cmake --build "$build_dir" "${targets[@]}" >&2

echo "$build_dir"
