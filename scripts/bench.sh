#!/usr/bin/env bash
# Compares poolguard with glibc, jemalloc, mimalloc and tcmalloc, all preloaded into the same
# binaries. One command runs everything:
#
#   scripts/bench.sh [--runs N] [--quick] [--out DIR] [--allocators "glibc ... poolguard"]
#                    [--only "micro frag python3 sqlite3 gxx redis perl jq callgrind"]
#                    [--no-build] [--report-only]
#
#   --runs N       runs per allocator and workload (default 5; 3 with --quick)
#   --quick        fewer runs, shorter Google Benchmark min_time, a subset of the micro-benchmarks
#                  and smaller workloads: about 2 minutes on 2 cores once built
#   --out DIR      where results go (default build/bench-results)
#   --allocators   which allocators, in the order they alternate (default: all five)
#   --only         which parts to run (default: all)
#   --no-build     use the binaries already in the build directory
#   --report-only  only redo the tables and the chart from the raw results already in DIR
#
# For each workload the allocators alternate run by run (A B C D E A B C D E ...), so that slow
# drifts of a noisy machine hit every allocator alike; medians are quoted. Results: DIR/results.md
# (Markdown tables), DIR/results.json, DIR/chart.png, DIR/machine.md, raw outputs under DIR/raw.
# Builds into ${POOLGUARD_BUILD_DIR:-build} with -DPOOLGUARD_TESTS=OFF, and installs missing
# Debian packages with apt-get.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${POOLGUARD_BUILD_DIR:-build}
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
# shellcheck source=bench/allocators.sh
. "$ROOT/bench/allocators.sh"

OUT="$ROOT/build/bench-results"
RUNS=""
QUICK=0
ALLOCS="$PG_ALL_ALLOCATORS"
ONLY="micro frag python3 sqlite3 gxx redis perl jq callgrind"
NO_BUILD=0
REPORT_ONLY=0
COMMAND="scripts/bench.sh $*"
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

while [ $# -gt 0 ]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --out) OUT=$2; shift 2 ;;
    --allocators) ALLOCS=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --no-build) NO_BUILD=1; shift ;;
    --report-only) REPORT_ONLY=1; shift ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$OUT" in /*) ;; *) OUT="$PWD/$OUT" ;; esac

if [ "$QUICK" = 1 ]; then
  RUNS=${RUNS:-3}
  MIN_TIME=0.02
  MICRO_FILTER='^BM_(Pair/(16|32|64|128|256|1024)$|PairThreads|BatchRandom/32|MixedBatch|ReallocAcross|Calloc/256|PosixMemalign/64/64|ProducerConsumer/32/|Churn)'
  FRAG_N=400000
  PY_SCALE=30000
  SQL_SCALE=8000
  GXX_FLAGS="-std=c++20 -O0"
  REDIS_N=20000
  PERL_N=100000
  JQ_N=50000
  CG_N=100000
  TIMEOUT=120
else
  RUNS=${RUNS:-5}
  MIN_TIME=0.2
  MICRO_FILTER=""
  FRAG_N=2000000
  PY_SCALE=200000
  SQL_SCALE=60000
  GXX_FLAGS="-std=c++20 -O2 -g -include bits/stdc++.h"
  REDIS_N=200000
  PERL_N=600000
  JQ_N=300000
  CG_N=1000000
  TIMEOUT=900
fi

