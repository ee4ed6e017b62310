#!/usr/bin/env bash
# tests/programs/threads_fork.c: cross-thread frees, blocks outliving their thread, fork from a
# threaded parent. Same output with and without poolguard; one statistics line per process.
#   threads_fork.sh LIBPOOLGUARD PG_THREADS_FORK
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
prog="${2:?usage: threads_fork.sh LIBPOOLGUARD PG_THREADS_FORK}"

pg_run_both threads_fork "$prog"
out="$PG_TMP/threads_fork.pg.out"
forks="$(sed -n 's/.* forks=\([0-9][0-9]*\) ok$/\1/p' "$out")"
passed="$(sed -n 's/.* passed=\([0-9][0-9]*\) .*/\1/p' "$out")"
[[ -n "$forks" && -n "$passed" ]] || pg_fail "unexpected output: $(cat "$out")"
# The parent and every child (they leave through exit()) print their own line.
pg_stats_check threads_fork $((forks + 1))
lines="$(pg_stat_lines threads_fork)"
[[ $lines -eq $((forks + 1)) ]] || pg_fail "$lines statistics lines, expected $((forks + 1))"
# Each passed block travels with a 32-byte message header: at least that many small allocations.
pg_expect_ge "$(pg_stat threads_fork small_allocs)" "$passed" "parent's small_allocs"
