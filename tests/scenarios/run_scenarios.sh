#!/usr/bin/env bash
# Runs the scenario programs of tests/scenarios in each mode: once without poolguard ("glibc",
# which proves the scenario itself right) and with libpoolguard.so preloaded in every mode. Each
# run has a timeout (a hang is a failure) and must exit 0; under poolguard it must report no heap
# error, and in leak mode the report must show no direct leak (the scenarios free what they
# allocate).
#
#   run_scenarios.sh [-t SECONDS] [-m MODE,...] [-e VAR=VALUE]... LIBPOOLGUARD BINDIR [SCENARIO...]
#
#   -t SECONDS   timeout of each run (default 30)
#   -m MODES     comma-separated, from: glibc default redzone page sample leaks profile (all)
#   -e VAR=VAL   extra environment for the preloaded runs (e.g. -e POOLGUARD_SEGMENT=off)
#   SCENARIO     a program name without its scen_ prefix (default: every BINDIR/scen_*)
#
# Prints one line per run, the output of failed ones, and a matrix when there was more than one
# run; exits 1 if any run failed. Runs start from an empty environment (PATH, HOME, TMPDIR kept).
set -euo pipefail

usage() {
  sed -n '8,13p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

timeout_s=30
modes="glibc,default,redzone,page,sample,leaks,profile"
extra_env=()
while getopts "t:m:e:h" opt; do
  case "$opt" in
    t) timeout_s="$OPTARG" ;;
    m) modes="$OPTARG" ;;
    e) extra_env+=("$OPTARG") ;;
    *) usage ;;
  esac
