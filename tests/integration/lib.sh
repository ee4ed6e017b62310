# shellcheck shell=bash
# Common functions of the integration tests: each test runs a real program twice, without and with
# libpoolguard.so preloaded, compares what the two runs printed, and reads the statistics line
# that POOLGUARD_STATS=exit makes every preloaded process print on stderr.
#
#   source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   pg_init "$1"                       # path of libpoolguard.so
#   workload() { some_program args; }  # runs in a fresh, empty directory
#   pg_run_both NAME workload          # fails the test if the runs differ
#   pg_stats_check NAME 1              # >= 1 well-formed statistics line
#   pg_expect_ge "$(pg_stat NAME small_allocs max)" 1000 "small allocations served by the pools"
#
# Requires bash; uses Debian's /usr/bin/python3 (never preloaded) to parse the JSON.
set -euo pipefail

PG_TEST="$(basename "$0" .sh)"
# shellcheck disable=SC2034 # used by the tests that source this file
PG_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"  # tests/integration in the source tree
PG_PYTHON=/usr/bin/python3
PG_LIB=""
PG_TMP=""

pg_fail() {
  echo "FAIL: $PG_TEST: $*" >&2
  exit 1
}

pg_note() { echo "$PG_TEST: $*"; }

pg_cleanup() {
  local rc=$?
  [[ -n "$PG_TMP" && -d "$PG_TMP" ]] || return 0
  if [[ $rc -eq 0 ]]; then
    rm -rf "$PG_TMP"
  else
    echo "$PG_TEST: files of the failed run kept in $PG_TMP" >&2
  fi
}

