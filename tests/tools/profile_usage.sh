#!/usr/bin/env bash
# `poolguard profile`, `stat --profile` and `run --leaks/--profile` arguments: usage errors exit 2
# with a usage line on stderr, --help exits 0, a process that cannot be read exits 1 with a reason.
#   profile_usage.sh POOLGUARD_TOOL
set -euo pipefail
tool="${1:?usage: profile_usage.sh POOLGUARD_TOOL}"
fail() { echo "FAIL: profile_usage: $*" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# expect STATUS TEXT ARGS...: the tool exits STATUS and TEXT appears in its stderr.
expect() {
  local want="$1" text="$2" rc=0
  shift 2
  "$tool" "$@" >"$tmp/out" 2>"$tmp/err" || rc=$?
  [[ $rc -eq $want ]] || fail "poolguard $*: exit $rc, expected $want; stderr: $(cat "$tmp/err")"
  grep -qF -- "$text" "$tmp/err" || fail "poolguard $*: no '$text' in stderr: $(cat "$tmp/err")"
}

# A pid with no process: the highest free one, as far from the live ones as can be.
pid_max=$(cat /proc/sys/kernel/pid_max)
unused=$((pid_max - 1))
while [[ -e /proc/$unused ]]; do unused=$((unused - 1)); done

# Bad arguments: exit 2 and the command's usage.
expect 2 "usage: poolguard profile" profile
expect 2 "PID missing" profile --folded
expect 2 "--folded or --svg missing" profile 1
expect 2 "--svg needs FILE" profile 1 --svg
expect 2 "one of --folded or --svg" profile 1 --folded --svg "$tmp/x.svg"
expect 2 "unknown option '--bogus'" profile 1 --bogus --folded
expect 2 "not a process id: 'abc'" profile abc --folded
expect 2 "one PID only" profile 1 2 --svg "$tmp/x.svg"
expect 2 "usage: poolguard stat" stat 1 --top 5
expect 2 "--top: not a number" stat 1 --profile --top x
expect 2 "--profile needs BYTES" run --profile
expect 2 "--profile: not a size: 'lots'" run --profile lots -- true
[[ ! -e "$tmp/x.svg" ]] || fail "a usage error wrote $tmp/x.svg"

# --help: exit 0, usage on stdout.
for args in "profile --help" "profile 1 -h" "stat --help" "run --help" "--help"; do
  # shellcheck disable=SC2086 # split on purpose
  out="$("$tool" $args)" || fail "poolguard $args: exit $?"
  grep -q "usage: poolguard" <<<"$out" || fail "poolguard $args printed: $out"
done
grep -q -- "--profile BYTES" <<<"$("$tool" run --help)" || fail "run --help omits --profile"
grep -q -- "--leaks" <<<"$("$tool" run --help)" || fail "run --help omits --leaks"
grep -q "profile PID" <<<"$("$tool" --help)" || fail "--help omits the profile command"

# Processes that cannot be read: exit 1 with the reason, and no output file.
expect 1 "no process with pid $unused" profile "$unused" --folded
expect 1 "no process with pid $unused" profile "$unused" --svg "$tmp/x.svg"
expect 1 "no process with pid $unused" stat "$unused" --profile
expect 1 "no process with pid $unused" stat "$unused" --profile --json
[[ ! -e "$tmp/x.svg" ]] || fail "a failed read wrote $tmp/x.svg"
# This shell runs without poolguard: it publishes nothing.
expect 1 "does not run under poolguard" profile $$ --folded -
expect 1 "does not run under poolguard" stat $$ --profile

# --folded FILE is optional: `--folded PID` reads PID (and fails the same way).
expect 1 "no process with pid $unused" profile --folded "$unused"
expect 1 "no process with pid $unused" profile --folded "$tmp/y.folded" "$unused"
[[ ! -e "$tmp/y.folded" ]] || fail "a failed read wrote $tmp/y.folded"

# run passes the options to the command's environment (env runs under the preload, briefly).
env_of() {
  env -u POOLGUARD_LEAKS -u POOLGUARD_PROFILE "$tool" run "$@" -- env 2>/dev/null ||
    fail "poolguard run $* -- env: exit $?"
}
grep -qx "POOLGUARD_PROFILE=64K" <<<"$(env_of --profile 64K)" || fail "run --profile 64K"
grep -qx "POOLGUARD_PROFILE=1M" <<<"$(env_of --profile=1M)" || fail "run --profile=1M"
grep -qx "POOLGUARD_LEAKS=1" <<<"$(env_of --leaks)" || fail "run --leaks"
! grep -q "^POOLGUARD_LEAKS=" <<<"$(env_of --profile 64K)" || fail "run --profile set LEAKS"

echo "profile_usage: usage errors exit 2, unreadable processes exit 1, --help exits 0"
