#!/usr/bin/env bash
# A malformed POOLGUARD_STATS value: one line on stderr naming the variable, the program still
# runs and exits 0. Control: a valid value gives the statistics and no such complaint.
#   malformed.sh LIBPOOLGUARD
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
true_bin="$(type -P true)"
[[ -n "$true_bin" ]] || pg_fail "no true program"

rc=0
env LD_PRELOAD="$PG_LIB" POOLGUARD_STATS=bogus "$true_bin" >"$PG_TMP/bad.out" 2>"$PG_TMP/bad.err" ||
  rc=$?
[[ $rc -eq 0 ]] || pg_fail "POOLGUARD_STATS=bogus true exited with $rc"
[[ ! -s "$PG_TMP/bad.out" ]] || pg_fail "POOLGUARD_STATS=bogus printed on stdout: $(cat "$PG_TMP/bad.out")"
lines="$(wc -l <"$PG_TMP/bad.err")"
[[ $lines -eq 1 ]] || { cat "$PG_TMP/bad.err" >&2; pg_fail "expected one line on stderr, got $lines"; }
grep -q 'POOLGUARD_STATS' "$PG_TMP/bad.err" || pg_fail "the message does not name POOLGUARD_STATS: $(cat "$PG_TMP/bad.err")"
pg_note "POOLGUARD_STATS=bogus: $(cat "$PG_TMP/bad.err")"

env LD_PRELOAD="$PG_LIB" POOLGUARD_STATS=exit "$true_bin" >"$PG_TMP/good.out" 2>"$PG_TMP/good.err" ||
  pg_fail "POOLGUARD_STATS=exit true failed"
grep -o '{"poolguard":.*}' "$PG_TMP/good.err" >"$PG_TMP/good.stats" || true
pg_stats_check good 1
if pg_strip_stats "$PG_TMP/good.err" | grep -q .; then
  pg_fail "POOLGUARD_STATS=exit printed more than the statistics: $(pg_strip_stats "$PG_TMP/good.err")"
fi
