#!/usr/bin/env bash
# Installs what is missing, builds poolguard with its tests, and runs them all with ctest.
#   scripts/test.sh [CTEST ARGS...]     e.g. scripts/test.sh -L integration, scripts/test.sh -LE slow
# Build directory: ${POOLGUARD_BUILD_DIR:-build}. Exits non-zero when anything fails.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [[ "${CI:-}" == true ]]; then
  # No colours, pagers or prompts in CI.
  export CLICOLOR=0 CLICOLOR_FORCE=0 GIT_PAGER=cat PAGER=cat DEBIAN_FRONTEND=noninteractive
fi

"$root/scripts/deps.sh"
# The fault-injection tests need their own flavour of the core (pgcore_faults); the library and
# pgcore are the same with or without it.
build_dir="$("$root/scripts/build.sh" -DPOOLGUARD_TESTS=ON -DPOOLGUARD_FAULT_INJECTION=ON)"

cd "$build_dir"
# --no-tests=error: a suite that registered no test is a failure, not a pass.
exec ctest --output-on-failure --no-tests=error -j2 "$@"
