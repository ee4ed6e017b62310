#!/usr/bin/env bash
# sqlite3 on a generated workload: a table filled in one transaction, indexes, joins, grouping,
# updates, deletes, VACUUM and an integrity check.
#   sqlite.sh LIBPOOLGUARD
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
pg_need sqlite3 awk

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
}' >"$PG_TMP/workload.sql"
cat >>"$PG_TMP/workload.sql" <<'SQL'
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

workload() {
  sqlite3 -batch -bail test.db <"$PG_TMP/workload.sql"
}

pg_run_both sqlite workload
grep -qx ok "$PG_TMP/sqlite.pg.out" || pg_fail "integrity check did not print ok"
pg_stats_check sqlite 1
# Parsing 30,000 INSERT statements alone takes several small allocations each.
pg_expect_ge "$(pg_stat sqlite small_allocs)" 100000 "sqlite3 small_allocs"
