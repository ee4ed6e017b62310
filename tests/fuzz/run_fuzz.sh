#!/usr/bin/env bash
# Builds and runs the libFuzzer fuzzers of tests/fuzz (the ctest entries of label fuzz and
# scripts/fuzz.sh both come through here).
#
#   run_fuzz.sh build FUZZ_DIR
#       configures tests/fuzz with clang into FUZZ_DIR/build (once; reused) and builds it.
#       FUZZ_DIR is <main build>/fuzz, where configuring poolguard wrote core.cmake.
#   run_fuzz.sh run FUZZ_DIR FUZZER SECONDS [WORK_DIR]
#       replays tests/fuzz/regressions/FUZZER/* (each must pass), then fuzzes for SECONDS from
#       tests/fuzz/corpus/FUZZER. New inputs go to WORK_DIR (default FUZZ_DIR/work/FUZZER,
#       emptied first; a WORK_DIR given is kept, for campaigns), never into the repository.
#       api_fuzzer_sampled uses api_fuzzer's corpus and regressions, and its own regressions.
#   run_fuzz.sh merge FUZZ_DIR FUZZER FROM_DIR
#       adds to tests/fuzz/corpus/FUZZER the inputs of FROM_DIR that reach new coverage
#       (libFuzzer's -merge=1).
#   run_fuzz.sh seeds FUZZ_DIR
#       rewrites the seed inputs, tests/fuzz/corpus/*/seed-*, with make_seeds (make_seeds.cpp).
#
# Fails on a crash, a sanitizer report (ASan, UBSan, LeakSanitizer), a model mismatch or a
# poolguard error report; the input that did it is kept in FUZZ_DIR/artifacts/FUZZER/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
say() { echo "run_fuzz.sh: $*" >&2; }
die() {
  say "$*"
  exit 1
}

