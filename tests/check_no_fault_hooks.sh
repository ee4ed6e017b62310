#!/usr/bin/env bash
# The fault-injection hook (base/fault.h) is for the pgcore_faults test flavour only: the release
# core and the preloaded library must not contain any of it.
#   check_no_fault_hooks.sh FILE...     (libpoolguard.so, libpgcore.a)
set -euo pipefail
status=0
for f in "$@"; do
  # Every symbol, local ones included (the library hides pg:: symbols but keeps them in .symtab).
  symbols="$(nm -C "$f")"
  if ! grep -q 'pg::os::map' <<<"$symbols"; then
    echo "check_no_fault_hooks: no pg::os::map in $f: its symbols cannot tell (stripped?)" >&2
    status=1
  elif grep -E 'pg::fault::|_for_testing' <<<"$symbols"; then
    echo "check_no_fault_hooks: $f contains fault-injection symbols" >&2
    status=1
  fi
done
exit $status
