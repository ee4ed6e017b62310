// The stats segment: what a process running under poolguard publishes about its heap, and what
// `poolguard stat`, `ls` and `map` read from outside. It is the one interface between the writer
// (stats/publish.cpp, inside the preloaded library) and any reader (tools/, or a program of your
// own), so it is a plain, fixed, versioned struct with no pointers and no dependency on the
// allocator's headers: a reader includes this file only.
//
// Where: /dev/shm/poolguard.<pid>, a regular file of exactly sizeof(Segment) bytes, mode 0600,
// owned by the process's user, mapped MAP_SHARED by the process for its whole life.
//
// Protocol (docs/STATS.md has the full story):
// - The header (magic ... max_arenas) is written once, before `magic`, which is stored last with
//   release order: a reader that sees the magic sees a complete header. A reader rejects a segment
//   whose magic, version or size differ from its own.
// - The figures (everything after `seq`) are rewritten by the process's publisher thread under a
//   seqlock: `seq` is odd while they are being written. A reader copies them, then checks that
//   `seq` was even and unchanged before and after the copy, else copies again.
// - A reader that wants current figures adds 1 to `request` and wakes the futex on `request`
//   (FUTEX_WAKE, not private: the word is shared between processes); the publisher wakes,
//   publishes, stores the `request` value it served in `published` and wakes the futex on
//   `published`. The figures are current for the reader once (int32_t)(published - r) >= 0, r
//   being the value its own increment produced. Without requests the publisher refreshes about once
//   a second.
// - Every count is a uint64_t.
//
// Changing the layout: bump kSegmentVersion. Adding a field without moving others: take it from a
// `reserved` array and keep the version (readers of the old version see 0 there).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg::stats {

inline constexpr uint64_t kSegmentMagic = 0x3153544154534750ull;  // "PGSTATS1" in memory
inline constexpr uint32_t kSegmentVersion = 1;
inline constexpr const char kSegmentPathPrefix[] = "/dev/shm/poolguard.";

inline constexpr size_t kSegmentMaxClasses = 64;   // room for classes up to 1024 bytes, 16 apart
inline constexpr size_t kSegmentMaxArenas = 1024;  // the occupancy map covers 1 GiB of arenas
inline constexpr size_t kSegmentPoolsPerArena = 64;

// One size class. All counts are since the process started, except the live ones.
struct SegmentClass {
  uint64_t block_size;       // bytes per block
  uint64_t allocs;           // blocks handed out (requests served by this class)
  uint64_t frees;            // blocks given back
  uint64_t live_blocks;      // allocs - frees
  uint64_t requested_bytes;  // bytes asked for by all `allocs` requests (all time; the mean
                             // request is requested_bytes / allocs: live requested bytes are not
                             // tracked, see docs/STATS.md)
  uint64_t held_bytes;       // block_size * live_blocks
  uint64_t pools;            // pools of this class carved now
  uint64_t free_blocks;      // blocks not in use inside those pools
  uint64_t reserved[4];
};

// What one pool of an arena is doing, for the occupancy map.
enum SegmentPoolState : uint8_t {
  kSegPoolFreeClean = 0,  // free, pages returned to the OS or never touched
  kSegPoolFreeDirty = 1,  // free, pages possibly resident
  kSegPoolInUse = 2,      // carved for the size class `cls`
  kSegPoolHeaders = 3,    // the arena's first pool, which holds the headers of the others
};
struct SegmentPool {
  uint8_t state;  // SegmentPoolState
  uint8_t cls;    // class index (0 for the first class) when in use
  uint16_t used;  // blocks in use when in use (read without the owner's lock: a moment's value)
};
struct SegmentArena {
  uint64_t base;  // address of the arena in the process
  SegmentPool pools[kSegmentPoolsPerArena];
};

