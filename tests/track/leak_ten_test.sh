#!/usr/bin/env bash
# Issue 17, item 6: every leaked block is reported, whatever stale copies of its address the exit
# path left behind, and blocks held by the program's live roots are not.
#   leak_ten_test.sh LIBPOOLGUARD LEAK_TEN_O0 LEAK_TEN_O2 LEAK_KEEP
# LEAK_TEN_* (tests/track/leak_ten.c) leak ten 14-byte blocks through one overwritten pointer, in
# three variants; each is run several times (the stale word that hid one block depended on the
# stack's random placement). LEAK_KEEP (tests/track/leak_keep.c) holds four blocks by a global, a
# thread-local, a live local and a callee-saved register when it calls exit(). Item 7: reachable
# blocks are one line unless POOLGUARD_LEAKS_REACHABLE=on lists them, none of them is
# poolguard's own, no thread is poolguard's, and poolguard's segments are not scanned.
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
pg_init "${1:-}"
usage="usage: leak_ten_test.sh LIBPOOLGUARD LEAK_TEN_O0 LEAK_TEN_O2 LEAK_KEEP"
o0="$(realpath "${2:?$usage}")"
o2="$(realpath "${3:?$usage}")"
keep="$(realpath "${4:?$usage}")"
cd "$PG_TMP"
runs=8

# The direct leak count of one report: "N:B" from its leak-summary line.
direct_of() {
  "$PG_PYTHON" -c '
import json, sys
text = open(sys.argv[1]).read()
s = json.loads(text.split("poolguard: leak-summary ", 1)[1].splitlines()[0])
d = s["direct"]
print("%d:%d" % (d["blocks"], d["bytes"]))' "$1"
}

for prog in "$o0" "$o2"; do
  for mode in loop helper exit; do
    for ((i = 1; i <= runs; i++)); do
      rc=0
      LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 "$prog" "$mode" >out.txt 2>report.txt || rc=$?
      [[ $rc -eq 0 && "$(cat out.txt)" == done ]] ||
        pg_fail "$(basename "$prog") $mode: status $rc, stdout $(head -c 100 out.txt)"
      got="$(direct_of report.txt)" || pg_fail "$(basename "$prog") $mode: no summary"
      [[ "$got" == "10:140" ]] ||
        pg_fail "$(basename "$prog") $mode, run $i: direct leaks $got, want 10:140: $(cat report.txt)"
    done
  done
done
pg_note "ten 14-byte blocks: 10 of 10 reported in every run (-O0/-O2 x loop/helper/exit x $runs)"

for ((i = 1; i <= runs; i++)); do
  rc=0
  LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 "$keep" >out.txt 2>report.txt || rc=$?
  [[ $rc -eq 0 && "$(cat out.txt)" == done ]] || pg_fail "leak_keep: status $rc"
  if grep -q 'leak of' report.txt; then
    pg_fail "leak_keep, run $i: a block held by a live root was reported: $(cat report.txt)"
  fi
  "$PG_PYTHON" - report.txt <<'PY' || pg_fail "leak_keep, run $i: $(cat report.txt)"
import json, sys
text = open(sys.argv[1]).read()
s = json.loads(text.split("poolguard: leak-summary ", 1)[1].splitlines()[0])
# 101 + 102 + 103 + 104 bytes held, among whatever else is reachable.
assert s["direct"]["blocks"] == 0 and s["indirect"]["blocks"] == 0, s
assert s["reachable"]["blocks"] >= 4 and s["reachable"]["bytes"] >= 410, s
PY
done
pg_note "global, thread-local, live local and register: still reachable, not reported"

# Item 7. By default the reachable blocks are one line; listed, they are the four blocks above
# (among others) and none was allocated by poolguard's own code.
LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 "$keep" >out.txt 2>report.txt || pg_fail "leak_keep failed"
[[ "$(grep -c 'still reachable' report.txt)" -eq 1 ]] || pg_fail "no single reachable line: $(cat report.txt)"
grep -Eq '^poolguard: [0-9]+ blocks? \([0-9]+ bytes\) still reachable at exit, not leaks; POOLGUARD_LEAKS_REACHABLE=on lists them$' \
  report.txt || pg_fail "reachable line: $(cat report.txt)"
if grep -q '^poolguard: reachable:\|^    #' report.txt; then
  pg_fail "reachable blocks listed without POOLGUARD_LEAKS_REACHABLE=on: $(cat report.txt)"
fi
LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 POOLGUARD_LEAKS_REACHABLE=on "$keep" >out.txt 2>report.txt ||
  pg_fail "leak_keep failed with POOLGUARD_LEAKS_REACHABLE=on"
for bytes in 101 102 103 104; do
  grep -q "^poolguard: reachable: $bytes bytes in 1 block, allocated from:" report.txt ||
    pg_fail "the $bytes-byte block is not listed as reachable: $(cat report.txt)"
done
if grep -q 'libpoolguard' report.txt; then
  pg_fail "a block allocated by poolguard itself is reported: $(cat report.txt)"
fi
"$PG_PYTHON" - report.txt <<'PY' || pg_fail "threads: $(cat report.txt)"
import json, sys
s = json.loads(open(sys.argv[1]).read().split("poolguard: leak-summary ", 1)[1].splitlines()[0])
# A program without threads: poolguard runs none of its own either.
assert (s["threads"], s["threads_stopped"], s["threads_unstopped"]) == (1, 0, 0), s
PY
pg_note "reachable blocks: one line by default, listed with POOLGUARD_LEAKS_REACHABLE=on, none of poolguard's"

# Item 7: poolguard's own memory (its statistics and profile segments, its heap table) is not a
# root: the check reads less than the segments alone would be.
LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 "$o2" segments >out.txt 2>report.txt || pg_fail "segments failed"
segments="$(cat out.txt)"
[[ "$segments" =~ ^[0-9]+$ && "$segments" -gt 0 ]] || pg_fail "no poolguard segment listed: $segments"
"$PG_PYTHON" - report.txt "$segments" <<'PY' || pg_fail "poolguard's segments were scanned: $(cat report.txt)"
import json, sys
s = json.loads(open(sys.argv[1]).read().split("poolguard: leak-summary ", 1)[1].splitlines()[0])
assert s["root_bytes"] < int(sys.argv[2]), (s["root_bytes"], sys.argv[2])
PY
pg_note "root bytes below the size of poolguard's segments ($segments bytes)"
