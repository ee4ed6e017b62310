// Build-time constants of the pooled allocator. The small/large threshold lives here and nowhere
// else: change kSmallMax and every size class, table and test follows.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

inline constexpr size_t kAlign = 16;      // every block is 16-byte aligned
inline constexpr size_t kSmallMax = 256;  // requests of 0..kSmallMax bytes go to the pools
inline constexpr size_t kNumClasses = kSmallMax / kAlign;  // classes 16, 32, ..., kSmallMax
inline constexpr size_t kPoolShift = 14;
inline constexpr size_t kPoolSize = size_t{1} << kPoolShift;  // 16 KiB: one size class per pool
inline constexpr size_t kArenaShift = 20;
inline constexpr size_t kArenaSize = size_t{1} << kArenaShift;    // 1 MiB, aligned to its size
inline constexpr size_t kPoolsPerArena = kArenaSize / kPoolSize;  // 64: one bit each in a uint64_t
// Pool headers (struct Pool, pool/pool.h) do not live in their pools: all the headers of an arena
// sit side by side in its first pool, kPoolMetaSize bytes each, so that the pool is never given
// out for blocks and an arena has kDataPoolsPerArena pools of blocks.
inline constexpr size_t kPoolMetaShift = 8;
inline constexpr size_t kPoolMetaSize = size_t{1} << kPoolMetaShift;  // 256: four cache lines
inline constexpr size_t kDataPoolsPerArena = kPoolsPerArena - 1;
// Blocks start this far into a pool: a link to the pool's own address can then mean "end of list"
// (pool/pool.h), and blocks are aligned as below.
inline constexpr size_t kPoolLead = 128;
// Largest alignment the pools honour: blocks of a class that is a multiple of A sit at
// pool + kPoolLead + k * size, all A-aligned while A divides kPoolLead.
inline constexpr size_t kMaxPoolAlign = kPoolLead;

// Thread heaps live in one table of kMaxHeaps slots kHeapStride bytes apart (pool/heap.h), and
// the counters the fast paths keep for each heap sit kHeapCountersOffset bytes after its slot, in
// the memory shared with statistics readers (pool/shared.h): one constant displacement, so that
// counting costs the fast path no more than a field of the heap would. The displacement is twice
// the table's size: the shared segment's other parts sit just below the counters (pool/shared.cpp).
inline constexpr size_t kMaxHeaps = 16384;
inline constexpr size_t kHeapStride = 1024;
inline constexpr size_t kHeapTableBytes = kMaxHeaps * kHeapStride;
inline constexpr size_t kHeapCountersOffset = 2 * kHeapTableBytes;

static_assert(kSmallMax % kAlign == 0 && kSmallMax <= 1024, "classes are 16 bytes apart");
static_assert(kPoolsPerArena == 64, "arena pool masks are one uint64_t");
static_assert(kPoolLead % kAlign == 0 && kPoolLead > 0);
static_assert(kPoolsPerArena * kPoolMetaSize <= kPoolSize, "an arena's headers fit in one pool");

// Size class index (0 for 16 bytes ... kNumClasses-1 for kSmallMax) of a request of n <= kSmallMax
// bytes. malloc(0) is served as 16 bytes.
constexpr size_t class_of(size_t n) {
  return n == 0 ? 0 : (n - 1) / kAlign;
}
constexpr size_t class_size(size_t cls) {
  return (cls + 1) * kAlign;
}

}  // namespace pg
