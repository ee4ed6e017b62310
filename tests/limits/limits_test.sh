#!/usr/bin/env bash
# POOLGUARD_LIMIT and its records: refusal with NULL/ENOMEM (within the documented slack), warn
# and abort modes, warnings at thresholds, the log file, C++ bad_alloc, python3 MemoryError, and
# threads that never overshoot; the records' module paths and the folding of repeats; python3's
# objects under `poolguard run`.
#   limits_test.sh LIBPOOLGUARD FILL BADALLOC PROBE POOLGUARD_TOOL
set -uo pipefail
lib=$1 fill=$2 badalloc=$3 probe=$4 tool=$5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
bad() { echo "FAIL: $*"; fail=1; }
MiB=$((1 << 20))
limit=$((64 * MiB))
slack=$((16 * 1024 * 16 * 4))  # one pool per class per thread (4 threads at most here)

field() { sed -n "s/.*\"$2\":\([0-9]*\).*/\1/p" <<<"$1" | head -n 1; }
count() { grep -c "^poolguard: $1 {" "$2" || true; }

# 1. null (default): refused with ENOMEM, close to the limit, exactly one record with a stack.
for size in 100 200 1000 100000; do
  out=$(POOLGUARD_LIMIT=64M POOLGUARD_LOG="$tmp/null.%p.log" LD_PRELOAD="$lib" "$fill" $size $((2 * limit)) 1)
  held=$(awk '{print $2}' <<<"$out"); enomem=$(awk '{print $8}' <<<"$out")
  [ "$enomem" = 1 ] || bad "size $size: expected one ENOMEM refusal, got: $out"
  [ "$held" -le "$limit" ] || bad "size $size: held $held > limit $limit"
  # Bytes held count whole pools and glibc blocks: the live bytes reach at least 85% of the limit.
  [ "$held" -ge $((limit * 85 / 100)) ] || bad "size $size: refused early, at $held of $limit"
  log=$(ls "$tmp"/null.*.log)
  n=$(count limit-exceeded "$log")
  [ "$n" -ge 1 ] || bad "size $size: no limit-exceeded record"
  rec=$(grep -m1 '^poolguard: limit-exceeded {' "$log")
  [ "$(field "$rec" requested)" = "$size" ] || bad "size $size: record has the wrong size: $rec"
  [ "$(field "$rec" limit)" = "$limit" ] || bad "size $size: record has the wrong limit"
  grep -q '"action":"null"' <<<"$rec" || bad "size $size: action is not null"
  grep -q '"stack":\[{"pc":"0x' <<<"$rec" || bad "size $size: no stack in the record"
  grep -q "\"module\":\"$fill\"" <<<"$rec" || bad "size $size: the stack does not reach the program"
  python3 -c 'import json,sys; json.loads(sys.argv[1].split(" ",2)[2])' "$rec" || bad "size $size: record is not JSON"
  echo "null mode, $size-byte blocks: $out; $n record(s)"
  rm -f "$log"
done

# 2. warn: goes on past the limit, logs (rate-limited: at most 10 + 1/s records, with a count of
#    the suppressed ones), and warns once at each threshold.
out=$(POOLGUARD_LIMIT=64M POOLGUARD_ON_LIMIT=warn POOLGUARD_LIMIT_WARN=50,90 LD_PRELOAD="$lib" \
  "$fill" 1000 $((limit + 8 * MiB)) 1 2>"$tmp/warn.err")
held=$(awk '{print $2}' <<<"$out")
[ "$held" -gt "$limit" ] || bad "warn: stopped at $held"
n=$(count limit-exceeded "$tmp/warn.err")
[ "$n" -ge 1 ] && [ "$n" -le 20 ] || bad "warn: $n limit-exceeded records (rate limit?)"
grep -q '"action":"warn"' "$tmp/warn.err" || bad "warn: action is not warn"
# The records not written (repeats of one stack, and those past the burst) are counted: in the
# next record's "suppressed", or at exit in a log-suppressed record.
sup=$(sed -n 's/^poolguard: log-suppressed {"event":"limit-exceeded".*"count":\([0-9]*\).*/\1/p' "$tmp/warn.err")
later=$(grep '^poolguard: limit-exceeded {' "$tmp/warn.err" | sed -n 's/.*"suppressed":\([0-9]*\).*/\1/p' | awk "{s += \$1} END {print s + 0}")
sup=$(( ${sup:-0} + ${later:-0} ))
[ "$sup" -gt 0 ] || bad "warn: no count of the records not written"

