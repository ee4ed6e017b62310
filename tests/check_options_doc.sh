#!/usr/bin/env bash
# The options tables in the docs must be exactly what base/options.inc generates.
#   check_options_doc.sh PG_OPTIONS DOC.md...
set -euo pipefail
tool=$1
shift
want=$("$tool" --markdown)
[ -n "$want" ] || { echo "$tool printed no table" >&2; exit 1; }
for doc in "$@"; do
  # The table whose header row starts with "| variable" is the options table.
  got=$(awk '/^\| variable/ {t = 1} t && /^\|/ {print; next} t {exit}' "$doc")
  if [ "$got" != "$want" ]; then
    diff -u <(echo "$got") <(echo "$want") >&2 || true
    echo "$doc is out of date: regenerate its options table with 'pg_options --markdown'" >&2
    exit 1
  fi
done
echo "options tables in sync: $*"
