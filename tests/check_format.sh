#!/usr/bin/env bash
# Every C/C++ source of the project is clang-formatted with the checked-in .clang-format.
set -euo pipefail
cd "$1"
command -v clang-format >/dev/null || { echo "clang-format not installed: skipped"; exit 0; }
bad=$(git ls-files '*.c' '*.cc' '*.cpp' '*.h' | while read -r f; do
  [ -f "$f" ] && ! clang-format --dry-run -Werror "$f" >/dev/null 2>&1 && echo "$f"; done || true)
if [ -n "$bad" ]; then
  echo "not clang-formatted (run clang-format -i):" >&2
  echo "$bad" >&2
  exit 1
fi
echo "all sources formatted"
