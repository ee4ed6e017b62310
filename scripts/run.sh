#!/usr/bin/env bash
# Installs what is missing, builds poolguard, then runs a command with the library preloaded and
# POOLGUARD_STATS=exit, so that each process prints its allocation summary on stderr at exit.
#   scripts/run.sh                  runs the built-in demo workload (tests/programs/demo.c)
#   scripts/run.sh -- CMD [ARGS...] runs CMD; exits with CMD's exit status
# Build output goes to stderr, so the command's stdout can be piped.
set -euo pipefail

usage() { echo "usage: scripts/run.sh [-- COMMAND [ARGS...]]"; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cmd=()
if [[ $# -gt 0 ]]; then
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    --)
      shift
      if [[ $# -eq 0 ]]; then
        echo "run.sh: no command after --" >&2
        usage >&2
        exit 2
      fi
      cmd=("$@")
      ;;
    *)
      echo "run.sh: unexpected argument: $1" >&2
      usage >&2
      exit 2
      ;;
  esac
fi

"$root/scripts/deps.sh"
# pg_demo is defined with the tests: make sure they are configured, but build only the library
# (poolguard), the tool (poolguard_tool, the README's second step) and the demo.
build_dir="$(POOLGUARD_BUILD_TARGETS="poolguard poolguard_tool pg_demo" "$root/scripts/build.sh" -DPOOLGUARD_TESTS=ON)"
lib="$build_dir/preload/libpoolguard.so"
[[ -f "$lib" ]] || { echo "run.sh: build did not produce $lib" >&2; exit 1; }

if [[ ${#cmd[@]} -eq 0 ]]; then
  cmd=("$build_dir/tests/programs/pg_demo")
  [[ -x "${cmd[0]}" ]] || { echo "run.sh: build did not produce ${cmd[0]}" >&2; exit 1; }
fi

# exec: the command's exit status (or env's 126/127 when it cannot run) becomes ours.
exec env LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}" POOLGUARD_STATS="${POOLGUARD_STATS:-exit}" \
  "${cmd[@]}"
