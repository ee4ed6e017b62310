"""Writes a deterministic SQL workload for the sqlite3 shell to stdout.

Usage: python3 gen_sqlite.py [SCALE] [SEED] > workload.sql
Then:  sqlite3 :memory: < workload.sql > /dev/null

The workload is allocation-heavy on purpose: many literal INSERT statements (parser and VDBE
allocations), bulk inserts from recursive CTEs, index builds, joins, GROUP BY and ORDER BY with
large in-memory sorts, updates and deletes. Same SCALE and SEED, same file, byte for byte.
"""

import random
import sys


def main():
    scale = int(sys.argv[1]) if len(sys.argv) > 1 else 60000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 2024
    rng = random.Random(seed)
    out = []
    w = out.append
    w("PRAGMA cache_size = -65536;")
    w("PRAGMA temp_store = MEMORY;")
    w("CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT, email TEXT, age INTEGER, city TEXT);")
    w("CREATE TABLE orders(id INTEGER PRIMARY KEY, user_id INTEGER, amount REAL, note TEXT);")
    w("CREATE TABLE events(id INTEGER PRIMARY KEY, kind TEXT, payload TEXT, ts INTEGER);")
    cities = ["Lyon", "Oslo", "Lima", "Kyiv", "Pune", "Cork", "Graz", "Bari", "Nara", "Hilo"]
    syll = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "ex"]

    def word(lo, hi):
        return "".join(rng.choice(syll) for _ in range(rng.randint(lo, hi)))

    w("BEGIN;")
    for i in range(1, scale + 1):
        name = word(2, 5)
        w(
            "INSERT INTO users VALUES(%d,'%s','%s@%s.example',%d,'%s');"
            % (i, name, name, word(1, 3), rng.randint(18, 90), rng.choice(cities))
        )
    for i in range(1, 2 * scale + 1):
        w(
            "INSERT INTO orders VALUES(%d,%d,%.2f,'%s');"
            % (i, rng.randint(1, scale), rng.random() * 500, word(3, 12))
        )
    w("COMMIT;")
    # Bulk rows generated inside sqlite: allocation in the VDBE and b-tree, not the parser.
    w(
        "INSERT INTO events(kind, payload, ts) WITH RECURSIVE c(x) AS "
        "(SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < %d) "
        "SELECT 'k' || (x %% 37), printf('%%08x-%%s', (x * 2654435761) %% 4294967296, "
        "substr('abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz', 1 + x %% 17, "
        "8 + x %% 40)), x * 7 %% 100003 FROM c;" % (4 * scale)
    )
    w("CREATE INDEX orders_user ON orders(user_id);")
    w("CREATE INDEX users_city_age ON users(city, age);")
    w("CREATE INDEX events_kind_ts ON events(kind, ts);")
    w(
        "SELECT u.city, count(*), sum(o.amount), avg(u.age) FROM users u JOIN orders o "
        "ON o.user_id = u.id GROUP BY u.city ORDER BY 3 DESC;"
    )
    w("SELECT kind, count(*), max(length(payload)) FROM events GROUP BY kind ORDER BY kind;")
    w(
        "SELECT name, email FROM users WHERE id IN (SELECT user_id FROM orders "
        "WHERE amount > 450) ORDER BY name LIMIT 20;"
    )
    w("SELECT count(DISTINCT note) FROM orders;")
    w("SELECT group_concat(name, ' ') FROM (SELECT name FROM users ORDER BY email LIMIT 2000);")
    w("SELECT payload FROM events ORDER BY payload DESC LIMIT 5;")
    for _ in range(200):
        w(
            "SELECT count(*), sum(amount) FROM orders WHERE user_id BETWEEN %d AND %d;"
            % (lambda a: (a, a + 200))(rng.randint(1, scale))
        )
    w("BEGIN;")
    w("UPDATE orders SET note = note || '-' || id, amount = amount * 1.1 WHERE id % 3 = 0;")
    w("UPDATE users SET email = upper(email) WHERE age > 60;")
    w("DELETE FROM events WHERE ts % 4 = 1;")
    w("DELETE FROM orders WHERE amount < 50;")
    w("COMMIT;")
    w(
        "SELECT u.name, count(o.id) AS n FROM users u LEFT JOIN orders o ON o.user_id = u.id "
        "GROUP BY u.id ORDER BY n DESC, u.name LIMIT 10;"
    )
    w(
        "CREATE TABLE summary AS SELECT kind, ts / 1000 AS bucket, count(*) AS n FROM events "
        "GROUP BY kind, bucket;"
    )
    w("SELECT count(*), sum(n) FROM summary;")
    w("DROP TABLE events;")
    w("VACUUM;")
    w("SELECT count(*) FROM users; SELECT count(*) FROM orders;")
    sys.stdout.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