[[ $# -ge 2 ]] || die "usage: run_fuzz.sh build|seeds FUZZ_DIR | run FUZZ_DIR FUZZER SECONDS [WORK_DIR] | merge FUZZ_DIR FUZZER FROM_DIR"
mode="$1"
fuzz_dir="$2"
[[ "$fuzz_dir" == /* ]] || fuzz_dir="$PWD/$fuzz_dir"
build_dir="$fuzz_dir/build"

# Sanitizer settings for every run: UB stops the run (the fuzzers are built with
# -fno-sanitize-recover=undefined as well), with a stack. No leak checks, as for the unit tests
# under ASan: the core never allocates through malloc, so LeakSanitizer would only watch the
# harness, and it needs ptrace, which containers may refuse.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

build() {
  # libFuzzer comes with clang only: without it this must fail, not pass quietly.
  local cxx="" cc=""
  for v in "" -14; do
    if command -v "clang++$v" >/dev/null 2>&1 && command -v "clang$v" >/dev/null 2>&1; then
      cxx="clang++$v" cc="clang$v"
      break
    fi
  done
  [[ -n "$cxx" ]] || die "FAILED: clang++ not found; the fuzz tests need clang and libclang-rt-14-dev (scripts/deps.sh installs them)"
  [[ -f "$fuzz_dir/core.cmake" ]] || die "FAILED: $fuzz_dir/core.cmake missing: configure poolguard first"
  local cfg=()
  if [[ ! -f "$build_dir/CMakeCache.txt" ]]; then
    cfg=(-G Ninja "-DCMAKE_C_COMPILER=$cc" "-DCMAKE_CXX_COMPILER=$cxx")
  fi
  cmake -S "$here" -B "$build_dir" "${cfg[@]}" "-DPG_CORE_LIST=$fuzz_dir/core.cmake" >/dev/null ||
    die "FAILED: configuring $here (clang: $cxx)"
  nice cmake --build "$build_dir" || die "FAILED: building the fuzzers"
  say "built $build_dir/{api_fuzzer,api_fuzzer_sampled,options_fuzzer,segment_fuzzer,recording_fuzzer,make_seeds}"
}

# Fails if the log holds any report, even when the fuzzer's exit status says it went well.
check_log() {
  local log="$1" what="$2"
  if grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:|MODEL MISMATCH|poolguard: ERROR|deadly signal' "$log"; then
    say "FAILED: $what reported an error (log: $log)"
    grep -E 'ERROR: |runtime error:|MODEL MISMATCH|SUMMARY|Test unit written' "$log" | head -20 >&2
    return 1
  fi
}

run() {
  local fuzzer="$1" seconds="$2" work="${3:-}"
  local bin="$build_dir/$fuzzer"
  [[ -x "$bin" ]] || die "FAILED: $bin not built (run_fuzz.sh build $fuzz_dir)"
  local artifacts="$fuzz_dir/artifacts/$fuzzer" logs="$fuzz_dir/logs"
  mkdir -p "$artifacts" "$logs"
  local common=(-artifact_prefix="$artifacts/" -timeout=25 -rss_limit_mb=3072 -max_len=4096)
  [[ -f "$here/$fuzzer.dict" ]] && common+=(-dict="$here/$fuzzer.dict")

  # api_fuzzer_sampled is api_fuzzer in another configuration: the same input format, corpus and
  # regressions (and its own).
  local base="${fuzzer%_sampled}"

  # Reproducers of past failures: each is run once and must pass.
  local regs=() dirs=("$here/regressions/$base") dir
  [[ "$fuzzer" != "$base" ]] && dirs+=("$here/regressions/$fuzzer")
  for dir in "${dirs[@]}"; do
    [[ -d "$dir" ]] && mapfile -t -O "${#regs[@]}" regs < <(find "$dir" -type f ! -name '*.md' | sort)
  done
  if [[ ${#regs[@]} -gt 0 ]]; then
    local rlog="$logs/$fuzzer.regressions.log"
    if ! "$bin" "${common[@]}" "${regs[@]}" >"$rlog" 2>&1; then
      tail -40 "$rlog" >&2
      die "FAILED: a regression input of $fuzzer fails (log: $rlog)"
    fi
    check_log "$rlog" "$fuzzer (regressions)" || exit 1
    say "$fuzzer: ${#regs[@]} regression inputs pass"
  fi

  if [[ -z "$work" ]]; then
    work="$fuzz_dir/work/$fuzzer"
    rm -rf "$work"
  fi
  mkdir -p "$work"
  local log="$logs/$fuzzer.log" rc=0
  # The first directory receives new inputs; the repository's corpus is only read.
  "$bin" "${common[@]}" -max_total_time="$seconds" -print_final_stats=1 \
    "$work" "$here/corpus/$base" >"$log" 2>&1 || rc=$?
  if [[ $rc -ne 0 ]]; then
    tail -60 "$log" >&2
    die "FAILED: $fuzzer exited with status $rc (log: $log; input in $artifacts/)"
  fi
  check_log "$log" "$fuzzer" || exit 1
  local execs rate
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  say "$fuzzer: ${seconds}s, ${execs:-?} executions, ${rate:-?} exec/s, $(grep -m1 -o 'cov: [0-9]* ft: [0-9]*' <(tac "$log") || true); no failure"
}

merge() {
  local fuzzer="$1" from="$2"
  local bin="$build_dir/$fuzzer" corpus="$here/corpus/${fuzzer%_sampled}"
  [[ -x "$bin" ]] || die "FAILED: $bin not built (run_fuzz.sh build $fuzz_dir)"
  mkdir -p "$corpus"
  local before after
  before=$(find "$corpus" -type f | wc -l)
  "$bin" -merge=1 -max_len=4096 "$corpus" "$from" >"$fuzz_dir/logs/$fuzzer.merge.log" 2>&1 ||
    die "FAILED: merging $from into $corpus (log: $fuzz_dir/logs/$fuzzer.merge.log)"
  after=$(find "$corpus" -type f | wc -l)
  say "$fuzzer: corpus $before -> $after inputs ($corpus)"
}

seeds() {
  local bin="$build_dir/make_seeds"
  [[ -x "$bin" ]] || die "FAILED: $bin not built (run_fuzz.sh build $fuzz_dir)"
  rm -f "$here"/corpus/*/seed-*
  "$bin" "$here/corpus" || die "FAILED: make_seeds"
  say "seeds: $(find "$here/corpus" -name 'seed-*' | wc -l) files in $here/corpus"
}

case "$mode" in
  build) build ;;
  run)
    [[ $# -ge 4 ]] || die "usage: run_fuzz.sh run FUZZ_DIR FUZZER SECONDS [WORK_DIR]"
    run "$3" "$4" "${5:-}"
    ;;
  merge)
    [[ $# -eq 4 ]] || die "usage: run_fuzz.sh merge FUZZ_DIR FUZZER FROM_DIR"
    mkdir -p "$fuzz_dir/logs"
    merge "$3" "$4"
    ;;
  seeds) seeds ;;
  *) die "unknown mode $mode" ;;
esac