# measure: installs, builds, runs every part asked for, writes DIR/raw and DIR/machine.md.
measure() {
  # ---- packages, build, sanity ------------------------------------------------------------------
  pkgs=(cmake ninja-build g++ libbenchmark-dev python3 time gnuplot-nox)
  for a in $ALLOCS; do p=$(pg_alloc_pkg "$a"); [ -n "$p" ] && pkgs+=("$p"); done
  wants sqlite3 && pkgs+=(sqlite3)
  wants redis && pkgs+=(redis-server redis-tools)
  wants perl && pkgs+=(perl)
  wants jq && pkgs+=(jq)
  wants callgrind && pkgs+=(valgrind)
  pg_need_packages "${pkgs[@]}" || { echo "package installation failed" >&2; exit 1; }

  if [ "$NO_BUILD" = 0 ]; then
    log "building into $BUILD"
    pg_build pg_bench pg_frag pg_pair || { echo "building the benchmarks failed" >&2; exit 1; }
    case " $ALLOCS " in
      *" poolguard "*) pg_build poolguard || { echo "building libpoolguard.so failed" >&2; exit 1; } ;;
    esac
  fi

  for a in $ALLOCS; do
    pg_check_preload "$a" || { echo "cannot preload $a; drop it with --allocators" >&2; exit 1; }
  done

  # Forget earlier results of the parts run now only, so that `--only` can redo one part.
  mkdir -p "$OUT/raw" "$OUT/work"
  touch "$OUT/failures.txt"
  for part in $ONLY; do
    rm -rf "${OUT:?}/raw/$part"
    [ "$part" = callgrind ] && rm -f "$OUT/callgrind.json"
    grep -v "^$part " "$OUT/failures.txt" >"$OUT/failures.tmp" || true
    mv "$OUT/failures.tmp" "$OUT/failures.txt"
  done

  # run_one PART ALLOC RUN STDOUT_FILE CMD...: runs CMD in a clean environment with ALLOC preloaded,
  # under /usr/bin/time (user and system CPU seconds, wall seconds and peak RSS into
  # raw/PART/ALLOC.RUN.time) and a timeout.
  # Extra environment goes in RUN_ENV (an array). A failure is logged in failures.txt, not fatal.
  RUN_ENV=()
  run_one() {
    local part=$1 alloc=$2 run=$3 stdout=$4 lib rc
    shift 4
    lib=$(pg_alloc_lib "$alloc")
    mkdir -p "$OUT/raw/$part"
    local tfile="$OUT/raw/$part/$alloc.$run.time" efile="$OUT/raw/$part/$alloc.$run.err"
    env -i PATH=/usr/bin:/bin LC_ALL=C "${RUN_ENV[@]}" ${lib:+LD_PRELOAD=$lib} \
      /usr/bin/timeout "$TIMEOUT" /usr/bin/time -f '%U %S %e %M' -o "$tfile" "$@" >"$stdout" 2>"$efile"
    rc=$?
    if [ $rc -ne 0 ]; then
      echo "$part $alloc run $run: exit status $rc$([ $rc = 124 ] && echo ' (timeout)'): $(tail -c 300 "$efile" | tr '\n' ' ')" >>"$OUT/failures.txt"
      log "FAILED: $part $alloc run $run (status $rc)"
      rm -f "$tfile"
      return 1
    fi
    [ -s "$efile" ] || rm -f "$efile"
    return 0
  }

  # alternate PART CMD...: RUNS rounds, each running every allocator once, in order.
  alternate() {
    local part=$1 r a
    shift
    for r in $(seq 1 "$RUNS"); do
      for a in $ALLOCS; do
        run_one "$part" "$a" "$r" "$OUT/work/$part.out" "$@"
      done
    done
  }

  # ---- micro-benchmarks -------------------------------------------------------------------------
  if wants micro; then
    log "micro: pg_bench, min_time $MIN_TIME s, $RUNS round(s)"
    mkdir -p "$OUT/raw/micro"
    for r in $(seq 1 "$RUNS"); do
      for a in $ALLOCS; do
        run_one micro "$a" "$r" "$OUT/raw/micro/$a.$r.log" "$BUILD/bench/pg_bench" \
          --benchmark_min_time="$MIN_TIME" ${MICRO_FILTER:+--benchmark_filter="$MICRO_FILTER"} \
          --benchmark_out="$OUT/raw/micro/$a.$r.json" --benchmark_out_format=json
      done
    done
  fi

  # ---- fragmentation ----------------------------------------------------------------------------
  if wants frag; then
    log "frag: pg_frag $FRAG_N"
    for r in $(seq 1 "$RUNS"); do
      for a in $ALLOCS; do
        run_one frag "$a" "$r" "$OUT/raw/frag/$a.$r.txt" "$BUILD/bench/pg_frag" "$FRAG_N" 1
      done
    done
  fi

  # ---- whole programs ---------------------------------------------------------------------------
  if wants python3; then
    log "python3: objects.py $PY_SCALE (PYTHONMALLOC=malloc)"
    # Not -I or -E: those make python ignore PYTHONMALLOC. env -i already isolates it.
    RUN_ENV=(PYTHONMALLOC=malloc)
    alternate python3 /usr/bin/python3 -s "$ROOT/bench/workloads/objects.py" "$PY_SCALE"
    RUN_ENV=()
  fi

  if wants sqlite3; then
    log "sqlite3: generated workload, scale $SQL_SCALE"
    /usr/bin/python3 "$ROOT/bench/workloads/gen_sqlite.py" "$SQL_SCALE" 2024 >"$OUT/work/workload.sql"
    alternate sqlite3 /usr/bin/sqlite3 -batch -init /dev/null :memory: ".read $OUT/work/workload.sql"
  fi

  if wants gxx; then
    log "gxx: g++ $GXX_FLAGS -c bench/micro.cpp"
    # shellcheck disable=SC2086
    alternate gxx /usr/bin/g++ $GXX_FLAGS -c "$ROOT/bench/micro.cpp" -o "$OUT/work/micro.o"
  fi

  if wants redis; then
    log "redis: redis-server under redis-benchmark, $REDIS_N requests per test"
    # The script preloads the allocator into the server only (libc.so.6 for glibc: Debian's
    # redis-server links jemalloc); the time and peak RSS are the server's and its client's.
    alternate redis /bin/bash "$ROOT/bench/workloads/redis.sh" "$REDIS_N"
  fi

  if wants perl; then
    log "perl: hashes.pl $PERL_N"
    alternate perl /usr/bin/perl "$ROOT/bench/workloads/hashes.pl" "$PERL_N"
  fi

  if wants jq; then
    log "jq: filter $JQ_N objects"
    /usr/bin/python3 "$ROOT/bench/workloads/gen_json.py" "$JQ_N" 2024 >"$OUT/work/items.json"
    alternate jq /usr/bin/jq -c \
      'map(select(.a % 3 == 0) | {k: .name, v: (.tags | join(",")), l: .pos.label}) | length' \
      "$OUT/work/items.json"
  fi

  # poolguard's own view of two workloads, for whoever tunes the core (not timed).
  case " $ALLOCS " in
    *" poolguard "*)
      lib=$(pg_alloc_lib poolguard)
      if wants python3; then
        env -i PATH=/usr/bin:/bin PYTHONMALLOC=malloc POOLGUARD_STATS=exit LD_PRELOAD="$lib" \
          /usr/bin/python3 -s "$ROOT/bench/workloads/objects.py" "$PY_SCALE" 2>&1 >/dev/null |
          grep '^{"poolguard":' >"$OUT/poolguard-stats-python3.json" || true
      fi
      if wants frag; then
        env -i POOLGUARD_STATS=exit LD_PRELOAD="$lib" "$BUILD/bench/pg_frag" "$FRAG_N" 1 2>&1 >/dev/null |
          grep '^{"poolguard":' >"$OUT/poolguard-stats-frag.json" || true
      fi
      ;;
  esac

  # ---- instruction counts -----------------------------------------------------------------------
  if wants callgrind; then
    log "callgrind: pg_pair, N = $CG_N"
    POOLGUARD_BUILD_DIR="$BUILD" "$ROOT/scripts/callgrind.sh" --no-build --n "$CG_N" \
      --out "$OUT" --allocators "$ALLOCS" >"$OUT/work/callgrind.md" ||
      echo "callgrind run: at least one allocator failed (see $OUT/raw/callgrind)" >>"$OUT/failures.txt"
  fi

  # ---- machine, report, chart -------------------------------------------------------------------
  {
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- command: \`$COMMAND\`"
    echo "- runs per allocator: $RUNS$([ "$QUICK" = 1 ] && echo ' (quick mode)')"
    echo "- machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB"
    echo "- kernel: $(uname -r); Debian $(cat /etc/debian_version)"
    echo "- load average (1/5/15 min) at start: $LOAD_START, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "- compiler: $(g++ --version | head -1)"
    echo "- poolguard: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo 'no commit yet')$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (work tree modified)'), $(grep -m1 CMAKE_BUILD_TYPE: "$BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2) build"
    for a in $ALLOCS; do
      p=$(pg_alloc_pkg "$a")
      [ -n "$p" ] && echo "- $a: Debian $p $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null), $(readlink -f "$(pg_alloc_lib "$a")" 2>/dev/null || echo 'not preloaded')"
    done
    echo "- workloads: python3 $(/usr/bin/python3 --version 2>&1 | cut -d' ' -f2) objects.py $PY_SCALE; sqlite3 $(/usr/bin/sqlite3 --version | cut -d' ' -f1) gen_sqlite.py $SQL_SCALE 2024; g++ $GXX_FLAGS -c bench/micro.cpp; pg_frag $FRAG_N; Google Benchmark min_time $MIN_TIME s"
  } >"$OUT/machine.md"
}

wants() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

if [ "$REPORT_ONLY" = 1 ]; then
  [ -d "$OUT/raw" ] || { echo "no raw results in $OUT" >&2; exit 1; }
  pg_need_packages gnuplot-nox
else
  measure
fi

# shellcheck disable=SC2086  # one argument per allocator
/usr/bin/python3 "$ROOT/bench/report.py" "$OUT" $ALLOCS >/dev/null || { echo "report failed" >&2; exit 1; }

NCOL=$(( $(echo "$ALLOCS" | wc -w) ))
cat >"$OUT/chart.gp" <<EOF
set terminal pngcairo size 1400,1000 font ",10" noenhanced
set output '$OUT/chart.png'
set multiplot layout 2,1
set style data histogram
set style histogram cluster gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set grid ytics
set key outside top center horizontal autotitle columnhead
set xtics rotate by -25 nomirror
set yrange [0:3]
set arrow 1 from graph 0, first 1 to graph 1, first 1 nohead dt 2 lw 2
set ylabel "time relative to glibc (lower is better)"
set title "Micro-benchmarks: median ns per op / glibc's (bars clipped at 3)"
plot for [i=2:$NCOL] '$OUT/chart_micro.dat' using i:xtic(1)
set ylabel "relative to glibc (lower is better)"
set title "Whole programs and fragmentation: median time and memory / glibc's (bars clipped at 3)"
plot for [i=2:$NCOL] '$OUT/chart_work.dat' using i:xtic(1)
unset multiplot
EOF
case " $ALLOCS " in
  *" glibc "*) gnuplot "$OUT/chart.gp" 2>"$OUT/work/gnuplot.log" || log "chart failed (see $OUT/work/gnuplot.log)" ;;
  *) log "no chart: it shows ratios to glibc, which was not run" ;;
esac

echo "## Machine"
echo
cat "$OUT/machine.md"
echo
cat "$OUT/results.md"
[ -f "$OUT/chart.png" ] && echo && echo "Chart: $OUT/chart.png"
if [ -s "$OUT/failures.txt" ]; then
  echo "Some runs failed: see $OUT/failures.txt" >&2
  exit 1
fi
exit 0
