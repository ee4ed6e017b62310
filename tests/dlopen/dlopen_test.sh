#!/usr/bin/env bash
# dlopen/dlclose under the preload: same output as without it, memory used across unloads.
set -euo pipefail
lib=$1 host=$2 plugin=$3
expected=$("$host" "$plugin")
got=$(POOLGUARD_STATS=exit LD_PRELOAD="$lib" "$host" "$plugin" 2>/tmp/pg_dlopen.$$)
summary=$(grep '^{"poolguard"' /tmp/pg_dlopen.$$ | tail -n 1); rm -f /tmp/pg_dlopen.$$
[ "$got" = "$expected" ] || { echo "FAIL: output differs: '$got' vs '$expected'"; exit 1; }
allocs=$(sed -n 's/.*"small_allocs":\([0-9]*\).*/\1/p' <<<"$summary")
[ "${allocs:-0}" -gt 50000 ] || { echo "FAIL: only ${allocs:-0} small allocations in the pools"; exit 1; }
echo "ok: $got; small_allocs=$allocs"
