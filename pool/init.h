// Global initialisation of the core: lazy, idempotent, allocation-free, callable from any thread
// at the first allocation (which may come before any constructor runs).
#pragma once

#include <atomic>
#include <cstdint>

namespace pg {

// Returns true once the core is initialised. False only when called re-entrantly from inside
// initialisation on the same thread (the caller then serves the request from glibc).
bool ensure_init();

// Why the large path may not take its plain variant (pool/large.h), one bit per reason, so that a
// large malloc or free tests them all with one load. Each bit is kept by the module it names.
enum LargeDetour : uint32_t {
  // Not initialised yet, or a heap limit is set (read once, at initialisation).
  kDetourNotReady = 1,
  kDetourFallback = 2,  // arenas outside the reservation exist (pool/arena.cpp, arena.h)
  kDetourGuard = 4,     // the guard takes some allocations (guard/guard.cpp)
  kDetourTrack = 8,     // the tracker takes some allocations (track/tracker.cpp)
};
extern std::atomic<uint32_t> g_large_detours __attribute__((visibility("hidden")));
inline void set_large_detour(uint32_t bit, bool on) {
  if (on) {
    g_large_detours.fetch_or(bit, std::memory_order_acq_rel);
  } else {
    g_large_detours.fetch_and(~bit, std::memory_order_acq_rel);
  }
}
// True when nothing stands between a large request and glibc but the statistics: initialised,
// no limit, no fallback arenas, no guard, no tracker.
inline bool large_plain() {
  return g_large_detours.load(std::memory_order_acquire) == 0;
}

// Random secret for encodings that are not per pool (large-block headers).
unsigned long long global_secret();

}  // namespace pg