w=$(count limit-warning "$tmp/warn.err")
[ "$w" = 2 ] || bad "warn: expected 2 limit-warning records (50%, 90%), got $w"
grep -q '"percent":50' "$tmp/warn.err" && grep -q '"percent":90' "$tmp/warn.err" || bad "warn: thresholds"
echo "warn mode: $out; $n exceeded record(s), ${sup:-0} suppressed, $w warning(s)"

# 3. abort: the process aborts after the record.
POOLGUARD_LIMIT=16M POOLGUARD_ON_LIMIT=abort LD_PRELOAD="$lib" "$fill" 1000 $((64 * MiB)) 1 \
  >/dev/null 2>"$tmp/abort.err"
status=$?
[ "$status" = 134 ] || bad "abort: exit status $status, expected 134 (SIGABRT)"
[ "$(count limit-exceeded "$tmp/abort.err")" = 1 ] || bad "abort: expected exactly one record"
echo "abort mode: exit status $status"

# 4. Threads allocating at once never overshoot.
for size in 64 1000 50000; do
  out=$(POOLGUARD_LIMIT=64M LD_PRELOAD="$lib" "$fill" $size $((2 * limit)) 4 2>"$tmp/threads.err")
  status=$?
  held=$(awk '{print $2}' <<<"$out")
  if [ "$status" != 0 ] || [ -z "$held" ]; then
    bad "4 threads, size $size: exit status $status, stderr ends: $(grep -v '^poolguard: limit-exceeded' "$tmp/threads.err" | tail -2)"
  elif [ "$held" -gt "$limit" ]; then
    bad "4 threads, size $size: held $held > limit $limit"
  fi
  # Every record names its stack, also those of threads refused while another thread made the
  # process's first stack walk.
  if grep -q '"stack":\[\]' "$tmp/threads.err"; then
    bad "4 threads, size $size: a record without a stack"
  fi
  echo "4 threads, $size-byte blocks: $out"
done

# 5. The exit summary reports the limit, the peak and the refusals.
POOLGUARD_LIMIT=64M POOLGUARD_STATS=exit LD_PRELOAD="$lib" "$fill" 1000 $((2 * limit)) 1 \
  >/dev/null 2>"$tmp/sum.err"
sum=$(grep '^{"poolguard"' "$tmp/sum.err")
[ "$(field "$sum" limit)" = "$limit" ] || bad "summary: limit"
[ "$(field "$sum" limit_refused)" -ge 1 ] || bad "summary: refused"
[ "$(field "$sum" limit_peak)" -le "$limit" ] || bad "summary: peak over the limit"
grep -q '^poolguard: limit .* requests refused' "$tmp/sum.err" || bad "summary: no limit line"

# 6. C++: std::bad_alloc, nothrow new returns null, and the program's new_handler is called
# (through the program's libstdc++: the library has no C++ runtime of its own).
out=$(POOLGUARD_LIMIT=64M LD_PRELOAD="$lib" "$badalloc" 2>"$tmp/cxx.err")
[ $? = 0 ] && grep -q "^bad_alloc after" <<<"$out" && grep -q "returned null" <<<"$out" &&
  grep -q "^new_handler called 1 time(s), then new succeeded" <<<"$out" &&
  grep -q "^throwing new_handler: aligned new threw, nothrow new null and null, 3 call(s)" \
    <<<"$out" || bad "C++: $out"
[ "$(count limit-exceeded "$tmp/cxx.err")" -ge 1 ] || bad "C++: no record"
echo "C++: $(tr '\n' ';' <<<"$out")"

