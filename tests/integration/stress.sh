#!/usr/bin/env bash
# tests/programs/stress.c, bounded in time: a short control run without poolguard (it checks the
# test program itself), then the real run with it.
#   stress.sh LIBPOOLGUARD PG_STRESS [SECONDS]     seed: $PG_STRESS_SEED, else from the clock
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
prog="${2:?usage: stress.sh LIBPOOLGUARD PG_STRESS [SECONDS]}"
seconds="${3:-10}"
seed="${PG_STRESS_SEED:-$(date +%s)}"
pg_note "seed $seed (set PG_STRESS_SEED=$seed to repeat it)"

"$prog" 1 "$seed" 4 >"$PG_TMP/control.out" 2>"$PG_TMP/control.err" ||
  { cat "$PG_TMP/control.err" >&2; pg_fail "control run without poolguard failed"; }

rc=0
env LD_PRELOAD="$PG_LIB" POOLGUARD_STATS=exit "$prog" "$seconds" "$seed" 4 \
  >"$PG_TMP/stress.out" 2>"$PG_TMP/stress.err" || rc=$?
pg_strip_stats "$PG_TMP/stress.err" >&2
[[ $rc -eq 0 ]] || pg_fail "pg_stress exited with $rc under poolguard"
grep -qx 'stress ok' "$PG_TMP/stress.out" || pg_fail "pg_stress did not print 'stress ok'"
grep -o '{"poolguard":.*}' "$PG_TMP/stress.err" >"$PG_TMP/stress.stats" || true
pg_stats_check stress 1
# Fork children leave through _exit(): only the parent reports.
[[ $(pg_stat_lines stress) -eq 1 ]] || pg_fail "expected one statistics line (children _exit)"
# Every operation allocates at least one small block on average (a 24-byte record or a batch of
# 24 small blocks): fewer small allocations than operations means the pools were bypassed.
ops="$(sed -n 's/^stress: \([0-9][0-9]*\) ops.*/\1/p' "$PG_TMP/stress.err")"
[[ -n "$ops" ]] || pg_fail "pg_stress did not report its operation count"
pg_expect_ge "$(pg_stat stress small_allocs)" "$ops" "small_allocs for $ops operations"
