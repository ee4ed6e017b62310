#!/usr/bin/env bash
# sqlite3 on a generated workload: a table filled in one transaction, indexes, joins, grouping,
# updates, deletes, VACUUM and an integrity check.
#   sqlite.sh LIBPOOLGUARD
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
pg_need sqlite3 awk

pg_sqlite_workload "$PG_TMP/workload.sql"

workload() {
  sqlite3 -batch -bail test.db <"$PG_TMP/workload.sql"
}

pg_run_both sqlite workload
grep -qx ok "$PG_TMP/sqlite.pg.out" || pg_fail "integrity check did not print ok"
pg_stats_check sqlite 1
# Parsing 30,000 INSERT statements alone takes several small allocations each.
pg_expect_ge "$(pg_stat sqlite small_allocs)" 100000 "sqlite3 small_allocs"
