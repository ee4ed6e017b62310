#!/usr/bin/env bash
# tests/programs/demo.c, the workload scripts/run.sh shows by default.
#   demo.sh LIBPOOLGUARD PG_DEMO
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
prog="${2:?usage: demo.sh LIBPOOLGUARD PG_DEMO}"

pg_run_both demo "$prog"
pg_stats_check demo 1
# 600,000 generated words, each a small malloc.
pg_expect_ge "$(pg_stat demo small_allocs)" 600000 "small_allocs"
