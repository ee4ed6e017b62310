// Global initialisation of the core: lazy, idempotent, allocation-free, callable from any thread
// at the first allocation (which may come before any constructor runs).
#pragma once

namespace pg {

// Returns true once the core is initialised. False only when called re-entrantly from inside
// initialisation on the same thread (the caller then serves the request from glibc).
bool ensure_init();

// True once initialisation has completed with no heap limit set (POOLGUARD_LIMIT is read once,
// at initialisation): the large path may then skip the limit. One load.
extern bool g_initialised_without_limit __attribute__((visibility("hidden")));
inline bool initialised_without_limit() {
  return __atomic_load_n(&g_initialised_without_limit, __ATOMIC_ACQUIRE);
}

// Random secret for encodings that are not per pool (large-block headers).
unsigned long long global_secret();

}  // namespace pg
