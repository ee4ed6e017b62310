// Build-time constants of the pooled allocator, and its size classes. The thresholds live here and
// nowhere else: change kSmallMax or kPoolMax and every size class, table and test follows.
//
// Two tiers of classes share the pools. The small tier is pymalloc's: classes 16 bytes apart up to
// kSmallMax, served by the inline fast path. The medium tier goes on from there four classes per
// doubling (320, 384, 448, 512, 640, ...) up to kPoolMax, so that a request wastes at most a
// quarter of its block. A pool of a class up to 3584 bytes is one 16 KiB unit; a pool of a larger
// class spans 2, 4, 8 or 16 units (class_units), so that every pool holds four blocks or more.
// Above kPoolMax, requests go to the large path (large/large.h).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

inline constexpr size_t kAlign = 16;      // every block is 16-byte aligned
inline constexpr size_t kSmallMax = 256;  // 0..kSmallMax: the small tier, 16 bytes apart
inline constexpr size_t kNumSmallClasses = kSmallMax / kAlign;  // 16, 32, ..., kSmallMax
inline constexpr size_t kPoolMax = 32768;  // kSmallMax+1..kPoolMax: the medium tier
inline constexpr size_t kMediumPerDoubling = 4;
inline constexpr size_t kNumMediumClasses = 28;  // 320 ... 32768
inline constexpr size_t kNumClasses = kNumSmallClasses + kNumMediumClasses;
inline constexpr size_t kPoolShift = 14;
inline constexpr size_t kPoolSize = size_t{1} << kPoolShift;  // 16 KiB: a pool's unit
// A pool spans at most this many units, aligned to its span inside its arena (pool/pool.h).
inline constexpr size_t kMaxPoolUnits = 16;
// Every pool holds at least this many blocks.
inline constexpr size_t kMinPoolBlocks = 4;
inline constexpr size_t kArenaShift = 20;
inline constexpr size_t kArenaSize = size_t{1} << kArenaShift;    // 1 MiB, aligned to its size
inline constexpr size_t kPoolsPerArena = kArenaSize / kPoolSize;  // 64: one bit each in a uint64_t
// Pool headers (struct Pool, pool/pool.h) do not live in their pools: all the headers of an arena
// sit side by side in its first pool, kPoolMetaSize bytes each, so that the pool is never given
// out for blocks and an arena has kDataPoolsPerArena pools of blocks.
inline constexpr size_t kPoolMetaShift = 8;
inline constexpr size_t kPoolMetaSize = size_t{1} << kPoolMetaShift;  // 256: four cache lines
inline constexpr size_t kDataPoolsPerArena = kPoolsPerArena - 1;
// Blocks start this far into a pool (its lead): a link to the pool's own address can then mean
// "end of list" (pool/pool.h), and blocks are aligned as below. The pools of classes that are
// multiples of a page start their blocks a page in (class_lead), so that those blocks are
// page-aligned, at no cost in blocks per pool (class_units checks it).
inline constexpr size_t kPoolLead = 128;
inline constexpr size_t kPageLead = 4096;
// Largest alignment the pools honour: blocks of a class that is a multiple of A sit at
// pool + lead + k * size, all A-aligned while A divides the lead (class_alignment).
inline constexpr size_t kMaxPoolAlign = kPageLead;

// Thread heaps live in one table of kMaxHeaps slots kHeapStride bytes apart (pool/heap.h), and
// the counters the fast paths keep for each heap sit kHeapCountersOffset bytes after its slot, in
// the memory shared with statistics readers (pool/shared.h): one constant displacement, so that
// counting costs the fast path no more than a field of the heap would. The displacement is twice
// the table's size: the shared segment's other parts sit just below the counters (pool/shared.cpp).
inline constexpr size_t kMaxHeaps = 8192;
inline constexpr size_t kHeapStride = 4096;
inline constexpr size_t kHeapTableBytes = kMaxHeaps * kHeapStride;
inline constexpr size_t kHeapCountersOffset = 2 * kHeapTableBytes;

static_assert(kSmallMax % kAlign == 0 && (kSmallMax & (kSmallMax - 1)) == 0,
              "the small tier ends at a power of two, where the medium tier's doublings start");
