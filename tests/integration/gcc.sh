#!/usr/bin/env bash
# gcc compiling and linking C programs: the driver and its children (cc1, as, collect2, ld) all
# run with the preload. The object files must be byte-identical to those made without it, and the
# linked program must print the same.
#   gcc.sh LIBPOOLGUARD PROGRAMS_SOURCE_DIR
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
src="${2:?usage: gcc.sh LIBPOOLGUARD PROGRAMS_SOURCE_DIR}"
pg_need gcc file sha256sum

workload() {
  # Only the compiler runs preloaded: the busiest process reported is then cc1, not a helper.
  local plain=(env -u LD_PRELOAD -u POOLGUARD_STATS)
  "${plain[@]}" cp "$src/demo.c" "$src/stress.c" "$src/threads_fork.c" .
  local f
  for f in demo stress threads_fork; do
    gcc -std=c11 -O2 -g -Wall -Wextra -c "$f.c" -o "$f.o"
  done
  gcc -O2 -pthread demo.o -o demo
  "${plain[@]}" sha256sum demo.o stress.o threads_fork.o
  "${plain[@]}" file -b demo.o demo
  "${plain[@]}" ./demo
}

pg_run_both gcc workload
for f in demo stress threads_fork; do
  cmp "$PG_TMP/gcc.plain/$f.o" "$PG_TMP/gcc.pg/$f.o" || pg_fail "$f.o differs with poolguard"
done
# Per compile: gcc, cc1 and as (3 x 3), then gcc, collect2 and ld for the link.
pg_stats_check gcc 12
pg_expect_ge "$(pg_stat gcc small_allocs)" 50000 "cc1's small_allocs (busiest process)"