# pg_init LIB: checks the library, clears any inherited preload and POOLGUARD_* settings, makes
# the scratch directory $PG_TMP (removed on success, kept on failure) and fixes the locale and
# time zone so that outputs are reproducible.
pg_init() {
  [[ $# -ge 1 && -n "$1" ]] || pg_fail "usage: $0 LIBPOOLGUARD [ARGS...]"
  [[ -f "$1" ]] || pg_fail "library not found: $1"
  PG_LIB="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
  [[ -x "$PG_PYTHON" ]] || pg_fail "$PG_PYTHON is missing (scripts/deps.sh installs python3)"
  unset LD_PRELOAD
  local v
  for v in $(compgen -e POOLGUARD_ || true); do unset "$v"; done
  export LC_ALL=C TZ=UTC
  PG_TMP="$(mktemp -d "${TMPDIR:-/tmp}/pg-$PG_TEST.XXXXXX")"
  trap pg_cleanup EXIT
}

# pg_need PROGRAM...: fails unless every program is installed.
pg_need() {
  local p
  for p in "$@"; do
    command -v "$p" >/dev/null 2>&1 || pg_fail "missing program $p (scripts/deps.sh installs it)"
  done
}

# Drops the statistics output from stderr text: each JSON line and the "poolguard: " table lines
# right after it. Other "poolguard: " lines (error reports, option warnings) are kept.
pg_strip_stats() {
  awk '
    index($0, "{\"poolguard\":") { sub(/\{"poolguard":.*\}$/, ""); if ($0 != "") print; in_table = 1; next }
    in_table && /^poolguard: / { next }
    { in_table = 0; print }
  ' "$1"
}

# pg_run_both NAME CMD [ARGS...]
# Runs CMD (a program or a shell function) twice in the same directory $PG_TMP/work, recreated
# empty each time, so paths that end up in outputs are the same: first as is, then with
# LD_PRELOAD=$PG_LIB and POOLGUARD_STATS=exit. Requires the first run to succeed and print
# something, and the second to give the same exit status, stdout and stderr (statistics output
# removed). Leaves:
#   $PG_TMP/NAME.plain/, $PG_TMP/NAME.pg/   the work directory after each run (for file checks)
#   $PG_TMP/NAME.{plain,pg}.{out,err}       what each run printed
#   $PG_TMP/NAME.stats                      the JSON statistics lines of the preloaded run
pg_run_both() {
  local name="$1"
  shift
  local mode rc_plain=0 rc_pg=0
  for mode in plain pg; do
    rm -rf "$PG_TMP/work"
    mkdir "$PG_TMP/work"
    # Not "( ... ) || rc=$?": on the left of || bash ignores set -e inside the subshell, and a
    # workload function would go on after a failing command.
    local rc
    set +e
    (
      set -e
      cd "$PG_TMP/work"
      if [[ $mode == pg ]]; then export LD_PRELOAD="$PG_LIB" POOLGUARD_STATS=exit; fi
      "$@"
    ) >"$PG_TMP/$name.$mode.out" 2>"$PG_TMP/$name.$mode.err" </dev/null
    rc=$?
    set -e
    rm -rf "$PG_TMP/$name.$mode"
    mv "$PG_TMP/work" "$PG_TMP/$name.$mode"
    if [[ $mode == plain ]]; then rc_plain=$rc; else rc_pg=$rc; fi
  done

  local plain="$PG_TMP/$name.plain" pg="$PG_TMP/$name.pg"
  if [[ $rc_plain -ne 0 || ! -s "$plain.out" ]]; then
    tail -n 30 "$plain.err" >&2 || true
    pg_fail "$name: the workload itself failed (exit $rc_plain) or printed nothing, without poolguard"
  fi
  grep -o '{"poolguard":.*}' "$pg.err" >"$PG_TMP/$name.stats" || true
  if [[ $rc_pg -ne $rc_plain ]]; then
    tail -n 30 "$pg.err" >&2 || true
    pg_fail "$name: exit status $rc_pg with poolguard, $rc_plain without"
  fi
  if ! diff -u "$plain.out" "$pg.out" >"$PG_TMP/$name.out.diff"; then
    head -n 60 "$PG_TMP/$name.out.diff" >&2
    pg_fail "$name: stdout differs with poolguard (diff above)"
  fi
  pg_strip_stats "$plain.err" >"$plain.err.filtered"
  pg_strip_stats "$pg.err" >"$pg.err.filtered"
  if ! diff -u "$plain.err.filtered" "$pg.err.filtered" >"$PG_TMP/$name.err.diff"; then
    head -n 60 "$PG_TMP/$name.err.diff" >&2
    pg_fail "$name: stderr differs with poolguard (diff above, statistics lines removed)"
  fi
  pg_note "$name: same output with and without poolguard ($(wc -l <"$pg.out") lines, exit $rc_pg)"
}

# pg_stats_check NAME MIN_PROCESSES
# Checks $PG_TMP/NAME.stats: at least MIN_PROCESSES lines, each a JSON object with "poolguard" and
# the integer counters the exit summary promises, one per process (distinct pids), and counters
# that are consistent (frees <= allocations, released <= mapped arenas, a peak when pools were
# used). Prints one summary line.
pg_stats_check() {
  local name="$1" min="$2"
  "$PG_PYTHON" - "$PG_TMP/$name.stats" "$min" <<'PY' || pg_fail "$name: bad statistics output"
import json
import sys

path, minimum = sys.argv[1], int(sys.argv[2])
keys = ["pid", "small_allocs", "small_frees", "large_allocs", "arenas_mapped", "arenas_released",
        "peak_small_bytes"]
with open(path) as f:
    lines = f.read().splitlines()
errors = []
if len(lines) < minimum:
    errors.append("%d statistics lines, expected at least %d (one per process)" % (len(lines), minimum))
pids = set()
for n, line in enumerate(lines, 1):
    try:
        s = json.loads(line)
    except ValueError as e:
        errors.append("line %d is not JSON (%s): %s" % (n, e, line[:200]))
        continue
    if not isinstance(s, dict) or "poolguard" not in s:
        errors.append("line %d has no \"poolguard\" key" % n)
        continue
    bad = [k for k in keys if not (isinstance(s.get(k), int) and not isinstance(s.get(k), bool)
                                   and s[k] >= 0)]
    if bad:
        errors.append("line %d: missing or not a non-negative integer: %s" % (n, ", ".join(bad)))
        continue
    if s["pid"] in pids:
        errors.append("line %d: pid %d reported twice" % (n, s["pid"]))
    pids.add(s["pid"])
    if s["small_frees"] > s["small_allocs"]:
        errors.append("pid %d: small_frees %d > small_allocs %d"
                      % (s["pid"], s["small_frees"], s["small_allocs"]))
    if s["arenas_released"] > s["arenas_mapped"]:
        errors.append("pid %d: arenas_released %d > arenas_mapped %d"
                      % (s["pid"], s["arenas_released"], s["arenas_mapped"]))
    if s["small_allocs"] > 0 and (s["arenas_mapped"] == 0 or s["peak_small_bytes"] == 0):
        errors.append("pid %d: %d small allocations but arenas_mapped %d, peak_small_bytes %d"
                      % (s["pid"], s["small_allocs"], s["arenas_mapped"], s["peak_small_bytes"]))
for e in errors:
    print("  " + e, file=sys.stderr)
if errors:
    sys.exit(1)
if not lines:
    print("  statistics: none")
    sys.exit(0)
top = max((json.loads(line) for line in lines), key=lambda s: s["small_allocs"])
print("  statistics: %d processes; busiest pid %d: small_allocs %d, small_frees %d, large_allocs %d,"
      " arenas mapped %d released %d, peak small bytes %d"
      % (len(lines), top["pid"], top["small_allocs"], top["small_frees"], top["large_allocs"],
         top["arenas_mapped"], top["arenas_released"], top["peak_small_bytes"]))
PY
}

# pg_stat NAME KEY [max|sum]: the largest value (default) or the sum of KEY over the statistics
# lines of NAME (0 when there are none).
pg_stat() {
  local name="$1" key="$2" how="${3:-max}"
  "$PG_PYTHON" - "$PG_TMP/$name.stats" "$key" "$how" <<'PY' || pg_fail "cannot read $key from $name's statistics"
import json
import sys

path, key, how = sys.argv[1:4]
with open(path) as f:
    values = [json.loads(line)[key] for line in f.read().splitlines()]
print(sum(values) if how == "sum" else max(values, default=0))
PY
}

# pg_stat_lines NAME: the number of statistics lines (processes) of NAME.
pg_stat_lines() { wc -l <"$PG_TMP/$1.stats"; }

# pg_expect_ge VALUE MIN WHAT
pg_expect_ge() {
  [[ "$1" =~ ^[0-9]+$ ]] || pg_fail "$3: not a number: '$1'"
  if (($1 < $2)); then pg_fail "$3: $1, expected at least $2"; fi
  pg_note "$3: $1 (>= $2)"
}

# Inputs shared by the integration tests and the guard/leak runs of the same workloads
# (tests/guard/quiet_test.sh), made by fixed generators.
# pg_sort_input FILE: 200,000 lines of words and numbers for sort.
pg_sort_input() {
  awk 'BEGIN {
    x = 12345
    for (i = 0; i < 200000; i++) {
      x = (x * 1103515245 + 12345) % 2147483648
      w = ""
      for (k = 0; k < 3 + x % 9; k++) w = w sprintf("%c", 97 + int(x / (k + 1)) % 26)
      printf "%s %d %s%d\n", w, x % 100000, (x % 3 ? "k" : "K"), i % 977
    }
  }' >"$1"
}

# pg_sqlite_workload FILE: 30,000 inserts, 40,000 more rows, indexes, joins, updates, deletes,
# VACUUM and an integrity check, as SQL for sqlite3.
pg_sqlite_workload() {
  awk 'BEGIN {
    print "CREATE TABLE items(id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT, price REAL, qty INTEGER);"
    print "CREATE TABLE orders(id INTEGER PRIMARY KEY, item INTEGER REFERENCES items(id), amount INTEGER, note TEXT);"
    print "BEGIN;"
    x = 7
    for (i = 1; i <= 30000; i++) {
      x = (x * 69069 + 1) % 4294967296
      printf "INSERT INTO items VALUES(%d, %citem-%d-%x%c, %ccat%d%c, %d.%02d, %d);\n", i, 39, i, x, 39, 39, x % 37, 39, x % 1000, x % 100, x % 500
    }
    print "COMMIT;"
  }' >"$1"
  cat >>"$1" <<'SQL'
BEGIN;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40000)
INSERT INTO orders SELECT i, (i * 7919) % 30000 + 1, i % 13 + 1, 'order ' || printf('%06d', i) FROM n;
COMMIT;
CREATE INDEX items_category ON items(category, price);
CREATE INDEX orders_item ON orders(item);
SELECT category, count(*), sum(qty), round(avg(price), 2) FROM items GROUP BY category ORDER BY category;
SELECT name, price FROM items WHERE category = 'cat5' AND price > 990 ORDER BY price DESC, id LIMIT 5;
SELECT i.category, count(o.id), sum(o.amount * i.price) FROM orders o JOIN items i ON i.id = o.item
  GROUP BY i.category ORDER BY 3 DESC LIMIT 5;
UPDATE items SET price = price * 1.1 WHERE qty < 50;
DELETE FROM orders WHERE amount = 13;
SELECT count(*), sum(amount) FROM orders;
SELECT length(group_concat(name, ',')) FROM (SELECT name FROM items ORDER BY name LIMIT 2000);
SELECT substr(note, 1, 5), count(*) FROM orders GROUP BY 1;
VACUUM;
PRAGMA integrity_check;
SQL
}
