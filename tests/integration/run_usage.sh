#!/usr/bin/env bash
# scripts/run.sh and scripts/ab.sh argument handling (before they install or build anything):
# usage errors exit 2 with a usage line, --help exits 0.
#   run_usage.sh SOURCE_DIR
set -euo pipefail
run="${1:?usage: run_usage.sh SOURCE_DIR}/scripts/run.sh"
fail() { echo "FAIL: run_usage: $*" >&2; exit 1; }

for args in "--bogus" "--" "extra words"; do
  rc=0
  # shellcheck disable=SC2086 # split on purpose: "extra words" is two arguments
  err="$(bash "$run" $args 2>&1 >/dev/null)" || rc=$?
  [[ $rc -eq 2 ]] || fail "run.sh $args: exit $rc, expected 2"
  grep -q '^usage: scripts/run.sh' <<<"$err" || fail "run.sh $args: no usage line in: $err"
done
out="$(bash "$run" --help)" || fail "run.sh --help failed"
grep -q '^usage: scripts/run.sh' <<<"$out" || fail "run.sh --help printed: $out"
echo "run_usage: usage errors exit 2, --help exits 0"

# scripts/ab.sh: the same rules, checked before it builds or runs anything.
ab="${1}/scripts/ab.sh"
for args in "" "--bogus" "notapair" "--rounds 0 a=glibc" "--rounds" "a=/no/such/lib.so"; do
  rc=0
  # shellcheck disable=SC2086 # split on purpose
  err="$(bash "$ab" $args 2>&1 >/dev/null)" || rc=$?
  [[ $rc -eq 2 ]] || fail "ab.sh $args: exit $rc, expected 2"
  grep -q 'scripts/ab.sh \[--rounds R\]' <<<"$err" || [[ $args == a=/no/such/lib.so ]] ||
    fail "ab.sh $args: no usage in: $err"
done
out="$(bash "$ab" --help)" || fail "ab.sh --help failed"
grep -q 'scripts/ab.sh \[--rounds R\]' <<<"$out" || fail "ab.sh --help printed: $out"
echo "run_usage: ab.sh usage errors exit 2, --help exits 0"

# scripts/cpython_tests.sh: the same rules, checked before it installs, builds or runs anything.
ct="${1}/scripts/cpython_tests.sh"
for args in "--bogus" "--modes" "--modes pymalloc,nosuchmode" "--lib /no/such/lib.so" "--out"; do
  rc=0
  # shellcheck disable=SC2086 # split on purpose
  err="$(bash "$ct" $args 2>&1 >/dev/null)" || rc=$?
  [[ $rc -eq 2 ]] || fail "cpython_tests.sh $args: exit $rc, expected 2"
  grep -q '^usage: scripts/cpython_tests.sh' <<<"$err" || fail "cpython_tests.sh $args: no usage in: $err"
done
out="$(bash "$ct" --help)" || fail "cpython_tests.sh --help failed"
grep -q '^usage: scripts/cpython_tests.sh' <<<"$out" || fail "cpython_tests.sh --help printed: $out"
echo "run_usage: cpython_tests.sh usage errors exit 2, --help exits 0"
