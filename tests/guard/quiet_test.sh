#!/usr/bin/env bash
# No false alarms: real programs give the same output, exit status and stderr under a guard mode
# as without poolguard, and no report (a report on stderr would be a difference).
#   quiet_test.sh LIBPOOLGUARD MODE WORKLOAD PROGRAMS_SRC THREADS_FORK STRESS
#   MODE: redzone, page, or sample (POOLGUARD_GUARD_SAMPLE=1: every block sampled, as long as the
#   page-guard budget lasts, then the pools); leaks (POOLGUARD_LEAKS=1, reports in log files) or
#   profile (POOLGUARD_PROFILE=4K)
#   WORKLOAD: python, gcc, git, sort, sqlite, threads_fork or stress (smaller versions of the
#   integration tests' workloads, see tests/integration/)
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../integration/lib.sh"
pg_init "${1:-}"
mode="${2:?usage: quiet_test.sh LIBPOOLGUARD MODE WORKLOAD PROGRAMS_SRC THREADS_FORK STRESS}"
what="${3:?workload}"
src="${4:?programs source dir}"
threads_fork="${5:?pg_threads_fork}"
stress="${6:?pg_stress}"
case "$mode" in
  redzone | page) guard=(POOLGUARD_GUARD="$mode") ;;
  sample) guard=(POOLGUARD_GUARD_SAMPLE=1) ;;
  # Leak reports and the profile (track/): every process's report goes to its own log file, so
  # stderr stays comparable; the files are checked below.
  leaks) guard=(POOLGUARD_LEAKS=1 POOLGUARD_LOG="$PG_TMP/leaks.%p.log") ;;
  profile) guard=(POOLGUARD_PROFILE=4K) ;;
  *) pg_fail "unknown mode $mode" ;;
esac
PG_TEST="guard-$mode-$what"
# Only the preloaded run reads these; the plain run ignores them.
export "${guard[@]}"

case "$what" in
  python)
    workload() {
      PYTHONMALLOC=malloc PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1 "$PG_PYTHON" -B \
        "$PG_DIR/objects.py"
    }
    ;;
  gcc)
    pg_need gcc sha256sum
    workload() {
      local plain=(env -u LD_PRELOAD -u POOLGUARD_STATS)
      "${plain[@]}" cp "$src/demo.c" "$src/stress.c" .
      gcc -std=c11 -O2 -g -Wall -Wextra -c demo.c -o demo.o
      gcc -std=c11 -O2 -g -Wall -Wextra -c stress.c -o stress.o
      gcc -O2 -pthread demo.o -o demo
      "${plain[@]}" sha256sum demo.o stress.o
      "${plain[@]}" ./demo
    }
    ;;
  git)
    pg_need git seq
    workload() {
      export HOME="$PWD/home" GIT_CONFIG_NOSYSTEM=1 GIT_PAGER=cat PAGER=cat
      export GIT_AUTHOR_NAME="Pool Guard" GIT_AUTHOR_EMAIL="pg@example.org"
      export GIT_COMMITTER_NAME="Pool Guard" GIT_COMMITTER_EMAIL="pg@example.org"
      export GIT_AUTHOR_DATE="2024-01-01T00:00:00Z" GIT_COMMITTER_DATE="2024-01-01T00:00:30Z"
      mkdir home repo
      cd repo || return 1
      git init -q -b main
      git config gc.auto 0
      local i
      for i in $(seq 1 8); do
        seq "$i" 3 $((i * 300)) >"file$i.txt"
        git add -A
        git commit -q -m "change $i"
      done
      git log --stat --format='%H %s'
      git diff HEAD~4 HEAD | sha256sum
      git gc -q
      git fsck --no-progress --strict
    }
    ;;
  sort)
    pg_need sort awk sha256sum
    pg_sort_input "$PG_TMP/input.txt"
    workload() {
      local in="$PG_TMP/input.txt"
      sort "$in" | sha256sum
      sort -t ' ' -k2,2n -k1,1 "$in" | sha256sum
      sort -u -k3,3 "$in" | sha256sum
      sort -S 200K -T . --parallel=2 "$in" | sha256sum
    }
    ;;
  sqlite)
    pg_need sqlite3 awk
    pg_sqlite_workload "$PG_TMP/workload.sql"
    workload() {
      sqlite3 -batch -bail test.db <"$PG_TMP/workload.sql"
    }
    ;;
  threads_fork)
    workload() { "$threads_fork"; }
    ;;
  stress)
    # Random malloc-family calls in 4 threads for 3 seconds, checking contents on every free: its
    # output is its operation count (varies), so only the status and the last line are compared.
    workload() {
      local rc=0
      "$stress" 3 7 4 >stress.out 2>stress.err || rc=$?
      tail -n 1 stress.out
      grep -v '^stress: [0-9]* ops' stress.err >&2 || true
      return "$rc"
    }
    ;;
  *) pg_fail "unknown workload $what" ;;
esac

pg_run_both "$what" workload
if grep -q 'poolguard: ERROR' "$PG_TMP/$what.pg.err"; then
  grep -m 5 'poolguard: ERROR' "$PG_TMP/$what.pg.err" >&2
  pg_fail "a report under POOLGUARD_GUARD mode $mode"
fi
if [[ $mode == leaks ]]; then
  # Every process that ran under the preload and exited normally wrote one leak summary.
  logs=("$PG_TMP"/leaks.*.log)
  [[ -e "${logs[0]}" ]] || pg_fail "no leak report from any process"
  for log in "${logs[@]}"; do
    grep -q '^poolguard: leak-summary {' "$log" || pg_fail "a leak log without its summary: $log"
  done
  # With POOLGUARD_LOG set, the exit summaries went to the logs too.
  grep -ho '{"poolguard":.*}' "${logs[@]}" >>"$PG_TMP/$what.stats" || true
  pg_note "leaks: ${#logs[@]} process(es) reported: $(cat "${logs[@]}" | "$PG_PYTHON" -c '
import json, sys
d = i = 0
for line in sys.stdin:
    if line.startswith("poolguard: leak-summary "):
        s = json.loads(line.split(" ", 2)[2])
        d += s["direct"]["bytes"]; i += s["indirect"]["bytes"]
print(f"{d} bytes leaked directly, {i} indirectly")')"
fi
# Every block guarded or tracked: the pools served nothing (POOLGUARD_STATS=exit of every
# process).
if [[ $mode != sample && $mode != profile ]]; then
  [[ -s "$PG_TMP/$what.stats" ]] || pg_fail "no statistics line from the preloaded run"
  [[ "$(pg_stat "$what" small_allocs)" -eq 0 ]] || pg_fail "the pools served blocks in mode $mode"
fi
pg_note "$mode: no report"
