#!/usr/bin/env bash
# Debian's python3 with PYTHONMALLOC=malloc (every object through malloc) on objects.py.
#   python.sh LIBPOOLGUARD
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"

workload() {
  PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 "$PG_PYTHON" -B "$PG_DIR/objects.py"
}

pg_run_both python workload
grep -qx 'objects.py ok' "$PG_TMP/python.pg.out" || pg_fail "objects.py did not finish"
pg_stats_check python 1
# The script makes well over a million small objects; the interpreter's start alone makes tens of
# thousands. Far fewer means the pools are not serving python's mallocs.
pg_expect_ge "$(pg_stat python small_allocs)" 500000 "python small_allocs"
