#!/usr/bin/env bash
# cmake --install into a temporary prefix, then use it as a consumer would: pkg-config gives
# normalised paths (no "..", no "//") that exist, and a small program builds with them; a CMake
# project (tests/tools/consumer) finds the package with find_package(poolguard), builds against
# poolguard::poolguard and gets the tool; a version the package is not compatible with is refused.
#   package_consumer.sh BUILD_DIR CONSUMER_SOURCE_DIR
set -euo pipefail
build="${1:?usage: package_consumer.sh BUILD_DIR CONSUMER_SOURCE_DIR}"
src="${2:?usage: package_consumer.sh BUILD_DIR CONSUMER_SOURCE_DIR}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/pg-package.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
fail() {
  echo "FAIL: package_consumer: $*" >&2
  exit 1
}
unset LD_PRELOAD
prefix="$tmp/prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 ||
  fail "cmake --install: $(cat "$tmp/install.log")"

# pkg-config.
pc=("$prefix"/lib*/pkgconfig/poolguard.pc "$prefix"/lib/*/pkgconfig/poolguard.pc)
pcs=()
for f in "${pc[@]}"; do [[ -f $f ]] && pcs+=("$f"); done
[[ ${#pcs[@]} -eq 1 ]] || fail "expected one poolguard.pc under $prefix, found ${#pcs[@]}"
export PKG_CONFIG_PATH="${pcs[0]%/*}"
flags="$(pkg-config --cflags --libs poolguard)" || fail "pkg-config --cflags --libs poolguard failed"
preload="$(pkg-config --variable=preload poolguard)" || fail "pkg-config --variable=preload failed"
for word in $flags $preload; do
  [[ $word == *..* || $word == *//* ]] && fail "pkg-config gives a path that is not normalised: $word"
done
incdir="" libdir=""
for word in $flags; do
  case "$word" in
    -I*) incdir="${word#-I}" ;;
    -L*) libdir="${word#-L}" ;;
  esac
done
[[ -f $incdir/stats/segment.h ]] || fail "pkg-config --cflags ($flags): no stats/segment.h there"
[[ -f $libdir/libpoolguard.so && $preload == "$libdir/libpoolguard.so" ]] ||
  fail "pkg-config: -L$libdir, preload $preload: no libpoolguard.so"
[[ $preload == "$prefix"/* ]] || fail "preload $preload is not under $prefix"
# shellcheck disable=SC2086 # the flags are words
g++ -std=c++20 -o "$tmp/pc_consumer" "$src/consumer.cpp" $flags -Wl,-rpath,"$libdir" ||
  fail "the consumer does not build with pkg-config's flags: $flags"
out="$("$tmp/pc_consumer")" || fail "the pkg-config consumer: $out"
echo "pkg-config: $flags; preload $preload; consumer: $out"

# The CMake package.
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$src" -B "$tmp/build" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
  >"$tmp/configure.log" 2>&1 || fail "configuring the consumer: $(cat "$tmp/configure.log")"
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 || fail "building the consumer: $(cat "$tmp/build.log")"
out="$("$tmp/build/consumer")" || fail "the CMake consumer: $out"
version="$("$tmp/pc_consumer" | sed -n 's/^segment version \([0-9]*\),.*/\1/p')"
grep -qx "segment version $version, libpoolguard.so mapped" <<<"$out" || fail "the CMake consumer printed: $out"
declare -A got
while IFS='=' read -r key value; do got[$key]=$value; done <"$tmp/build/package.txt"
[[ ${got[preload]} == "$preload" && ${got[library_target]} == "$preload" ]] ||
  fail "package: POOLGUARD_PRELOAD ${got[preload]}, poolguard::poolguard ${got[library_target]}; pkg-config: $preload"
[[ ${got[tool]} == "$prefix/bin/poolguard" && ${got[tool_target]} == "${got[tool]}" ]] ||
  fail "package: POOLGUARD_TOOL ${got[tool]}, poolguard::tool ${got[tool_target]}"
tool_version="$("${got[tool]}" --version)" || fail "${got[tool]} --version failed"
[[ $tool_version == "poolguard ${got[version]} (stats segment version $version)" ]] ||
  fail "the tool says '$tool_version'; the package is ${got[version]}, the header's segment version $version"
echo "find_package: poolguard ${got[version]}, $out; $tool_version"

# A version the package does not promise.
if cmake -S "$src" -B "$tmp/build9" "${generator[@]}" -DCMAKE_PREFIX_PATH="$prefix" \
  -DPG_WANT_VERSION=9.0 >"$tmp/configure9.log" 2>&1; then
  fail "find_package(poolguard 9.0) succeeded against ${got[version]}"
fi
grep -q 'compatible with requested version "9.0"' "$tmp/configure9.log" ||
  fail "find_package(poolguard 9.0) failed for another reason: $(cat "$tmp/configure9.log")"
echo "find_package(poolguard 9.0): refused"
