// The tracker: allocations poolguard follows one by one, with their allocation stack, for the
// sampled heap profile (POOLGUARD_PROFILE) and the leak report at exit (POOLGUARD_LEAKS).
//
// A tracked allocation is a plain glibc block from the large path (large/large.h: counted against
// POOLGUARD_LIMIT like any other) plus a record {address, size, weight, stack} in the tracker's
// table. Tracked blocks never come from the pools, so the pool fast paths know nothing of them:
// their frees reach free_unreserved(), which asks tracked_may_own() (a few instructions) before the
// large path.
//
// Which allocations are tracked
//   profile  each allocation of `size` bytes with probability p = min(1, size / BYTES), so that on
//            average one allocation is sampled per BYTES bytes allocated (jemalloc's
//            lg_prof_sample, tcmalloc's sampling), and a sampled one stands for size / p =
//            max(size, BYTES) bytes: summed over a stack, an unbiased estimate of what it holds.
//            Small requests are decided in two steps so that the pool fast path pays only the
//            countdown it already has (Heap::sample_left): the countdown fires for about one
//            allocation in K = max(1, BYTES / kSmallMax) (a geometric interval: every allocation
//            is equally likely to be the one), and a fired small request is then kept with
//            probability size * K / BYTES <= 1 (track_keep_small). Larger requests, which are on
//            slow paths anyway, draw p directly (track_keep_large).
//   leaks    every allocation (no thread heap is attached, as in the guard's redzone mode), with
//            weight = size: the profile, if on too, is then exact.
//
// The table is sharded by address (kShards open-addressing tables, each under its own spin lock),
// so threads that sample at the same time rarely meet. A counting filter (one byte per hash
// bucket, atomic) lets free_unreserved() reject most pointers that are not tracked without a lock
// when only sampling is on.
//
// Nothing here allocates through malloc: tables and work arrays are mmap'ed.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "pool/config.h"

namespace pg {

namespace track_detail {
// g_flags: kOn when some allocations are tracked (the profile samples, or leak mode); kAll as well
// when every allocation is (leak mode).
inline constexpr uint8_t kOn = 1;
inline constexpr uint8_t kAll = 2;
inline std::atomic<uint8_t> g_flags{0};
inline constexpr size_t kFilterBits = 16;
// Counting filter: g_filter[hash(p)] counts live tracked blocks whose address hashes there.
inline std::atomic<uint8_t> g_filter[size_t{1} << kFilterBits];
inline size_t filter_index(uintptr_t p) {
  return static_cast<size_t>(((p >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - kFilterBits));
}
}  // namespace track_detail

struct TrackConfig {
  uint64_t profile_bytes = 0;  // POOLGUARD_PROFILE: mean bytes between samples; 0: no profile
  bool leaks = false;          // POOLGUARD_LEAKS: track every allocation, report leaks at exit
  bool publish = false;        // share the live profile with readers (track/profile_table.h)
};

// Sets the tracker up. Called once from ensure_init, before any allocation is tracked.
void tracker_init(const TrackConfig& config);

inline bool tracking() {
  return track_detail::g_flags.load(std::memory_order_relaxed) != 0;
}
inline bool tracking_all() {
  return (track_detail::g_flags.load(std::memory_order_relaxed) & track_detail::kAll) != 0;
}
// POOLGUARD_PROFILE's figure (0: off; 1 in leak mode, where every allocation is tracked).
uint64_t track_sample_bytes();

// Mean allocations between two profile events of a heap's countdown: K above (0: no profile).
uint64_t track_small_period();
// Length of the next profile countdown for a mean of K allocations, from a random number.
int64_t track_interval(uint64_t random);
// Whether a small request of `size` bytes whose countdown fired is kept (probability
// size * K / BYTES).
bool track_keep_small(size_t size, uint64_t random);
// Whether a request above kSmallMax is sampled (probability min(1, size / BYTES)).
bool track_keep_large(size_t size, uint64_t random);

// A tracked block of `size` bytes aligned to `alignment` (a power of two >= 16), zeroed if
// `zero`, its allocation stack captured. nullptr when glibc or the tracker's memory fail, or when
// called re-entrantly from inside the tracker (the caller then serves the request as usual), or
// when the heap limit refused it: then *refused is set (the caller fails the request: serving it
// elsewhere would be refused and logged again).
void* tracked_alloc(size_t size, size_t alignment, bool zero, bool* refused);

// False when p cannot be a tracked block: nothing is tracked, or only sampling is and the filter
// has no block there. Inline and lock-free.
inline bool tracked_may_own(const void* p) {
  uint8_t flags = track_detail::g_flags.load(std::memory_order_relaxed);
  if (flags == 0) return false;
  if ((flags & track_detail::kAll) != 0) return true;
  return track_detail::g_filter[track_detail::filter_index(reinterpret_cast<uintptr_t>(p))].load(
             std::memory_order_relaxed) != 0;
}
// Frees p and returns true if it is a tracked block; false (nothing done) otherwise.
bool tracked_free(void* p);
// True if p is a live tracked block; *size gets the bytes it was asked for.
bool tracked_size(const void* p, size_t* size);

// Live tracked blocks summed by allocation stack (the profile).
struct TrackedStack {
  uint32_t stack;    // stack depot id (0: unknown)
  uint64_t bytes;    // estimated live bytes (sum of weights)
  uint64_t blocks;   // estimated live blocks (sum of weight / size)
  uint64_t samples;  // live tracked blocks
};
struct TrackTotals {
  uint64_t stacks;         // distinct stacks with live tracked blocks
  uint64_t samples;        // live tracked blocks
  uint64_t bytes;          // estimated live bytes
  uint64_t blocks;         // estimated live blocks
  uint64_t tracked_total;  // blocks tracked since the start
};
// Fills out[0..max) with the stacks holding the most estimated bytes, largest first, and returns
// how many; *totals covers every stack. Takes each shard's lock in turn.
size_t tracker_profile(TrackedStack* out, size_t max, TrackTotals* totals);

// Calls fn(ctx, address, size, stack) for every live tracked block, with every shard locked
// (nothing is tracked or freed meanwhile: other threads that try wait). For the leak check.
void tracker_for_each_locked(void (*fn)(void* ctx, uintptr_t p, uint64_t size, uint32_t stack),
                             void* ctx);
// The ranges of the tracker's own memory (tables), which hold block addresses and so must not be
// scanned as roots. Fills out[0..max) as {lo, hi} pairs and returns how many.
size_t tracker_own_ranges(uintptr_t (*out)[2], size_t max);
// Locks every shard (the leak check holds them across the whole scan). false, with nothing held,
// when a shard stays locked for about a second: its holder is the calling thread itself (exit()
// from a signal handler that interrupted the tracker) or a thread that is not running.
bool tracker_lock_all();
void tracker_unlock_all();

void tracker_lock_for_fork();
void tracker_unlock_after_fork();

}  // namespace pg
