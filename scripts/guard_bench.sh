#!/usr/bin/env bash
# The cost of the guard modes (docs/BENCHMARKS.md, "Guard modes"):
#   1. instructions per malloc(32)+free pair under callgrind, sampling off (the default) and on;
#   2. wall time of an object-churn loop and of python3 on an object-heavy script, sampling off
#      and on: median of RUNS alternating runs;
#   3. each mode on the python script beside valgrind memcheck.
#
#   scripts/guard_bench.sh [--runs N] [--rates "1000 5000"] [--skip-memcheck]
#
# Uses the build in ${POOLGUARD_BUILD_DIR:-build} (targets poolguard and pg_guard_churn), builds
# them if missing. Prints Markdown tables on stdout.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${POOLGUARD_BUILD_DIR:-build}"
[[ $build == /* ]] || build="$root/$build"
runs=5
rates="1000 5000"
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
echo "| workload | POOLGUARD_GUARD_SAMPLE | median wall time (s), $runs alternating runs | vs off |"
echo "|---|---|---|---|"
wall churn "$churn" churn 20000000
wall python env PYTHONMALLOC=malloc "$py" "$objects"
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
