#!/usr/bin/env bash
# coreutils sort on a generated file of 200,000 lines: plain, numeric by field, unique, reverse,
# and with a small buffer so that it merges through temporary files.
#   sort.sh LIBPOOLGUARD
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
pg_need sort awk sha256sum wc

# The input is made once, outside the runs, by a fixed generator.
pg_sort_input "$PG_TMP/input.txt"
[[ $(wc -l <"$PG_TMP/input.txt") -eq 200000 ]] || pg_fail "input generation failed"

workload() {
  local in="$PG_TMP/input.txt"
  sort "$in" >plain.txt
  sort -t ' ' -k2,2n -k1,1 "$in" >numeric.txt
  sort -u -k3,3 "$in" >unique.txt
  sort -r -f "$in" >reverse.txt
  sort -S 200K -T . --parallel=2 "$in" >merged.txt
  # Only the five sorts run preloaded, so that each statistics line is a sort's.
  local plain=(env -u LD_PRELOAD -u POOLGUARD_STATS)
  "${plain[@]}" cmp plain.txt merged.txt
  "${plain[@]}" wc -l plain.txt numeric.txt unique.txt reverse.txt
  "${plain[@]}" sha256sum plain.txt numeric.txt unique.txt reverse.txt
  "${plain[@]}" head -n 3 numeric.txt
}

pg_run_both sort workload
# coreutils programs close stderr in an atexit handler (close_stdout), before poolguard's exit
# summary runs: a missing line here means the summary was written to a closed descriptor.
lines="$(pg_stat_lines sort)"
[[ $lines -eq 5 ]] ||
  pg_fail "$lines statistics lines for 5 sort processes (is the summary written after sort closed stderr?)"
pg_stats_check sort 5
# sort keeps its lines in large buffers; its small allocations are key tables, locale data and
# temporary-file bookkeeping: a handful per run reading a file, a few hundred for the merging one.
pg_expect_ge "$(pg_stat sort small_allocs sum)" 100 "small_allocs over the five sorts"
