// The heap limit (POOLGUARD_LIMIT). What counts against it is the memory the program holds:
// every pool in use (its bytes, 16 KiB or a span of units, charged when a thread takes a fresh
// pool and released with the pool) and every large block (its requested size). Pooled allocations
// are thereby accounted per thread in pools, and the shared total is touched only when a pool is
// taken or given back: the malloc/free fast paths pay nothing.
//
// Slack: the charged total never exceeds the limit (except with POOLGUARD_ON_LIMIT=warn), so live
// bytes never do either. The other way round, a small request may be refused while live bytes are
// below the limit by at most the free room in the pools already charged (under a pool per size
// class and thread): when a fresh pool does not fit, the request is served from glibc instead
// (charged exactly) before it is refused.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

// True when a limit is set (one load, inlined).
extern uint64_t g_limit_bytes;
inline bool limit_enabled() {
  return g_limit_bytes != 0;
}

// Charges `bytes` for a fresh pool or a page-guarded block taken to serve `request`. Silent: false
// when it would cross the limit, and the caller falls back to a path that decides and logs (the
// large path); with POOLGUARD_ON_LIMIT=warn it is charged anyway (after the log record). Released
// with limit_release.
bool limit_charge_quiet(size_t bytes, size_t request);

// Charges `bytes` for a large block of `request` bytes; when that would cross the limit, logs a
// limit-exceeded record and then, per POOLGUARD_ON_LIMIT, returns false (null), aborts, or
// returns true (warn: charged anyway).
bool limit_charge(size_t bytes, size_t request);
// Whether the calling thread's last limit_charge refused (and logged) a request since the last
// call: a caller with another way to serve the request must then fail it instead of trying that
// way, which would refuse and log the same request twice.
bool limit_take_refusal();
void limit_release(size_t bytes);

struct LimitCounters {
  uint64_t limit;   // bytes (0: none)
  uint64_t in_use;  // charged now
  uint64_t peak;    // highest charged
  // Highest bytes held, pools and large blocks together: `peak` under a limit; without one, the
  // highest seen by limit_note_pools and limit_note_large.
  uint64_t held_peak;
  uint64_t refused;   // requests refused (or, with warn, allowed over the limit)
  uint64_t warnings;  // limit-warning records emitted (rate limit aside)
};
void limit_counters(LimitCounters* out);

// The peak of the bytes held without a limit, which counts nothing on the fast paths: the pools
// report the bytes of the pools in use each time one is taken (under the arena lock), the large
// path its live bytes each time it sums them (every 64 large operations of a thread); each report
// is added to the other side's latest figure (the pools' is the arenas' own pools_in_use). The
// peak can miss the large blocks of the last 64 operations of each thread.
void limit_note_pools(uint64_t pool_bytes);
void limit_note_large(uint64_t large_bytes);

// Called once from initialisation with the options.
void limit_init();

}  // namespace pg
