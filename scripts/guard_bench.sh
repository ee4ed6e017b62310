#!/usr/bin/env bash
# The cost of the guard modes (docs/BENCHMARKS.md, "Guard modes"):
#   1. instructions per malloc(32)+free pair under callgrind, sampling off (the default) and on;
#   2. wall time of an object-churn loop (pg_guard_churn churn) and of python3 on object-heavy
#      scripts (tests/integration/objects.py, bench/workloads/objects.py), sampling off and on:
#      median of RUNS alternating runs;
#   3. each mode on the python script beside valgrind memcheck.
#
#   scripts/guard_bench.sh [--runs N] [--rates "100 1000 5000 20000"] [--skip-memcheck]
#
# Uses the build in ${POOLGUARD_BUILD_DIR:-build} (targets poolguard and pg_guard_churn), builds
# them if missing. Prints Markdown tables on stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${POOLGUARD_BUILD_DIR:-build}"
[[ $build == /* ]] || build="$root/$build"
runs=5
rates="100 1000 5000 20000"
memcheck=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --rates) rates="$2"; shift 2 ;;
    --skip-memcheck) memcheck=0; shift ;;
    -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "guard_bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

lib="$build/preload/libpoolguard.so"
churn="$build/tests/guard/pg_guard_churn"
if [[ ! -f $lib || ! -x $churn ]]; then
  cmake -S "$root" -B "$build" -G Ninja >&2
  cmake --build "$build" --target poolguard pg_guard_churn >&2
fi
py=/usr/bin/python3
objects="$root/tests/integration/objects.py"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pg-guard-bench.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

# ---- 1. instructions per pair ----
# ir ENV...: total instructions of `pg_guard_churn pair COUNT` in an empty environment.
ir() {
  local count="$1"
  shift
  env -i "$@" /usr/bin/valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.out" \
    "$churn" pair "$count" >/dev/null 2>"$tmp/cg.log"
  awk '/^summary:/ {print $2}' "$tmp/cg.out"
}
per_pair() {
  local n=200000 a b
  a="$(ir "$n" "$@")"
  b="$(ir $((2 * n)) "$@")"
  awk -v a="$a" -v b="$b" -v n="$n" 'BEGIN {printf "%.2f", (b - a) / n}'
}
echo "| allocator | instructions per malloc(32)+free pair |"
echo "|---|---|"
echo "| glibc | $(per_pair) |"
echo "| poolguard, sampling off (default) | $(per_pair LD_PRELOAD="$lib") |"
for r in $rates; do
  echo "| poolguard, POOLGUARD_GUARD_SAMPLE=$r | $(per_pair LD_PRELOAD="$lib" POOLGUARD_GUARD_SAMPLE="$r") |"
done
echo

# ---- 2. wall time, sampling off and on ----
# seconds CMD...: wall time of one run, in seconds.
seconds() {
  local t0 t1
  t0="$(date +%s%N)"
  "$@" >/dev/null 2>&1
  t1="$(date +%s%N)"
  awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", (b - a) / 1e9}'
}
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# wall NAME CMD...: median of $runs runs of CMD for each sampling setting, alternating.
wall() {
  local name="$1"
  shift
  local settings=(0 $rates) s i
  for ((i = 0; i < runs; i++)); do
    for s in "${settings[@]}"; do
      seconds env LD_PRELOAD="$lib" POOLGUARD_GUARD_SAMPLE="$s" "$@" >>"$tmp/$name.$s"
      echo >>"$tmp/$name.$s"
    done
  done
  local base
  base="$(median <"$tmp/$name.0")"
  for s in "${settings[@]}"; do
    local m
    m="$(median <"$tmp/$name.$s")"
    echo "| $name | ${s/#0/off} | $m | $(awk -v m="$m" -v b="$base" 'BEGIN {printf "%+.1f%%", (m / b - 1) * 100}') |"
  done
}
# per_sample NAME ALLOCATIONS RATE: the cost of one sampled allocation in workload NAME, from its
# medians at RATE and off (a low RATE makes the samples' cost stand out of the noise).
per_sample() {
  [[ -f "$tmp/$1.$3" ]] || return 0
  awk -v on="$(median <"$tmp/$1.$3")" -v off="$(median <"$tmp/$1.0")" -v n="$2" -v r="$3" \
    'BEGIN {printf "%s: %.1f us per sampled allocation (from the medians at 1 in %d and off)\n", "'"$1"'", (on - off) / (n / r) * 1e6, r}'
}
# The cost of one sampled allocation and free: pairs with every allocation sampled, less pairs with
# none, per pair (median of $runs alternating runs).
for ((i = 0; i < runs; i++)); do
  seconds env LD_PRELOAD="$lib" "$churn" pair 2000000 >>"$tmp/pair.off"
  echo >>"$tmp/pair.off"
  seconds env LD_PRELOAD="$lib" POOLGUARD_GUARD_SAMPLE=1 "$churn" pair 100000 >>"$tmp/pair.all"
  echo >>"$tmp/pair.all"
done
off="$(median <"$tmp/pair.off")"
all="$(median <"$tmp/pair.all")"
awk -v off="$off" -v all="$all" 'BEGIN {
  printf "One malloc(32)+free pair: %.1f ns unsampled, %.1f us sampled (POOLGUARD_GUARD_SAMPLE=1).\n\n",
    off / 2000000 * 1e9, all / 100000 * 1e6 }'

echo "| workload | POOLGUARD_GUARD_SAMPLE | median wall time (s), $runs alternating runs | vs off |"
echo "|---|---|---|---|"
wall churn "$churn" churn 20000000
wall python env PYTHONMALLOC=malloc "$py" "$objects"
# The benchmarks' object-churn workload (bench/workloads/objects.py), when it is there.
if [[ -f "$root/bench/workloads/objects.py" ]]; then
  wall bench-objects env PYTHONMALLOC=malloc "$py" "$root/bench/workloads/objects.py"
fi
echo
per_sample churn 20000000 100
echo

# The micro benchmark BM_Churn (bench/micro.cpp: 100,000 live objects, one replaced per item), when
# pg_bench is built: nanoseconds per item, median of $runs alternating runs.
if [[ -x "$build/bench/pg_bench" ]]; then
  echo "| BM_Churn/real_time/threads:1 | POOLGUARD_GUARD_SAMPLE | median ns per item, $runs alternating runs | vs off |"
  echo "|---|---|---|---|"
  settings=(0 $rates)
  for ((i = 0; i < runs; i++)); do
    for s in "${settings[@]}"; do
      env LD_PRELOAD="$lib" POOLGUARD_GUARD_SAMPLE="$s" "$build/bench/pg_bench" \
        --benchmark_filter='^BM_Churn/real_time/threads:1$' --benchmark_min_time=0.5 2>/dev/null |
        awk '/^BM_Churn/ {print $2}' >>"$tmp/bmchurn.$s"
    done
  done
  base="$(median <"$tmp/bmchurn.0")"
  for s in "${settings[@]}"; do
    m="$(median <"$tmp/bmchurn.$s")"
    echo "| BM_Churn | ${s/#0/off} | $m | $(awk -v m="$m" -v b="$base" 'BEGIN {printf "%+.1f%%", (m / b - 1) * 100}') |"
  done
fi
echo

# ---- 3. each mode beside memcheck, on the python script ----
mode_time() {
  local i t=()
  for ((i = 0; i < 3; i++)); do t+=("$(seconds "$@")"); done
  printf '%s\n' "${t[@]}" | median
}
plain="$(mode_time env PYTHONMALLOC=malloc "$py" "$objects")"
echo "| python3 objects.py (PYTHONMALLOC=malloc) | median wall time (s), 3 runs | vs glibc |"
echo "|---|---|---|"
row() {
  local label="$1" t
  shift
  t="$(mode_time "$@")"
  echo "| $label | $t | $(awk -v t="$t" -v b="$plain" 'BEGIN {printf "%.1fx", t / b}') |"
}
echo "| glibc | $plain | 1.0x |"
row "poolguard" env LD_PRELOAD="$lib" PYTHONMALLOC=malloc "$py" "$objects"
for r in $rates; do
  row "poolguard, GUARD_SAMPLE=$r" env LD_PRELOAD="$lib" POOLGUARD_GUARD_SAMPLE="$r" \
    PYTHONMALLOC=malloc "$py" "$objects"
done
row "poolguard, GUARD=redzone" env LD_PRELOAD="$lib" POOLGUARD_GUARD=redzone PYTHONMALLOC=malloc \
  "$py" "$objects"
row "poolguard, GUARD=page" env LD_PRELOAD="$lib" POOLGUARD_GUARD=page PYTHONMALLOC=malloc \
  "$py" "$objects"
if [[ $memcheck == 1 ]]; then
  row "valgrind --tool=memcheck" env PYTHONMALLOC=malloc /usr/bin/valgrind --tool=memcheck -q \
    "$py" "$objects"
fi