static_assert(kPoolsPerArena == 64, "arena pool masks are one uint64_t");
static_assert(kPoolLead % kAlign == 0 && kPoolLead > 0);
static_assert(kPoolsPerArena * kPoolMetaSize <= kPoolSize, "an arena's headers fit in one pool");

// Size class index of a request of n <= kPoolMax bytes (malloc(0) is served as 16 bytes): 0 for 16
// bytes ... kNumSmallClasses-1 for kSmallMax, then the medium classes. A medium request's doubling
// is (its bit width above kSmallMax's), and its quarter within the doubling the two bits below the
// top one.
constexpr size_t class_of(size_t n) {
  if (n <= kSmallMax) return n == 0 ? 0 : (n - 1) / kAlign;
  size_t m = n - 1;
  int width = 64 - __builtin_clzll(m);  // kSmallMax < n <= 2 kSmallMax: 9
  int doubling = width - (__builtin_ctzll(kSmallMax) + 1);
  size_t quarter = (m >> (width - 3)) & (kMediumPerDoubling - 1);
  return kNumSmallClasses + static_cast<size_t>(doubling) * kMediumPerDoubling + quarter;
}
// Block size of class cls, in bytes.
constexpr size_t class_size(size_t cls) {
  if (cls < kNumSmallClasses) return (cls + 1) * kAlign;
  size_t m = cls - kNumSmallClasses;
  size_t base = kSmallMax << (m / kMediumPerDoubling);
  return base + (m % kMediumPerDoubling + 1) * (base / kMediumPerDoubling);
}

// Units (kPoolSize each) of a pool of class cls: the fewest, a power of two, that hold
// kMinPoolBlocks blocks after the lead.
constexpr size_t class_units(size_t cls) {
  size_t units = 1;
  while ((units * kPoolSize - kPoolLead) / class_size(cls) < kMinPoolBlocks) units *= 2;
  return units;
}
// Bytes before the first block of a pool of class cls.
constexpr size_t class_lead(size_t cls) {
  return class_size(cls) % kPageLead == 0 ? kPageLead : kPoolLead;
}
// Largest alignment every block of class cls has: the lowest set bit of the block size, up to the
// lead (pools are aligned to at least kPoolSize).
constexpr size_t class_alignment(size_t cls) {
  size_t size_align = class_size(cls) & (0 - class_size(cls));
  return size_align < class_lead(cls) ? size_align : class_lead(cls);
}
// Bytes of a pool of class cls.
constexpr size_t class_pool_bytes(size_t cls) {
  return class_units(cls) * kPoolSize;
}

// The class table checked whole at compile time: sizes grow, every class is its own class_of, and
// every request lands in the smallest class that holds it.
consteval bool classes_consistent() {
  if (class_size(kNumClasses - 1) != kPoolMax) return false;
  for (size_t c = 0; c < kNumClasses; ++c) {
    if (class_of(class_size(c)) != c || class_size(c) % kAlign != 0) return false;
    if (c > 0 && class_size(c) <= class_size(c - 1)) return false;
    if (c > 0 && class_of(class_size(c - 1) + 1) != c) return false;
    if (class_units(c) > kMaxPoolUnits || (c < kNumSmallClasses && class_units(c) != 1)) {
      return false;
    }
    // A page lead costs no block: readers (base/segment.h) compute capacities with kPoolLead.
    size_t bytes = class_pool_bytes(c);
    if ((bytes - class_lead(c)) / class_size(c) != (bytes - kPoolLead) / class_size(c)) {
      return false;
    }
  }
  return true;
}
static_assert(classes_consistent(), "size classes: see class_of and class_size");

// Aligned requests (front/alloc.cpp, alloc_aligned) count on these: up to kPoolLead, a multiple of
// the alignment lands in a class whose blocks have it; every multiple of a page is a class of
// page-aligned blocks.
consteval bool aligned_classes_consistent() {
  for (size_t a = kAlign; a <= kPoolLead; a *= 2) {
    for (size_t n = a; n <= kPoolMax; n += a) {
      if (class_alignment(class_of(n)) < a) return false;
    }
  }
  for (size_t n = kPageLead; n <= kPoolMax; n += kPageLead) {
    if (class_size(class_of(n)) != n || class_alignment(class_of(n)) != kPageLead) return false;
  }
  return true;
}
static_assert(aligned_classes_consistent(), "aligned classes: see class_lead and class_alignment");

}  // namespace pg
