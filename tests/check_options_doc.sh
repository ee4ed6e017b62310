#!/usr/bin/env bash
# docs/OPTIONS.md must hold exactly the table that pool/options.inc generates.
set -euo pipefail
tool=$1 doc=$2
if ! diff -u <(grep '^|' "$doc") <("$tool" --markdown); then
  echo "docs/OPTIONS.md is out of date: regenerate its table with '$tool --markdown'" >&2
  exit 1
fi
echo "options table in sync"
