// Global initialisation of the core: lazy, idempotent, allocation-free, callable from any thread
// at the first allocation (which may come before any constructor runs).
#pragma once

#include <atomic>
#include <cstdint>

namespace pg {

// Returns true once the core is initialised. False only when called re-entrantly from inside
// initialisation on the same thread (the caller then serves the request from glibc).
bool ensure_init();

// Why a request may not take the direct route to glibc (the *_direct functions of large/large.h):
// one bit per reason, so that a large malloc or a free outside the arenas tests them all with one
// load. Only initialisation (front/init.cpp) sets them.
enum RouteFlag : uint32_t {
  kRouteNotReady = 1,        // not initialised yet, or a heap limit is set (read once)
  kRouteFallbackArenas = 2,  // arenas outside the reservation exist (pool/arena.h)
  kRouteGuard = 4,           // the guard takes some allocations (guard/guard.h)
  kRouteTrack = 8,           // the tracker takes some allocations (track/tracker.h)
};
extern std::atomic<uint32_t> g_route_flags __attribute__((visibility("hidden")));
inline void set_route_flag(uint32_t bit, bool on) {
  if (on) {
    g_route_flags.fetch_or(bit, std::memory_order_acq_rel);
  } else {
    g_route_flags.fetch_and(~bit, std::memory_order_acq_rel);
  }
}
// True when nothing stands between a large request and glibc but the statistics: initialised,
// no limit, no fallback arenas, no guard, no tracker.
inline bool route_direct() {
  return g_route_flags.load(std::memory_order_acquire) == 0;
}

}  // namespace pg
