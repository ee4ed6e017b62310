#!/usr/bin/env bash
# CPython's own regression tests (Debian's libpython3.11-testsuite) under the preload, with
# PYTHONMALLOC unset (pymalloc) and PYTHONMALLOC=malloc, each against the same run without the
# preload: every test that passes without it must pass with it (cpython_regrtest.py). A subset
# sized for ctest, about 3 minutes; scripts/cpython_tests.sh runs the modules whole.
#   cpython.sh LIBPOOLGUARD
# shellcheck source=tests/integration/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pg_init "${1:-}"

# Whole modules, except where a few slow tests would double a module's time; those run in
# scripts/cpython_tests.sh. Before 82c0936, test_threading crashed, test_functools and test_bz2
# (testThreading) crashed or hung.
specs=(
  test_threading
  test_functools
  'test_bz2:!testDecompress4G'
  # fork/exec, pipes, fds, signals: the POSIX cases and run(), without the ones that mostly wait
  'test_subprocess:POSIXProcessTestCase,RunFuncTestCase,!test_communicate_repeated_call_after_stdout_close,!test_pass_fds,!test_swap_std_fds_with_one_closed,!*_dead,!test_user,!test_check_output_timeout'
  test_gc
  # the threaded copies of weak dictionaries take 10 s of 12
  'test_weakref:!test_threaded_weak_*copy'
  test_dict
  test_json
  # the C pickler and unpickler (_pickle), not the pure-Python copies of the same tests
  'test_pickle:C*'
  test_list
  test_set
  test_unicode
)

"$PG_PYTHON" "$PG_DIR/cpython_regrtest.py" --lib "$PG_LIB" --out "$PG_TMP" \
  --modes pymalloc,malloc --timeout 150 "${specs[@]}" ||
  pg_fail "CPython's tests differ with the preload, or could not run (see above)"