# 7. python3 (objects in the pools) building a large list under 64M: MemoryError, normal exit.
out=$(PYTHONMALLOC=malloc POOLGUARD_LIMIT=64M LD_PRELOAD="$lib" /usr/bin/python3 -c '
try:
    xs = [str(i) * 4 for i in range(10**8)]
except MemoryError:
    print("MemoryError")
' 2>"$tmp/py.err")
status=$?
[ "$status" = 0 ] && [ "$out" = MemoryError ] || bad "python3: status $status, output '$out'"
[ "$(count limit-exceeded "$tmp/py.err")" -ge 1 ] || bad "python3: no record"
echo "python3: $out (status $status)"

# 7b. `poolguard run` with CPython's default allocator: pymalloc carves its objects out of arenas
#     it maps itself, which a plain LD_PRELOAD never sees (the limit held at a 683 MB peak). The
#     run command sets PYTHONMALLOC=malloc, so the limit holds on every object: MemoryError, and
#     a peak RSS near the limit. Bounded at 400 MB of strings, in case it does not hold.
pyprog='
import resource
xs = []
try:
    for i in range(4 * 10**6):
        xs.append(str(i) * 16)
    print("no MemoryError")
except MemoryError:
    del xs
    print("MemoryError", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
'
out=$(env -u PYTHONMALLOC "$tool" run --limit 64M -- /usr/bin/python3 -c "$pyprog" 2>"$tmp/pyrun.err")
status=$?
read -r what peak_mib <<<"$out"
[ "$status" = 0 ] && [ "$what" = MemoryError ] && [ "${peak_mib:-999}" -le 100 ] ||
  bad "poolguard run python3: status $status, output '$out' (want MemoryError, peak RSS <= 100 MiB)"
echo "poolguard run python3 under 64M: $out"
# --pymalloc leaves PYTHONMALLOC alone; a value the user set is kept.
got=$(env -u PYTHONMALLOC "$tool" run -- /usr/bin/python3 -c 'import os; print(os.environ.get("PYTHONMALLOC", "unset"))')
[ "$got" = malloc ] || bad "poolguard run: PYTHONMALLOC is '$got', want malloc"
got=$(env -u PYTHONMALLOC "$tool" run --pymalloc -- /usr/bin/python3 -c 'import os; print(os.environ.get("PYTHONMALLOC", "unset"))')
[ "$got" = unset ] || bad "poolguard run --pymalloc: PYTHONMALLOC is '$got', want unset"
got=$(PYTHONMALLOC=debug "$tool" run -- /usr/bin/python3 -c 'import os; print(os.environ.get("PYTHONMALLOC", "unset"))')
[ "$got" = debug ] || bad "poolguard run: the user's PYTHONMALLOC=debug became '$got'"

# 7c. Records name the main program by its full path, however it was started (dladdr says
#     argv[0]: "pg_probe" through PATH, "./pg_probe" from its directory).
dir=$(dirname "$probe") name=$(basename "$probe") real=$(realpath "$probe")
for how in path relative; do
  if [ $how = path ]; then
    (cd "$tmp" && PATH="$dir:$PATH" POOLGUARD_LIMIT=16M LD_PRELOAD="$lib" "$name" $((64 * MiB)) 1) >/dev/null 2>"$tmp/mod.err"
  else
    (cd "$dir" && POOLGUARD_LIMIT=16M LD_PRELOAD="$lib" "./$name" $((64 * MiB)) 1) >/dev/null 2>"$tmp/mod.err"
  fi
  grep -q "\"module\":\"$real\"" "$tmp/mod.err" ||
    bad "started by $how: the record does not name $real: $(grep -o '"module":"[^"]*"' "$tmp/mod.err" | sort -u | tr '\n' ' ')"
done

# 7d. A program probing for memory from one place: 200 refusals in well under a second make one
#     record, and the 199 repeats are counted (log-suppressed at exit), not written.
out=$(POOLGUARD_LIMIT=16M LD_PRELOAD="$lib" "$probe" $((64 * MiB)) 200 2>"$tmp/probe.err")
n=$(count limit-exceeded "$tmp/probe.err")
sup=$(sed -n 's/^poolguard: log-suppressed {"event":"limit-exceeded".*"count":\([0-9]*\).*/\1/p' "$tmp/probe.err")
[ "$out" = "refused 200" ] && [ "$n" = 1 ] && [ "${sup:-0}" = 199 ] ||
  bad "probe: '$out', $n record(s), ${sup:-0} counted as suppressed (want 1 and 199)"
echo "probe: $out; $n record, ${sup:-0} repeats folded"

# 8. A malformed limit: one line naming the variable, and no limit.
err=$(POOLGUARD_LIMIT=lots LD_PRELOAD="$lib" "$fill" 1000 $((80 * MiB)) 1 2>&1 >/dev/null)
[ "$(grep -c POOLGUARD_LIMIT <<<"$err")" = 1 ] || bad "malformed: expected one line naming POOLGUARD_LIMIT, got '$err'"

exit $fail
