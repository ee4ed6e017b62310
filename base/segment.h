// The stats segment: the memory a process running under poolguard shares with readers
// (`poolguard stat`, `ls`, `map`, exporters, programs of your own), so that they can read its heap
// figures from outside at any moment, with no thread, signal or request in the process. It is the
// one interface between the writer (the preloaded library) and any reader, so it is plain data:
// fixed, versioned structs with no pointers into the reader's address space and no dependency on
// the allocator's headers. A reader includes this file only; inside the library it is a leaf
// header every layer may include.
//
// Where: a System V shared memory segment the process attaches for its whole life and marks for
// removal at once (it keeps no descriptor, and the kernel destroys the segment when the last
// attachment goes, however the process ends). /proc/PID/maps shows it as a mapping named
// /SYSV00000000 whose inode field is the segment's id; a reader of the same user (or root)
// attaches it read-only with shmat(id, NULL, SHM_RDONLY), which Linux allows for a segment marked
// for removal, and checks the magic: the profile (base/profile_segment.h) is another segment.
//
// Layout (offsets in the segment, all given in the header):
//   header        page 0, written once before `magic`, which is stored last with release order
//   globals       SegmentGlobals: figures changed only on the allocator's slow paths
//   large slots   large_capacity x SegmentLargeSlot: one per thread that used the large path
//   arena map     max_arenas x SegmentArena: the pools of each arena (state, size class)
//   heap slots    max_heaps x heap_stride bytes: the counters of each thread heap, kept by the
//                 malloc/free fast paths themselves with single-writer adds: per slot, u64
//                 allocs[num_slots], requested[num_slots], frees[num_classes]
//
// Reading: every figure is a u64 written with single aligned stores (or atomic adds where several
// threads write it), so a reader never sees a torn value; figures read one after another are a
// moment's, not an atomic cut, and exact for an idle process. A total over slots sums every slot
// up to the high-water mark (`heap_slots`, `large_slots`): slots are reused by later threads with
// their counts kept, so sums are totals since the start. An arena map entry being rewritten has
// `seq` odd (a per-entry seqlock).
//
// Changing the layout: bump kSegmentVersion. A field added without moving others takes room from
// a `reserved` array and keeps the version (old writers leave it 0).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg::stats {

inline constexpr uint64_t kSegmentMagic = 0x3253544154534750ull;  // "PGSTATS2" in memory
inline constexpr uint32_t kSegmentVersion = 2;
// How /proc/PID/maps names a System V segment (the key, 0 for IPC_PRIVATE, follows).
inline constexpr const char kSysvMapPrefix[] = "/SYSV";

inline constexpr size_t kSegmentMaxClasses = 64;  // room for more classes than pool/config.h has
inline constexpr size_t kSegmentMaxSlots = kSegmentMaxClasses + 1;
inline constexpr size_t kSegmentPoolsPerArena = 64;

struct SegmentHeader {
  uint64_t magic;       // kSegmentMagic, stored last
  uint64_t size;        // bytes of the segment
  uint32_t version;     // kSegmentVersion
  int32_t pid;          // the process that publishes here (a fork child rewrites it in its copy)
  uint32_t uid;         // its effective user id
  uint32_t reserved_h;  // padding
  uint64_t start_time;  // its start time, in clock ticks after boot (/proc/PID/stat field 22)
  // Geometry of the pools.
  uint32_t num_classes;  // size classes (<= kSegmentMaxClasses); sizes in class_size
  uint32_t num_slots;    // request slots counted by the heaps: num_classes + 1 (slot 0 is
                         // malloc(0), slot s > 0 class s - 1)
  uint32_t small_max;    // largest request the pools serve
  uint32_t pool_size;    // bytes per pool
  uint32_t pool_header;  // bytes at the start of each pool before its first block
  uint32_t arena_size;   // bytes per arena
  // Where the parts are (offsets in the segment) and how big.
  uint64_t globals_offset;
  uint64_t large_offset;
  uint32_t large_capacity;  // large slots
  uint32_t large_stride;    // sizeof(SegmentLargeSlot)
  uint64_t arenas_offset;
  uint32_t max_arenas;    // arena map entries
  uint32_t arena_stride;  // sizeof(SegmentArena)
  uint64_t heaps_offset;
  uint32_t max_heaps;    // heap slots
  uint32_t heap_stride;  // bytes between two heap slots
  // For readers allowed to read the process's memory (a debugger's permission): where each
  // pool's header is (arena base + pool index * pool_meta_size) and where its count of blocks in
  // use is in it (a u32; the top bit is a flag to ignore), for the map's fill levels.
  uint32_t pool_meta_size;
  uint32_t pool_used_offset;
  uint32_t class_size[kSegmentMaxClasses];  // block size of each class, bytes
  // Pool units (pool_size bytes each) a pool of each class spans; 0 (a segment written before
  // spans) means 1.
  uint8_t class_units[kSegmentMaxClasses];
  uint64_t reserved_hdr[8];
};

