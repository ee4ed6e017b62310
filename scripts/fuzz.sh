#!/usr/bin/env bash
# Fuzzing campaigns longer than the test suite's 30-second slices (tests/fuzz/README.md).
#   scripts/fuzz.sh [SECONDS] [--merge] [FUZZER...]   each fuzzer for SECONDS (default 600), in turn
#   scripts/fuzz.sh --seeds                            rewrite the seed inputs (make_seeds.cpp)
# FUZZER: api_fuzzer, api_fuzzer_sampled, options_fuzzer, segment_fuzzer, recording_fuzzer
# (default: all of them). A campaign's corpus
# is kept in <build>/fuzz/campaign/FUZZER and grows from one campaign to the next; --merge then
# adds the inputs that reach new coverage to tests/fuzz/corpus/FUZZER (commit them; the sampled
# fuzzer shares api_fuzzer's). A failure stops the script; the input is in
# <build>/fuzz/artifacts/FUZZER/ (minimize it with the fuzzer's -minimize_crash=1, keep it in
# tests/fuzz/regressions/FUZZER/).
# Build directory: ${POOLGUARD_BUILD_DIR:-build}; only configured here, the fuzzers are built apart.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build_dir="${POOLGUARD_BUILD_DIR:-build}"
[[ "$build_dir" == /* ]] || build_dir="$root/$build_dir"

seconds=600
merge=false
seeds=false
# Every fuzzer, once: what a name may be, and the default.
all_fuzzers=(api_fuzzer api_fuzzer_sampled options_fuzzer segment_fuzzer recording_fuzzer)
fuzzers=()
for arg in "$@"; do
  case " ${all_fuzzers[*]} " in
    *" $arg "*)
      fuzzers+=("$arg")
      continue
      ;;
  esac
  case "$arg" in
    --merge) merge=true ;;
    --seeds) seeds=true ;;
    *[!0-9]* | "")
      echo "usage: scripts/fuzz.sh [SECONDS] [--merge] [FUZZER...] | --seeds" >&2
      exit 2
      ;;
    *) seconds="$arg" ;;
  esac
done
[[ ${#fuzzers[@]} -gt 0 ]] || fuzzers=("${all_fuzzers[@]}")

"$root/scripts/deps.sh"

# The core's source list and flags come from the main project's configure (core.cmake); a
# build directory made with another generator is refused, as build.sh does.
cache="$build_dir/CMakeCache.txt"
if [[ -f "$cache" ]] && ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$cache"; then
  echo "fuzz.sh: $build_dir was configured with another generator; remove it or set POOLGUARD_BUILD_DIR" >&2
  exit 1
fi
cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPOOLGUARD_TESTS=ON -DPOOLGUARD_FUZZ_TESTS=ON >/dev/null

run_fuzz="$root/tests/fuzz/run_fuzz.sh"
fuzz_dir="$build_dir/fuzz"
bash "$run_fuzz" build "$fuzz_dir"

if $seeds; then
  exec bash "$run_fuzz" seeds "$fuzz_dir"
fi

for f in "${fuzzers[@]}"; do
  campaign="$fuzz_dir/campaign/$f"
  mkdir -p "$campaign"
  nice bash "$run_fuzz" run "$fuzz_dir" "$f" "$seconds" "$campaign"
  if $merge; then
    bash "$run_fuzz" merge "$fuzz_dir" "$f" "$campaign"
  fi
done
