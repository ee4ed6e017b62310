#!/usr/bin/env bash
# Instructions per malloc(32)+free pair for each allocator, exact and repeatable.
#
#   scripts/callgrind.sh [--n N] [--size BYTES] [--out DIR] [--allocators "glibc jemalloc ..."]
#
# Runs bench/pair.c (pg_pair) under `valgrind --tool=callgrind` with N and 2N pairs, in an empty
# environment (env -i) so that nothing but the preloaded library differs between runs. The
# difference of the two instruction totals divided by N is the cost of one pair: start-up, the
# warm-up and exit cancel out. The figure includes pg_pair's loop and the two indirect calls; the
# "baseline" row runs the same loop over two empty functions, to show that overhead.
#
# Writes DIR/callgrind.json and prints a Markdown table. DIR defaults to build/bench-results;
# the build directory is ${POOLGUARD_BUILD_DIR:-build}.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${POOLGUARD_BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
OUT="$ROOT/build/bench-results"
N=1000000
SIZE=32
# shellcheck source=bench/allocators.sh
. "$ROOT/bench/allocators.sh"
ALLOCS="$PG_ALL_ALLOCATORS"
NO_BUILD=0

while [ $# -gt 0 ]; do
  case "$1" in
    --n) N=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --allocators) ALLOCS=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac
mkdir -p "$OUT/raw/callgrind"

pg_need_packages valgrind cmake ninja-build g++ libbenchmark-dev
[ "$NO_BUILD" = 1 ] || pg_build poolguard pg_pair
PAIR="$BUILD/bench/pg_pair"

# ir_total LIB COUNT [baseline]: total instructions (Ir) of one pg_pair run.
ir_total() {
  local lib=$1 count=$2 mode=${3:-} file
  file="$OUT/raw/callgrind/$(basename "${lib:-glibc}").$count${mode:+.$mode}.out"
  # shellcheck disable=SC2086  # $mode is empty or one word
  env -i ${lib:+LD_PRELOAD=$lib} /usr/bin/valgrind --tool=callgrind --callgrind-out-file="$file" \
    "$PAIR" "$count" "$SIZE" $mode >/dev/null 2>"$file.log" || {
    echo "callgrind run failed: lib=${lib:-glibc} n=$count (see $file.log)" >&2
    return 1
  }
  awk '/^summary:/ {print $2; exit} /^totals:/ {t=$2} END {if (t) print t}' "$file" | head -1
}

# per_pair LIB [baseline]: instructions per pair.
# shellcheck disable=SC2086  # ${2:-} is empty or one word
per_pair() {
  local a b
  a=$(ir_total "$1" "$N" ${2:-}) || return 1
  b=$(ir_total "$1" $((2 * N)) ${2:-}) || return 1
  awk -v a="$a" -v b="$b" -v n="$N" 'BEGIN {printf "%.2f", (b - a) / n}'
}

base=$(per_pair "" baseline)
json="{\"n\": $N, \"size\": $SIZE, \"baseline\": $base, \"per_pair\": {"
sep=""
echo "| allocator | Ir per malloc($SIZE)+free pair | net of loop baseline |"
echo "|---|---|---|"
status=0
for a in $ALLOCS; do
  lib=$(pg_alloc_lib "$a")
  if v=$(per_pair "$lib"); then
    json+="$sep\"$a\": $v"
    sep=", "
    echo "| $a | $v | $(awk -v v="$v" -v b="$base" 'BEGIN {printf "%.2f", v - b}') |"
  else
    echo "| $a | FAIL | |"
    status=1
  fi
done
echo "| (empty loop baseline) | $base | 0 |"
json+="}}"
echo "$json" > "$OUT/callgrind.json"
exit $status