// Figures changed only on slow paths; each group is written by the module it names.
struct SegmentGlobals {
  // Arenas (pool/arena.cpp, under the arena lock).
  uint64_t arenas_mapped;    // arenas taken from the OS since start (a reused slot counts again)
  uint64_t arenas_released;  // arenas given back to the OS
  uint64_t arenas_in_use;    // arenas holding pools now, and the empty spare
  uint64_t pools_in_use;     // pool units (pool_size bytes) carved for a size class now
  uint64_t peak_pools;       // high-water mark of pools_in_use
  uint64_t pools_purged;     // free pools whose pages were returned to the OS
  uint64_t fallback_arenas;  // arenas mapped outside the reservation
  uint64_t reserved_bytes;   // address space reserved for arenas now
  uint64_t arenas_total;     // arena map entries ever assigned (may exceed max_arenas)
  uint64_t arenas_listed;    // entries of the arena map in use (<= max_arenas)
  // Thread heaps (pool/heap.cpp).
  uint64_t heap_slots;                           // heap slots ever used (high-water mark)
  uint64_t heaps_created;                        // heaps attached to a thread since start
  uint64_t heaps_abandoned;                      // heaps given up by their thread (exit)
  uint64_t class_pools[kSegmentMaxClasses];      // pools of each class carved now
  uint64_t abandoned_frees[kSegmentMaxClasses];  // frees into abandoned pools, per class
  // Large blocks (large/large.cpp).
  uint64_t large_slots;                          // large slots ever used (high-water mark)
  uint64_t large_gone_allocs, large_gone_frees;  // operations of threads past their exit hook,
  uint64_t large_gone_bytes_in, large_gone_bytes_out;  // which count here, not in a slot
  // The heap limit (pool/limit.cpp).
  uint64_t limit_bytes;  // POOLGUARD_LIMIT; 0: none
  uint64_t limit_in_use;
  uint64_t limit_peak;
  uint64_t limit_refused;
  uint64_t limit_warnings;
  // Errors detected (base/report.cpp, guard/report.cpp).
  uint64_t double_frees, invalid_frees, corruptions;
  uint64_t guard_errors;  // errors the guard zones reported (docs/GUARD.md)
  // The guard (guard/guard.cpp).
  uint64_t guard_redzone_blocks, guard_page_blocks, guard_page_fallbacks, guard_live_blocks;
  uint64_t reserved[32];
};

// The large-block counters of one thread (single writer; counts kept when the slot is reused).
struct SegmentLargeSlot {
  uint64_t allocs, frees;
  uint64_t bytes_in, bytes_out;  // usable bytes of the blocks allocated / freed
  uint64_t reserved[4];
};

// What one pool of an arena is doing, for the occupancy map.
enum SegmentPoolState : uint8_t {
  kSegPoolFreeClean = 0,  // free, pages returned to the OS or never touched
  kSegPoolFreeDirty = 1,  // free, pages possibly resident
  kSegPoolInUse = 2,      // carved for the size class `cls`
  kSegPoolHeaders = 3,    // the arena's first pool, which holds the headers of the others
  kSegPoolSpanTail = 4,   // a unit of the span of the pool in use before it (class `cls`)
};
struct SegmentPool {
  uint8_t state;  // SegmentPoolState
  uint8_t cls;    // class index (0 for the first class) when in use
  uint16_t reserved;
};
struct SegmentArena {
  uint64_t seq;   // odd while the entry is being rewritten
  uint64_t base;  // address of the arena in the process; 0: entry not in use
  SegmentPool pools[kSegmentPoolsPerArena];
};

static_assert(sizeof(SegmentHeader) <= 4096);
static_assert(sizeof(SegmentLargeSlot) == 64);
static_assert(sizeof(SegmentPool) == 4);
static_assert(sizeof(SegmentArena) == 16 + 4 * kSegmentPoolsPerArena);

}  // namespace pg::stats
