#!/usr/bin/env bash
# Each bug program under one guard mode, for pooled and large sizes, with POOLGUARD_ON_ERROR=abort
# and =report: the report names the right kind on its first line and the allocation stack names
# make_block(); the program aborts (134) or, where the error is found at a free and reporting
# continues, goes on and prints "survived".
#   bugs_test.sh LIBPOOLGUARD MODE BINDIR      MODE: redzone, page or sample (every block sampled)
set -uo pipefail

lib="${1:?usage: bugs_test.sh LIBPOOLGUARD MODE BINDIR}"
mode="${2:?mode}"
bin="${3:?bindir}"
case "$mode" in
  redzone | page) guard_env=(POOLGUARD_GUARD="$mode") ;;
  sample) guard_env=(POOLGUARD_GUARD_SAMPLE=1) ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pg-guard-bugs.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
failures=0
runs=0

fail() {
  echo "FAIL: $mode $*" >&2
  failures=$((failures + 1))
}

# expect PROGRAM SIZE ON_ERROR KIND OUTCOME
#   KIND: the report's kind, or "none"; OUTCOME: abort (134, no "survived") or continue (0,
#   "survived"). Extra checks per program below.
expect() {
  local prog="$1" size="$2" on_error="$3" kind="$4" outcome="$5"
  local name="$prog $size $on_error" rc=0
  runs=$((runs + 1))
  env -i PATH="$PATH" LD_PRELOAD="$lib" "${guard_env[@]}" POOLGUARD_ON_ERROR="$on_error" \
    "$bin/pg_guard_$prog" "$size" >"$tmp/out" 2>"$tmp/err" || rc=$?
  if [[ $outcome == abort ]]; then
    [[ $rc -eq 134 ]] || fail "$name: exit status $rc, expected 134 (abort)"
  else
    [[ $rc -eq 0 ]] || fail "$name: exit status $rc, expected 0"
    grep -qx survived "$tmp/out" || fail "$name: did not go on after the report"
  fi
  if [[ $kind == none ]]; then
    ! grep -q 'poolguard: ERROR' "$tmp/err" || fail "$name: unexpected report: $(head -1 "$tmp/err")"
  else
    local first
    first="$(head -n 1 "$tmp/err")"
    [[ $first == "poolguard: ERROR: $kind "* ]] ||
      fail "$name: first line of stderr is '$first', expected 'poolguard: ERROR: $kind ...'"
    [[ $(grep -c '^poolguard: ERROR' "$tmp/err") -eq 1 ]] || fail "$name: more than one report"
    sed -n '/^  allocated by thread/,/^  [a-z]/p' "$tmp/err" | grep -q ' in make_block (' ||
      fail "$name: the allocation stack does not name make_block"
    grep -q '^    #0 0x[0-9a-f]* in ' "$tmp/err" || fail "$name: no symbolized frame"
  fi
  if [[ $prog == double_free && $kind != none ]]; then
    sed -n '/^  freed by thread/,/^  [a-z]/p' "$tmp/err" | grep -q ' in free_twice (' ||
      fail "$name: the free stack does not name free_twice"
  fi
  if [[ -n "${PG_GUARD_VERBOSE:-}" || $failures -gt 0 ]]; then
    if [[ $failures -gt 0 && ! -f "$tmp/shown" ]]; then
      touch "$tmp/shown"
      echo "--- stderr of $name:" >&2
      head -n 40 "$tmp/err" >&2
    fi
  fi
}

# page and sample put each block against a guard page; a fault cannot be resumed, so those end the
# process even with POOLGUARD_ON_ERROR=report. A block whose size is not a multiple of 16 has a few
# bytes of slack before the guard page: a one-byte overflow lands there and is found at free().
paged() { [[ $mode != redzone ]]; }

for on_error in abort report; do
  cont=continue
  [[ $on_error == abort ]] && cont=abort
  for size in 24 64 4096 5000 100000; do
    # Overflow by one byte.
    if paged && ((size % 16 == 0)); then
      expect overflow "$size" "$on_error" heap-buffer-overflow abort
    else
      expect overflow "$size" "$on_error" heap-buffer-overflow "$cont"
    fi
    # Underflow by one byte: a fault when the block starts a page.
    if paged && ((size % 4096 == 0)); then
      expect underflow "$size" "$on_error" heap-buffer-underflow abort
    else
      expect underflow "$size" "$on_error" heap-buffer-underflow "$cont"
    fi
    # Use after free: redzone mode finds the write at exit, and cannot see the read.
    if paged; then
      expect uaf_write "$size" "$on_error" use-after-free abort
      expect uaf_read "$size" "$on_error" use-after-free abort
    else
      expect uaf_write "$size" "$on_error" use-after-free "$cont"
      [[ $cont == abort ]] && ! grep -qx survived "$tmp/out" && fail "uaf_write $size: aborted before exit"
      expect uaf_read "$size" "$on_error" none continue
      grep -qx 'read dd' "$tmp/out" || fail "uaf_read $size: read $(head -1 "$tmp/out"), expected the fill dd"
    fi
    expect double_free "$size" "$on_error" double-free "$cont"
    expect invalid_free "$size" "$on_error" invalid-free "$cont"
  done
done

# POOLGUARD_LOG: the report goes to the file, not to stderr.
rc=0
env -i PATH="$PATH" LD_PRELOAD="$lib" "${guard_env[@]}" POOLGUARD_LOG="$tmp/log.%p" \
  "$bin/pg_guard_double_free" 32 >"$tmp/out" 2>"$tmp/err" || rc=$?
runs=$((runs + 1))
[[ $rc -eq 134 ]] || fail "POOLGUARD_LOG run: exit status $rc"
! grep -q 'poolguard: ERROR' "$tmp/err" || fail "POOLGUARD_LOG run: report on stderr"
cat "$tmp"/log.* 2>/dev/null | head -n 1 | grep -q '^poolguard: ERROR: double-free ' ||
  fail "POOLGUARD_LOG run: no report in the log file"

# POOLGUARD_GUARD_FILL=on: new blocks read 0xcd, calloc's 0, also when their memory is reused.
runs=$((runs + 1))
fill="$(env -i PATH="$PATH" LD_PRELOAD="$lib" "${guard_env[@]}" POOLGUARD_QUARANTINE=0 \
  POOLGUARD_GUARD_FILL=on "$bin/pg_guard_fill" 2>&1 | tr '\n' ' ')"
[[ $fill == "cd 00 cd 00 " ]] || fail "POOLGUARD_GUARD_FILL=on: read '$fill', expected 'cd 00 cd 00'"

if [[ $failures -gt 0 ]]; then
  echo "$failures of $runs runs failed ($mode)" >&2
  exit 1
fi
echo "guard bugs ($mode): $runs runs, all reported as expected"
