#!/usr/bin/env bash
# The address-space reservation may be refused or run out; poolguard must fall back to arenas
# mapped one by one and go on. Runs one object-heavy python3 workload (PYTHONMALLOC=malloc, so its
# objects land in the pools) under each condition, compares its output with a plain run, and
# checks the exit summary.
set -euo pipefail
lib=$1
py=/usr/bin/python3
script='
import hashlib
xs = [str(i) * 3 for i in range(1500000)]   # ~150 MB of small objects
d = {x[:7]: len(x) for x in xs}
print(len(xs), len(d), hashlib.sha1("".join(xs[::1000]).encode()).hexdigest())
'
expected=$(PYTHONMALLOC=malloc "$py" -c "$script")
fail=0
json_key() { sed -n 's/.*"'"$2"'":\([0-9]*\).*/\1/p' <<<"$1" | head -n 1; }

run_case() {  # name, then env assignments / a wrapper for the command
  local name=$1; shift
  local out err
  err=$(mktemp)
  out=$(env "$@" PYTHONMALLOC=malloc POOLGUARD_STATS=exit LD_PRELOAD="$lib" "$py" -c "$script" 2>"$err") || {
    echo "FAIL $name: exit status $?"; cat "$err"; fail=1; return; }
  local summary
  summary=$(grep '^{"poolguard"' "$err" | tail -n 1)
  rm -f "$err"
  if [ "$out" != "$expected" ]; then echo "FAIL $name: output differs"; fail=1; return; fi
  echo "$name: small_allocs=$(json_key "$summary" small_allocs) reserved=$(json_key "$summary" reserved_bytes) fallback_arenas=$(json_key "$summary" fallback_arenas)"
  LAST=$summary
}

run_case "default reservation"
[ "$(json_key "$LAST" fallback_arenas)" = 0 ] || { echo "FAIL: fallback arenas with a 64G reservation"; fail=1; }
[ "$(json_key "$LAST" small_allocs)" -gt 1000000 ] || { echo "FAIL: the pools served too little"; fail=1; }

run_case "no reservation" POOLGUARD_RESERVE=0
[ "$(json_key "$LAST" reserved_bytes)" = 0 ] || { echo "FAIL: reserved despite RESERVE=0"; fail=1; }
[ "$(json_key "$LAST" fallback_arenas)" -gt 50 ] || { echo "FAIL: expected fallback arenas"; fail=1; }

run_case "reservation exhausted" POOLGUARD_RESERVE=64M
[ "$(json_key "$LAST" reserved_bytes)" = $((64 << 20)) ] || { echo "FAIL: reservation not 64M"; fail=1; }
[ "$(json_key "$LAST" fallback_arenas)" -gt 0 ] || { echo "FAIL: 64M should run out"; fail=1; }

# ulimit -v: a 64G reservation is refused; poolguard caps it at a quarter of the limit.
limit_kb=$((3 * 1024 * 1024))
out=$(bash -c "ulimit -v $limit_kb; PYTHONMALLOC=malloc POOLGUARD_STATS=exit LD_PRELOAD='$lib' '$py' -c '$script'" 2>/tmp/pg_reserve_err.$$) || {
  echo "FAIL ulimit -v: exit status $?"; cat /tmp/pg_reserve_err.$$; fail=1; }
summary=$(grep '^{"poolguard"' /tmp/pg_reserve_err.$$ | tail -n 1); rm -f /tmp/pg_reserve_err.$$
if [ "$out" = "$expected" ]; then
  res=$(json_key "$summary" reserved_bytes)
  echo "ulimit -v ${limit_kb}K: reserved=$res"
  [ "$res" -gt 0 ] && [ "$res" -le $((limit_kb * 1024 / 4)) ] || { echo "FAIL: reservation not capped"; fail=1; }
else
  echo "FAIL ulimit -v: output differs"; fail=1
fi
exit $fail
