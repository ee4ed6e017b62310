#!/usr/bin/env bash
# A redis-server under load, for scripts/bench.sh:
#
#   bench/workloads/redis.sh REQUESTS
#
# Starts redis-server on 127.0.0.1 (a port from this shell's pid, no persistence) with the
# allocator this script was given in LD_PRELOAD, runs redis-benchmark against it (REQUESTS per
# test, 50 clients, pipelines of 16, 100000 random keys, 256-byte values), then shuts the server
# down and waits for it. Only the server runs with the allocator: the client and redis-cli run
# without a preload. Debian's redis-server links jemalloc, so with no LD_PRELOAD (the glibc run)
# the server preloads libc.so.6 itself, which puts glibc's malloc first. Prints redis-benchmark's
# summary (requests per second per test); the exit status is the server's.
set -uo pipefail

REQUESTS=${1:?usage: redis.sh REQUESTS}
SERVER_PRELOAD=${LD_PRELOAD:-/lib/x86_64-linux-gnu/libc.so.6}
unset LD_PRELOAD
PORT=$((20000 + $$ % 20000))

LD_PRELOAD=$SERVER_PRELOAD /usr/bin/redis-server --port "$PORT" --bind 127.0.0.1 --save '' \
  --appendonly no --daemonize no --loglevel warning &
server=$!
for _ in $(seq 1 100); do
  [ "$(/usr/bin/redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ] && break
  sleep 0.05
done
/usr/bin/redis-benchmark -p "$PORT" -q -n "$REQUESTS" -c 50 -P 16 -r 100000 -d 256 \
  -t set,get,incr,lpush,rpush,lpop,rpop,sadd,hset,spop,lrange_100,mset
status=$?
/usr/bin/redis-cli -p "$PORT" shutdown nosave >/dev/null 2>&1
wait "$server"
server_status=$?
[ $status -ne 0 ] && exit $status
exit $server_status
