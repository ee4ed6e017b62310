#!/usr/bin/env bash
# Installs with apt whatever poolguard's build, tests and benchmarks need and is not installed yet.
# Idempotent: prints nothing and touches nothing when every package is already there.
set -euo pipefail

# Build tools and libraries (bench/ compares against jemalloc, mimalloc and tcmalloc), clang with
# its sanitizer and libFuzzer runtimes for tests/fuzz (not pulled in by clang without recommends),
# then the programs the integration tests run under the preload, and CPython's own test suite;
# prometheus: Debian's Prometheus scrapes `poolguard export` and its promtool checks the output and
# the PromQL of docs/FLEET.md (tests/stats/export_test.py, tests/docs/fleet_docs_test.py).
packages=(
  cmake ninja-build g++ pkg-config googletest libgtest-dev libbenchmark-dev libunwind-dev
  libjemalloc-dev libmimalloc-dev libgoogle-perftools-dev
  clang libclang-rt-14-dev
  python3 sqlite3 git gcc coreutils file libpython3.11-testsuite
  prometheus
)

say() { echo "deps.sh: $*" >&2; }

if ! command -v dpkg-query >/dev/null 2>&1; then
  say "not a Debian system (no dpkg-query): install by hand the equivalents of: ${packages[*]}"
  for tool in cmake ninja g++ gcc; do
    command -v "$tool" >/dev/null 2>&1 || { say "missing required tool: $tool"; exit 1; }
  done
  exit 0
fi

# True when the package is installed (not merely known to dpkg, e.g. removed with its config kept).
installed() {
  [[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" == installed ]]
}

missing=()
for p in "${packages[@]}"; do
  installed "$p" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

# How to run apt as root: directly, through sudo (non-interactive in CI), or not at all.
if [[ $(id -u) -eq 0 ]]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  if [[ "${CI:-}" == true ]]; then as_root=(sudo -n); else as_root=(sudo); fi
else
  say "missing packages: ${missing[*]}"
  say "not root and no sudo: install them as root with: apt-get install ${missing[*]}"
  exit 1
fi

apt_env=(env DEBIAN_FRONTEND=noninteractive)
say "installing: ${missing[*]}"
"${as_root[@]}" "${apt_env[@]}" apt-get update -qq

# libunwind-dev and libunwind-14-dev (pulled in by some LLVM packages) conflict: drop the latter.
if [[ " ${missing[*]} " == *" libunwind-dev "* ]] && installed libunwind-14-dev; then
  say "removing libunwind-14-dev (conflicts with libunwind-dev)"
  "${as_root[@]}" "${apt_env[@]}" apt-get remove -y -qq libunwind-14-dev >/dev/null
fi

"${as_root[@]}" "${apt_env[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

still=()
for p in "${missing[@]}"; do
  installed "$p" || still+=("$p")
done
if [[ ${#still[@]} -gt 0 ]]; then
  say "could not install: ${still[*]}"
  exit 1
fi