done
shift $((OPTIND - 1))
[[ $# -ge 2 ]] || usage
lib="$1"
bindir="$2"
shift 2
[[ -f "$lib" ]] || { echo "library not found: $lib" >&2; exit 2; }
lib="$(cd "$(dirname "$lib")" && pwd)/$(basename "$lib")"

scenarios=("$@")
if [[ ${#scenarios[@]} -eq 0 ]]; then
  for f in "$bindir"/scen_*; do
    [[ -x "$f" ]] && scenarios+=("${f##*/scen_}")
  done
fi
[[ ${#scenarios[@]} -gt 0 ]] || { echo "no scenario programs in $bindir" >&2; exit 2; }
IFS=, read -r -a mode_list <<<"$modes"

# The environment that makes each mode (after LD_PRELOAD). Small N for sampling, so that it
# really happens in short runs; a small profile rate for the same reason.
mode_env() {
  case "$1" in
    default) ;;
    redzone) echo POOLGUARD_GUARD=redzone ;;
    page) echo POOLGUARD_GUARD=page ;;
    sample) echo POOLGUARD_GUARD_SAMPLE=50 ;;
    leaks) echo POOLGUARD_LEAKS=1 ;;
    profile) echo POOLGUARD_PROFILE=4K ;;
    *) echo "unknown mode $1" >&2; return 1 ;;
  esac
}
for m in "${mode_list[@]}"; do
  [[ $m == glibc ]] || mode_env "$m" >/dev/null || exit 2
done

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pg-scenarios.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
declare -A result
failures=0
runs=0

# Prints the last lines of a run's output, indented.
show() {
  local label="$1" file="$2"
  [[ -s "$file" ]] || return 0
  echo "    --- $label (last 25 lines) ---"
  tail -n 25 "$file" | sed 's/^/    /'
}

# watch_for_hang TIMEOUT_PID START: a few seconds before the timeout fires, writes the stacks of
# every thread of the run's processes (timeout's process group) to $tmp/bt with gdb, so that a
# hang's report says where it hung. SCENARIO_GDB=0 turns this off.
watch_for_hang() {
  local tpid="$1" start="$2"
  [[ ${SCENARIO_GDB:-1} != 0 ]] && command -v gdb >/dev/null || return 0
  local snap_at=$((timeout_s > 6 ? timeout_s - 3 : timeout_s / 2))
  while kill -0 "$tpid" 2>/dev/null; do
    if awk -v a="$start" -v b="$EPOCHREALTIME" -v t="$snap_at" 'BEGIN { exit !(b - a >= t) }'; then
      local p n=0
      for p in $(pgrep -g "$tpid"); do
        [[ $p == "$tpid" ]] && continue
        ((++n > 4)) && break
        echo "=== pid $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"
        timeout 20 gdb -p "$p" -batch -ex 'thread apply all bt' 2>&1 | grep -E '^(#|Thread )' || true
      done >"$tmp/bt" 2>&1
      return 0
    fi
    sleep 0.5
  done
}

run_one() {
  local scen="$1" mode="$2"
  local prog="$bindir/scen_$scen" out="$tmp/out" err="$tmp/err"
  local -a env=(PATH="$PATH" HOME="${HOME:-/}" TMPDIR="${TMPDIR:-/tmp}" LC_ALL=C)
  if [[ $mode != glibc ]]; then
    env+=(LD_PRELOAD="$lib")
    local v
    v="$(mode_env "$mode")"
    [[ -n $v ]] && env+=("$v")
    env+=("${extra_env[@]}")
  fi
  [[ -x "$prog" ]] || { echo "no program $prog" >&2; exit 2; }
  local start end rc=0 why=""
  rm -f "$tmp/bt"
  start=$EPOCHREALTIME
  # timeout first, so that only the scenario runs preloaded. SIGKILL, to the whole process group
  # (timeout makes its own): a process hung with every signal blocked (libunwind blocks them all
  # while it holds its lock) ignores SIGTERM, and a hung child would outlive its killed parent.
  timeout -s KILL "$timeout_s" env -i "${env[@]}" "$prog" >"$out" 2>"$err" </dev/null &
  local tpid=$!
  # Its output goes nowhere: a sleep it leaves behind must not hold ctest's pipe open.
  watch_for_hang "$tpid" "$start" </dev/null >/dev/null 2>&1 &
  local watcher=$!
  wait "$tpid" || rc=$?
  # After a timeout the watcher may still be writing the stacks: let it finish (gdb's own timeout
  # bounds it); otherwise it is not needed any more.
  [[ $rc -eq 124 || $rc -eq 137 ]] || kill "$watcher" 2>/dev/null || true
  wait "$watcher" 2>/dev/null || true
  end=$EPOCHREALTIME
  local secs
  secs="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    why="HANG: no exit within ${timeout_s} s (killed)"
  elif [[ $rc -ne 0 ]]; then
    why="exit status $rc"
    ((rc > 128)) && why+=" (signal $((rc - 128)))"
  elif [[ $mode == glibc ]] && grep -q '^poolguard' "$err"; then
    why="poolguard output in a run without poolguard"
  elif [[ $mode != glibc ]] && grep -q '^poolguard: ERROR' "$err"; then
    why="poolguard reported a heap error"
  elif [[ $mode == leaks ]] && ! grep -q '^poolguard: leak-summary ' "$err"; then
    why="no leak report at exit"
  elif [[ $mode == leaks ]] && grep -q '^poolguard: direct leak of' "$err"; then
    why="direct leaks reported (the scenario frees everything)"
  fi
  runs=$((runs + 1))
  if [[ -z $why ]]; then
    result[$scen.$mode]=PASS
    printf 'PASS  %-14s %-8s %5s s\n' "$scen" "$mode" "$secs"
  else
    failures=$((failures + 1))
    [[ $why == HANG* ]] && result[$scen.$mode]=HANG || result[$scen.$mode]=FAIL
    printf 'FAIL  %-14s %-8s %5s s  %s\n' "$scen" "$mode" "$secs" "$why"
    show stdout "$out"
    show stderr "$err"
    if [[ -s "$tmp/bt" ]]; then
      echo "    --- stacks shortly before the timeout (gdb) ---"
      head -n 120 "$tmp/bt" | sed 's/^/    /'
    fi
  fi
}

for scen in "${scenarios[@]}"; do
  for mode in "${mode_list[@]}"; do
    run_one "$scen" "$mode"
  done
done

if ((runs > 1)); then
  echo
  printf '%-14s' scenario
  for mode in "${mode_list[@]}"; do printf ' %-8s' "$mode"; done
  echo
  for scen in "${scenarios[@]}"; do
    printf '%-14s' "$scen"
    for mode in "${mode_list[@]}"; do printf ' %-8s' "${result[$scen.$mode]}"; done
    echo
  done
fi
if ((failures > 0)); then
  echo "$failures of $runs runs failed (library: $lib)"
  exit 1
fi
echo "all $runs runs passed (library: $lib)"
