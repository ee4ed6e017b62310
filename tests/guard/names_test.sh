#!/usr/bin/env bash
# Guard reports name the code: pg_guard_named is overflow.c built with -g but without -rdynamic,
# so main and make_block are in no dynamic symbol table and only the module's .symtab and DWARF
# name them.
#   redzone  (found at free(): named in-process) frames name the function and file:line;
#   page     (a fault, reported from the signal handler) frames name the function from .symtab,
#            the report lists the module's build-id, and `poolguard symbolize` adds file:line.
# No report prints "??".
#   names_test.sh LIBPOOLGUARD POOLGUARD_TOOL BINDIR SRCDIR
set -uo pipefail
lib="${1:?usage: names_test.sh LIBPOOLGUARD POOLGUARD_TOOL BINDIR SRCDIR}"
tool="${2:?tool}"
bin="${3:?bindir}/pg_guard_named"
src="${4:?srcdir}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pg-guard-names.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# The lines the frames must name, read from the sources (not written here twice).
line_of() { grep -n -F "$1" "$2" | head -1 | cut -d: -f1; }
free_line="$(line_of 'free(p);' "$src/overflow.c")"
write_line="$(line_of "p[size] = 'X';" "$src/overflow.c")"
# addr2line (binutils 2.40, DWARF 5) may name the .c file for a function of an included header.
malloc_line="$(line_of 'char* p = malloc(size);' "$src/bug.h")"
# section FILE TITLE: the frames under the stack titled TITLE.
section() { sed -n "/^  $2/,/^  [a-z]/p" "$1"; }

env -i PATH="$PATH" LD_PRELOAD="$lib" POOLGUARD_GUARD=redzone "$bin" 24 >/dev/null 2>"$tmp/redzone"
section "$tmp/redzone" "found here" | grep -qE "^    #0 0x[0-9a-f]+ in main \(.*\) .*overflow\.c:$free_line$" ||
  fail "redzone: 'found here' #0 is not main at overflow.c:$free_line"
section "$tmp/redzone" "allocated" | grep -qE "^    #0 0x[0-9a-f]+ in make_block \(.*\) .*(bug\.h|overflow\.c):$malloc_line$" ||
  fail "redzone: 'allocated' #0 is not make_block at bug.h:$malloc_line"

# Reports of the same call sites reuse the names earlier reports found: four overflows at one
# site run addr2line as often as one report does (a report's three stacks share frames too), with
# the same names in every report. A logging addr2line ahead in PATH counts the runs.
real_addr2line="$(command -v addr2line)"
mkdir "$tmp/path"
printf '#!/bin/sh\necho run >>"%s"\nexec "%s" "$@"\n' "$tmp/runs" "$real_addr2line" >"$tmp/path/addr2line"
chmod +x "$tmp/path/addr2line"
: >"$tmp/runs"
env -i PATH="$tmp/path:$PATH" LD_PRELOAD="$lib" POOLGUARD_GUARD=redzone POOLGUARD_ON_ERROR=report \
  "$bin" 24 4 >/dev/null 2>"$tmp/repeat"
reports="$(grep -c '^poolguard: ERROR: heap-buffer-overflow' "$tmp/repeat")"
[[ "$reports" == 4 ]] || fail "repeat: $reports reports, expected 4"
runs="$(wc -l <"$tmp/runs")"
((runs >= 1 && runs <= 3)) || fail "repeat: addr2line ran $runs times for 4 reports of one site (1 to 3 expected)"
found="$(grep -cE "^    #0 0x[0-9a-f]+ in main \(.*\) .*overflow\.c:$free_line$" "$tmp/repeat")"
[[ "$found" == 8 ]] || fail "repeat: main at overflow.c:$free_line is #0 of $found stacks, expected 8 (found, freed)"
allocated="$(grep -cE "^    #0 0x[0-9a-f]+ in make_block \(.*\) .*(bug\.h|overflow\.c):$malloc_line$" "$tmp/repeat")"
[[ "$allocated" == 4 ]] || fail "repeat: make_block is #0 of $allocated allocation stacks, expected 4"

env -i PATH="$PATH" LD_PRELOAD="$lib" POOLGUARD_GUARD=page "$bin" 32 >/dev/null 2>"$tmp/page"
section "$tmp/page" "the access" | grep -qE "^    #0 0x[0-9a-f]+ in write_past_end \(.*pg_guard_named\+0x[0-9a-f]+\)$" ||
  fail "page: 'the access' #0 does not name write_past_end (module+offset, no line)"
grep -qE "^    /.*pg_guard_named build-id [0-9a-f]{16,}$" "$tmp/page" ||
  fail "page: the report lists no build-id for pg_guard_named"
"$tool" symbolize "$tmp/page" >"$tmp/page.sym" || fail "poolguard symbolize exited $?"
section "$tmp/page.sym" "the access" | grep -qE "^    #0 0x[0-9a-f]+ in write_past_end \(.*\) .*overflow\.c:$write_line$" ||
  fail "symbolize: 'the access' #0 is not write_past_end at overflow.c:$write_line"
section "$tmp/page.sym" "allocated" | grep -qE "^    #0 0x[0-9a-f]+ in make_block \(.*\) .*(bug\.h|overflow\.c):$malloc_line$" ||
  fail "symbolize: 'allocated' #0 is not make_block at bug.h:$malloc_line"
"$tool" symbolize - <"$tmp/page" | cmp -s - "$tmp/page.sym" || fail "symbolize: stdin differs from FILE"
# A rebuilt module (another build-id) is not read: its frames stay as they were.
sed -E 's/(pg_guard_named build-id )[0-9a-f]+/\10000000000000000000000000000000000000000/' "$tmp/page" >"$tmp/other"
"$tool" symbolize "$tmp/other" >"$tmp/other.sym" 2>"$tmp/other.err"
grep -q 'is not the file that ran' "$tmp/other.err" || fail "symbolize: no warning for a build-id mismatch"
grep -q "overflow\.c:" "$tmp/other.sym" && fail "symbolize: named lines of a module with another build-id"

for f in redzone page page.sym repeat; do
  grep -q '??' "$tmp/$f" && fail "$f: prints '??': $(grep -m1 '??' "$tmp/$f")"
done
if ((failures > 0)); then
  for f in redzone page page.sym repeat; do echo "--- $f:" >&2; head -n 30 "$tmp/$f" >&2; done
  exit 1
fi
echo "guard names: main, make_block and write_past_end named with their lines"
