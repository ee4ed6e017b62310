#!/usr/bin/env bash
# The leak report (POOLGUARD_LEAKS=1) on a program that leaks known blocks from known functions
# (tests/track/leaks.c): every leak named by function with exact counts and bytes, direct and
# indirect told apart, reachable blocks not reported as leaks, file:line from the debug info,
# POOLGUARD_LEAKS_EXIT_CODE, `poolguard run --leaks`, and a program without leaks.
#   leaks_test.sh LIBPOOLGUARD POOLGUARD_TOOL LEAKS_PROGRAM
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
pg_init "${1:-}"
tool="$(realpath "${2:?usage: leaks_test.sh LIBPOOLGUARD POOLGUARD_TOOL LEAKS_PROGRAM}")"
prog="$(realpath "${3:?leaks program}")"
cd "$PG_TMP"

# 1. The report, written to a log file; stdout and the exit status untouched.
rc=0
LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 POOLGUARD_LOG="$PG_TMP/report.txt" "$prog" >out.txt \
  2>err.txt || rc=$?
[[ $rc -eq 0 ]] || pg_fail "exit status $rc without POOLGUARD_LEAKS_EXIT_CODE"
[[ "$(cat out.txt)" == done ]] || pg_fail "stdout changed: $(head -c 200 out.txt)"
[[ ! -s err.txt ]] || pg_fail "stderr not empty: $(head -n 5 err.txt)"
[[ -s report.txt ]] || pg_fail "no report in the log file"

# Groups: "poolguard: KIND leak of B bytes in N block(s), allocated from:" then frames
# "    #i PC in FUNCTION (MODULE+OFF) FILE:LINE". Checks each group by its first frame's function.
"$PG_PYTHON" - report.txt <<'PY' || pg_fail "report differs from what the program leaked (report.txt above)"
import json, re, sys
text = open(sys.argv[1]).read()
groups, cur = [], None
for line in text.splitlines():
    m = re.match(r"poolguard: (direct|indirect) leak of (\d+) bytes in (\d+) blocks?, allocated from:", line)
    if m:
        cur = {"kind": m[1], "bytes": int(m[2]), "blocks": int(m[3]), "frames": []}
        groups.append(cur)
        continue
    m = re.match(r"\s+#(\d+) 0x[0-9a-f]+ in (\S+)(?: \((\S+)\))?(?: (\S+))?$", line)
    if m and cur is not None:
        cur["frames"].append({"fn": m[2], "module": m[3], "line": m[4]})
        continue
    if not line.startswith("  "):
        cur = None
summary = json.loads(text.split("poolguard: leak-summary ", 1)[1].splitlines()[0])
got = {}
for g in groups:
    fn = g["frames"][0]["fn"] if g["frames"] else "?"
    key = (g["kind"], fn)
    b, n = got.get(key, (0, 0))
    got[key] = (b + g["bytes"], n + g["blocks"])
want = {
    ("direct", "leak_direct"): (400, 4),
    ("direct", "leak_large"): (100000, 1),
    ("direct", "leak_tree_root"): (32, 1),
    ("indirect", "leak_tree_child"): (600, 3),
    ("direct", "leak_on_thread"): (64, 1),
}
bad = []
for k, v in want.items():
    if got.get(k) != v:
        bad.append(f"{k}: want {v}, got {got.get(k)}")
# The cycle: one node direct, the other indirect, both from leak_cycle.
if got.get(("direct", "leak_cycle")) != (48, 1) or got.get(("indirect", "leak_cycle")) != (48, 1):
    bad.append(f"leak_cycle: want one direct and one indirect 48-byte block, got "
               f"{got.get(('direct', 'leak_cycle'))} / {got.get(('indirect', 'leak_cycle'))}")
for k in got:
    if k[1] in ("keep_global", "keep_child", "keep_on_thread"):
        bad.append(f"reachable block reported as a leak: {k}")
extra = [k for k in got if k not in want and k[1] != "leak_cycle" and k[1].startswith(("leak_", "keep_"))]
if extra:
    bad.append(f"unexpected groups: {extra}")
