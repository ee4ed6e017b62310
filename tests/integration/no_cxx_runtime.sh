#!/usr/bin/env bash
# libpoolguard.so brings no C++ runtime into a C program (preload/CMakeLists.txt): it needs neither
# libstdc++.so nor libgcc_s.so, exports only what preload/shim.cpp declares, and a C program run
# under it maps neither library and has no large block it did not allocate (libstdc++'s 72 KiB
# exception pool used to be one). C++ programs under the preload: integration.new_delete, limits.
#   no_cxx_runtime.sh LIBPOOLGUARD PG_MAPS SHIM_CPP
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"
maps="${2:?usage: no_cxx_runtime.sh LIBPOOLGUARD PG_MAPS SHIM_CPP}"
shim="${3:?usage: no_cxx_runtime.sh LIBPOOLGUARD PG_MAPS SHIM_CPP}"
pg_need ldd nm

needed="$(ldd "$PG_LIB")"
grep -Eq 'lib(stdc\+\+|gcc_s)\.so' <<<"$needed" && pg_fail "libpoolguard.so needs a C++ runtime: $needed"
grep -q 'libc\.so' <<<"$needed" || pg_fail "ldd printed no libc: $needed"

# Exports: the extern "C" functions shim.cpp declares with PG_EXPORT, and operators new and delete.
sed -n 's/^PG_EXPORT [^(]*[ *]\([a-z_0-9]*\)(.*/\1/p' "$shim" | sort -u >"$PG_TMP/declared"
[[ $(wc -l <"$PG_TMP/declared") -ge 10 ]] || pg_fail "cannot read the exports of $shim"
nm -D --defined-only "$PG_LIB" | awk '{print $3}' | grep -v -E '^_Z(nw|na|dl|da)' |
  grep -v -x -F -f "$PG_TMP/declared" >"$PG_TMP/extra" || true
[[ -s "$PG_TMP/extra" ]] && pg_fail "libpoolguard.so exports more than shim.cpp declares: $(tr '\n' ' ' <"$PG_TMP/extra")"

# summary NAME: the JSON statistics line of $PG_TMP/NAME.err, as "large_allocs large_live_bytes".
summary() {
  "$PG_PYTHON" -c '
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{\"poolguard\":")]
assert len(lines) == 1, "%d summary lines" % len(lines)
s = json.loads(lines[0])
print(s["large_allocs"], s["large_live_bytes"])' "$PG_TMP/$1.err" || pg_fail "$1: no summary"
}

LD_PRELOAD="$PG_LIB" POOLGUARD_STATS=exit "$maps" >"$PG_TMP/maps.out" 2>"$PG_TMP/maps.err" ||
  pg_fail "pg_maps failed under the preload: $(cat "$PG_TMP/maps.err")"
grep -qx libpoolguard.so "$PG_TMP/maps.out" || pg_fail "libpoolguard.so not mapped: $(cat "$PG_TMP/maps.out")"
grep -Eq '^lib(stdc\+\+|gcc_s)\.so' "$PG_TMP/maps.out" &&
  pg_fail "a C program maps a C++ runtime under the preload: $(tr '\n' ' ' <"$PG_TMP/maps.out")"
read -r allocs live <<<"$(summary maps)"
# The live bytes are glibc's chunk: the request rounded up to whole pages.
mib=$((1 << 20))
[[ $allocs -eq 1 && $live -ge $mib && $live -le $((mib + 8192)) ]] ||
  pg_fail "pg_maps allocated one large block of 1 MiB; the summary has $allocs ($live bytes live)"

LD_PRELOAD="$PG_LIB" POOLGUARD_STATS=exit /bin/true 2>"$PG_TMP/true.err" || pg_fail "/bin/true failed"
read -r allocs live <<<"$(summary true)"
[[ $allocs -eq 0 ]] || pg_fail "/bin/true has $allocs large blocks ($live bytes live) under the preload"
grep -q 'large blocks 0 (0 bytes live)' "$PG_TMP/true.err" || pg_fail "/bin/true: $(cat "$PG_TMP/true.err")"
pg_note "no libstdc++ or libgcc_s needed or mapped; exports as declared; no large block but the program's"
