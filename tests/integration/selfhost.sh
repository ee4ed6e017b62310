#!/usr/bin/env bash
# Self-host: configure and build poolguard's core and preload library (no tests, no benchmarks)
# in a scratch directory with cmake, ninja and g++ all running on libpoolguard.so; then check that
# the library built that way works.
#   selfhost.sh LIBPOOLGUARD SOURCE_DIR
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
src="${2:?usage: selfhost.sh LIBPOOLGUARD SOURCE_DIR}"
pg_need cmake ninja g++

build="$PG_TMP/build"
preload=(env LD_PRELOAD="$PG_LIB")
"${preload[@]}" cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER=g++ -DCMAKE_C_COMPILER=gcc -DPOOLGUARD_TESTS=OFF -DPOOLGUARD_BENCH=OFF \
  >"$PG_TMP/configure.log" 2>&1 ||
  { tail -n 40 "$PG_TMP/configure.log" >&2; pg_fail "cmake configure failed under poolguard"; }
"${preload[@]}" POOLGUARD_STATS=exit cmake --build "$build" -j 2 >"$PG_TMP/build.log" 2>&1 ||
  { pg_strip_stats "$PG_TMP/build.log" | tail -n 40 >&2; pg_fail "build failed under poolguard"; }

built="$build/preload/libpoolguard.so"
[[ -f "$built" ]] || pg_fail "the build did not produce $built"
grep -o '{"poolguard":.*}' "$PG_TMP/build.log" >"$PG_TMP/selfhost.stats" || true
sources="$(grep -c '^\[[0-9]*/[0-9]*\] Building C' "$PG_TMP/build.log" || true)"
pg_note "$sources translation units compiled under poolguard"
[[ $sources -ge 5 ]] || pg_fail "only $sources compile steps in the build log"
# Each compile step runs at least g++ and cc1plus, each printing its own line.
pg_stats_check selfhost $((2 * sources))
pg_expect_ge "$(pg_stat selfhost small_allocs)" 100000 "cc1plus's small_allocs (busiest process)"

# The library built under poolguard must itself work.
rc=0
env LD_PRELOAD="$built" POOLGUARD_STATS=exit PYTHONMALLOC=malloc "$PG_PYTHON" -c \
  'print(sum(len(str(i)) for i in range(100000)))' >"$PG_TMP/check.out" 2>"$PG_TMP/check.err" || rc=$?
[[ $rc -eq 0 && "$(cat "$PG_TMP/check.out")" == 488890 ]] ||
  { cat "$PG_TMP/check.err" >&2; pg_fail "the self-built library does not run python (exit $rc)"; }
grep -o '{"poolguard":.*}' "$PG_TMP/check.err" >"$PG_TMP/check.stats" || true
pg_stats_check check 1
