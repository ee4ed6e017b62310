#!/usr/bin/env bash
# tests/programs/new_delete.cpp: every form of operator new/delete, containers, exceptions.
#   new_delete.sh LIBPOOLGUARD PG_NEW_DELETE
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
prog="${2:?usage: new_delete.sh LIBPOOLGUARD PG_NEW_DELETE}"

pg_run_both new_delete "$prog"
pg_stats_check new_delete 1
# 20,000 unordered_map nodes and 30,000 std::string objects from make_unique are all small.
pg_expect_ge "$(pg_stat new_delete small_allocs)" 50000 "small_allocs"