if summary["direct"]["blocks"] != 8 or summary["direct"]["bytes"] != 100544:
    bad.append(f"summary direct {summary['direct']}, want 8 blocks, 100544 bytes")
if summary["indirect"]["blocks"] != 4 or summary["indirect"]["bytes"] != 648:
    bad.append(f"summary indirect {summary['indirect']}, want 4 blocks, 648 bytes")
if summary["reachable"]["bytes"] < 1800:
    bad.append(f"reachable {summary['reachable']}: the 1000+500+300 bytes kept are missing")
if summary["threads_stopped"] < 1:
    bad.append(f"the running thread was not stopped for the scan: {summary}")
# Symbolization: the leaking function's frame has file:line from the debug info, and main is named.
direct = [g for g in groups if g["frames"] and g["frames"][0]["fn"] == "leak_direct"][0]
if not (direct["frames"][0]["line"] or "").startswith("leaks.c:") and "/leaks.c:" not in (direct["frames"][0]["line"] or ""):
    bad.append(f"no file:line for leak_direct: {direct['frames'][0]}")
if not any(f["fn"] == "main" for f in direct["frames"]):
    bad.append(f"main not in the stack of leak_direct: {direct['frames']}")
if bad:
    print(text, file=sys.stderr)
    print("\n".join(bad), file=sys.stderr)
    sys.exit(1)
PY
pg_note "report: every leak by function, counts and bytes exact, reachable blocks left out"

# 2. POOLGUARD_LEAKS_EXIT_CODE: the status, stdout still flushed; the report on stderr.
rc=0
LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 POOLGUARD_LEAKS_EXIT_CODE=23 "$prog" >out2.txt \
  2>err2.txt || rc=$?
[[ $rc -eq 23 ]] || pg_fail "POOLGUARD_LEAKS_EXIT_CODE=23: exit status $rc"
[[ "$(cat out2.txt)" == done ]] || pg_fail "stdout lost with POOLGUARD_LEAKS_EXIT_CODE"
grep -q '^poolguard: direct leak of 400 bytes in 4 blocks' err2.txt ||
  pg_fail "no report on stderr"
pg_note "POOLGUARD_LEAKS_EXIT_CODE=23: status 23, stdout kept"

# 3. A malformed exit code keeps the default, with one line naming the variable.
rc=0
LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 POOLGUARD_LEAKS_EXIT_CODE=300 "$prog" >/dev/null \
  2>err3.txt || rc=$?
[[ $rc -eq 0 ]] || pg_fail "POOLGUARD_LEAKS_EXIT_CODE=300 (invalid) changed the status to $rc"
[[ "$(grep -c 'POOLGUARD_LEAKS_EXIT_CODE' err3.txt)" -eq 1 ]] ||
  pg_fail "no single line naming POOLGUARD_LEAKS_EXIT_CODE=300"

# 4. `poolguard run --leaks`, and a program that leaks nothing: no leak groups, status kept.
rc=0
POOLGUARD_LEAKS_EXIT_CODE=9 "$tool" run --leaks -- /bin/true 2>err4.txt || rc=$?
[[ $rc -eq 0 ]] || pg_fail "/bin/true under --leaks: status $rc: $(head -n 20 err4.txt)"
grep -q '^poolguard: leak-summary {"pid":[0-9]*,"direct":{"blocks":0,' err4.txt ||
  pg_fail "/bin/true: no summary with zero leaks: $(head -n 20 err4.txt)"
if grep -q 'leak of' err4.txt; then pg_fail "/bin/true reported a leak: $(cat err4.txt)"; fi
pg_note "poolguard run --leaks -- /bin/true: no leak, status 0"

# 5. coreutils close stderr in an atexit handler (close_stdout): the report still gets out.
pg_need sort
echo b >in.txt
LD_PRELOAD="$PG_LIB" POOLGUARD_LEAKS=1 sort in.txt >/dev/null 2>err5.txt ||
  pg_fail "sort under POOLGUARD_LEAKS failed"
grep -q '^poolguard: leak-summary {' err5.txt || pg_fail "no report from sort (it closes fd 2)"
pg_note "sort (closes stderr at exit): report written"
