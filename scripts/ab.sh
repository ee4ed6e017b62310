#!/usr/bin/env bash
# A/B comparison of allocator libraries (two builds of poolguard, or poolguard and a peer) on the
# micro-benchmarks, for changes too small for the full scripts/bench.sh run.
#
#   scripts/ab.sh [--rounds R] [--filter REGEX] [--min-time S] NAME=LIB [NAME=LIB ...]
#
# Runs pg_bench (${POOLGUARD_BUILD_DIR:-build}/bench/pg_bench, built if missing) with each LIB
# preloaded in turn, R rounds (default 7) alternating A B C A B C ..., in an empty environment
# (env -i, POOLGUARD_SEGMENT=off), and prints the median ns per item of each benchmark for each
# NAME. LIB "glibc" (or an empty LIB) preloads nothing; jemalloc, mimalloc, tcmalloc and
# poolguard name the libraries scripts/bench.sh uses. Example, before/after a change:
#   git worktree add /tmp/before HEAD~1 && POOLGUARD_BUILD_DIR=/tmp/before/b \
#     /tmp/before/scripts/build.sh -DPOOLGUARD_TESTS=OFF poolguard
#   scripts/ab.sh --filter 'BM_Churn|BM_Pair/32$' before=/tmp/before/b/preload/libpoolguard.so \
#     after=poolguard mimalloc=mimalloc
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${POOLGUARD_BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
# shellcheck source=bench/allocators.sh
. "$ROOT/bench/allocators.sh"

usage() {
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

ROUNDS=7
FILTER='BM_Pair/32$|BM_Churn/real_time/threads:1$|BM_ProducerConsumer/32'
MIN_TIME=0.2
PAIRS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) [ $# -ge 2 ] || usage; ROUNDS=$2; shift 2 ;;
    --filter) [ $# -ge 2 ] || usage; FILTER=$2; shift 2 ;;
    --min-time) [ $# -ge 2 ] || usage; MIN_TIME=$2; shift 2 ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *=*) PAIRS+=("$1"); shift ;;
    *) echo "ab.sh: not NAME=LIB: '$1'" >&2; usage ;;
  esac
done
[ ${#PAIRS[@]} -ge 1 ] || { echo "ab.sh: no NAME=LIB given" >&2; usage; }
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "ab.sh: --rounds wants a positive number" >&2; usage; }

# Resolve each NAME=LIB to a library path (empty for glibc). Paths given as such must exist now;
# this build's poolguard is built below when missing.
NAMES=()
LIBS=()
for kv in "${PAIRS[@]}"; do
  name=${kv%%=*}
  lib=${kv#*=}
  case "$lib" in
    ""|glibc) lib="" ;;
    jemalloc|mimalloc|tcmalloc|poolguard) lib=$(pg_alloc_lib "$lib") ;;
    *)
      if [ ! -f "$lib" ]; then
        echo "ab.sh: $name: no such library: $lib" >&2
        exit 2
      fi
      ;;
  esac
  NAMES+=("$name")
  LIBS+=("$lib")
done

BENCH="$BUILD/bench/pg_bench"
[ -x "$BENCH" ] && [ -f "$(pg_alloc_lib poolguard)" ] || pg_build pg_bench poolguard >/dev/null
for i in "${!NAMES[@]}"; do
  if [ -n "${LIBS[$i]}" ] && [ ! -f "${LIBS[$i]}" ]; then
    echo "ab.sh: ${NAMES[$i]}: no such library: ${LIBS[$i]}" >&2
    exit 1
  fi
done

RAW=$(mktemp)
trap 'rm -f "$RAW"' EXIT
for ((r = 1; r <= ROUNDS; r++)); do
  for i in "${!NAMES[@]}"; do
    env -i PATH=/usr/bin:/bin LC_ALL=C POOLGUARD_SEGMENT=off ${LIBS[$i]:+LD_PRELOAD=${LIBS[$i]}} \
      "$BENCH" --benchmark_filter="$FILTER" --benchmark_min_time="$MIN_TIME" \
      --benchmark_format=json 2>/dev/null |
      python3 -c '
import json, sys
for b in json.load(sys.stdin)["benchmarks"]:
    ips = b.get("items_per_second")
    if ips:
        print(sys.argv[1], b["name"], 1e9 / ips)
' "${NAMES[$i]}" >>"$RAW"
  done
  echo "ab.sh: round $r of $ROUNDS done" >&2
done

python3 - "$RAW" "${NAMES[@]}" <<'EOF'
import collections, statistics, sys
raw, names = sys.argv[1], sys.argv[2:]
runs = collections.defaultdict(list)
for line in open(raw):
    name, bench, ns = line.split()
    runs[(bench, name)].append(float(ns))
benches = sorted({b for b, _ in runs})
print("| benchmark (median ns per item) | " + " | ".join(names) + " |")
print("|---|" + "---|" * len(names))
for b in benches:
    cells = ["%.2f" % statistics.median(runs[(b, n)]) if runs[(b, n)] else "-" for n in names]
    print("| %s | %s |" % (b, " | ".join(cells)))
EOF