struct Segment {
  // --- Header: written once at creation; `magic` last. ---
  uint64_t magic;        // kSegmentMagic
  uint64_t size;         // sizeof(Segment) of the writer
  uint32_t version;      // kSegmentVersion
  int32_t pid;           // the process that publishes here
  uint32_t uid;          // its effective user id
  uint32_t reserved_h;   // padding
  uint64_t start_time;   // its start time, in clock ticks after boot (/proc/PID/stat field 22)
  uint32_t num_classes;  // classes in use in `classes` (<= kSegmentMaxClasses)
  uint32_t small_max;    // largest request the pools serve
  uint32_t pool_size;    // bytes per pool
  uint32_t pool_header;  // bytes at the start of each pool before its first block
  uint32_t arena_size;   // bytes per arena
  uint32_t max_arenas;   // capacity of `arenas` (kSegmentMaxArenas)
  char comm[16];         // its command name when it started publishing (/proc/self/comm)
  uint64_t reserved_hdr[6];

  // --- Protocol words: futexes, written by readers and by the publisher. ---
  alignas(64) uint32_t request;  // readers add 1 and FUTEX_WAKE it
  uint32_t published;            // the `request` value the last publication served
  uint64_t publications;         // publications so far
  uint64_t seq;                  // seqlock: odd while the figures below are being written

  // --- Figures: rewritten under the seqlock at each publication. ---
  alignas(64) uint64_t publish_time_ns;  // CLOCK_REALTIME of this publication
  uint64_t small_allocs, small_frees;    // totals over the classes
  uint64_t large_allocs, large_frees;    // blocks over the small threshold (served by glibc)
  uint64_t large_live_bytes;             // usable bytes of the large blocks still live
  uint64_t arenas_mapped;                // arenas taken from the OS since start
  uint64_t arenas_in_use;                // arenas holding pools now (and the empty spare)
  uint64_t arenas_released;              // arenas given back to the OS
  uint64_t reserved_bytes;               // address space reserved for arenas
  uint64_t fallback_arenas;              // arenas mapped outside the reservation
  uint64_t pools_in_use;                 // pools carved for a class now
  uint64_t pools_purged;                 // free pools whose pages were returned to the OS
  uint64_t peak_small_bytes;             // high-water mark of pools_in_use * pool_size
  uint64_t rss_bytes;                    // resident set of the process (/proc/self/statm)
  uint64_t limit_bytes;                  // heap limit (POOLGUARD_LIMIT); 0: none
  uint64_t limit_in_use;                 // bytes charged against it now (docs/LIMITS.md)
  uint64_t limit_peak;                   // most bytes charged at once
  uint64_t limit_refused;                // requests refused at the limit (or allowed, with warn)
  uint64_t guard_events;                 // errors the guard zones reported (docs/GUARD.md)
  uint64_t threads;                      // thread heaps created
  uint64_t double_frees, invalid_frees, corruptions;  // errors detected
  uint64_t arenas_total;   // arenas in use when the map was taken (may exceed max_arenas)
  uint64_t arenas_listed;  // entries of `arenas` filled (<= arenas_backed)
  uint64_t arenas_backed;  // entries of `arenas` whose memory is allocated in /dev/shm
  uint64_t reserved[32];
  SegmentClass classes[kSegmentMaxClasses];
  // Last, so that its tail (never written while arenas_listed is small) costs no memory.
  SegmentArena arenas[kSegmentMaxArenas];
};

static_assert(sizeof(SegmentPool) == 4);
static_assert(sizeof(SegmentArena) == 8 + 4 * kSegmentPoolsPerArena);
static_assert(sizeof(SegmentClass) == 96);
static_assert(offsetof(Segment, request) % 64 == 0 && offsetof(Segment, request) % 4 == 0);
static_assert(offsetof(Segment, classes) % 8 == 0 && offsetof(Segment, arenas) % 8 == 0);

// Bytes of the segment up to and including the first `arenas` entries.
constexpr size_t segment_bytes_for(size_t arenas) {
  return offsetof(Segment, arenas) + arenas * sizeof(SegmentArena);
}

}  // namespace pg::stats
