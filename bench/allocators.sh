# shellcheck shell=bash
# Sourced by scripts/bench.sh and scripts/callgrind.sh: the allocators compared, and helpers.
# Expects ROOT (the repository) and BUILD (the cmake build directory) to be set.

# shellcheck disable=SC2034  # used by the scripts that source this file
PG_ALL_ALLOCATORS="glibc jemalloc mimalloc tcmalloc poolguard"
PG_LIBDIR=/usr/lib/x86_64-linux-gnu

# pg_alloc_lib NAME: the library to preload for NAME (empty for glibc, which is not preloaded).
pg_alloc_lib() {
  case "$1" in
    glibc) echo "" ;;
    jemalloc) echo "$PG_LIBDIR/libjemalloc.so.2" ;;
    mimalloc) echo "$PG_LIBDIR/libmimalloc.so.2" ;;
    tcmalloc) echo "$PG_LIBDIR/libtcmalloc_minimal.so.4" ;;
    poolguard) echo "$BUILD/preload/libpoolguard.so" ;;
    *) echo "unknown allocator: $1" >&2; return 1 ;;
  esac
}

# pg_alloc_pkg NAME: the Debian package that ships NAME's library (for versions and installs).
pg_alloc_pkg() {
  case "$1" in
    glibc) echo libc6 ;;
    jemalloc) echo libjemalloc2 ;;
    mimalloc) echo libmimalloc2.0 ;;
    tcmalloc) echo libtcmalloc-minimal4 ;;
    poolguard) echo "" ;;
  esac
}

# pg_need_packages PKG...: apt-get install those not installed yet (apt-get update once, first).
pg_need_packages() {
  local missing=() p
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
      missing+=("$p")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing missing Debian packages: ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

# pg_build TARGET...: configure (once) and build the given targets into $BUILD.
pg_build() {
  if [ ! -f "$BUILD/build.ninja" ] && [ ! -f "$BUILD/Makefile" ]; then
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DPOOLGUARD_TESTS=OFF -DPOOLGUARD_BENCH=ON >&2 || return 1
  fi
  cmake --build "$BUILD" --target "$@" >&2
}

# pg_check_preload NAME: fails unless NAME's library really is mapped into a preloaded process.
pg_check_preload() {
  local lib
  lib=$(pg_alloc_lib "$1") || return 1
  [ -z "$lib" ] && return 0
  if [ ! -f "$lib" ]; then
    echo "$1: $lib is missing" >&2
    return 1
  fi
  local maps
  maps=$(env -i LD_PRELOAD="$lib" /bin/cat /proc/self/maps)  # whole, so no SIGPIPE under pipefail
  if ! grep -qF "$(readlink -f "$lib")" <<<"$maps"; then
    echo "$1: $lib was not mapped when preloaded" >&2
    return 1
  fi
}
