// The allocator's state for the exit summary, the stats segment and tests (snapshots and views;
// taking one takes the global lock for a moment, never from a fast path), and the few calls that
// act on it: the error mode, collecting the calling thread's frees, detaching its heap.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/report.h"
#include "pool/config.h"

namespace pg {

// Per size class figures. Counters are summed over every thread heap, live or gone.
struct ClassSnapshot {
  uint32_t block_size;       // bytes per block (16, 32, ... kPoolMax)
  uint64_t allocs;           // blocks handed out
  uint64_t requested_bytes;  // bytes asked for by those allocations (all time): block size minus
                             // the mean request is the internal fragmentation
  uint64_t frees;            // blocks given back (local and cross-thread)
  uint64_t live_blocks;      // allocs - frees
  uint64_t pools;            // pools of this class currently carved from arenas
  uint64_t free_blocks;      // blocks not in use inside those pools (capacity - live)
};

struct Snapshot {
  ClassSnapshot classes[kNumClasses];
  uint64_t small_allocs, small_frees;
  uint64_t large_allocs, large_frees, large_live_bytes;
  uint64_t arenas_mapped;     // arenas taken from the OS since start (a re-used slot counts again)
  uint64_t arenas_released;   // arenas given back to the OS (madvise or munmap)
  uint64_t arenas_in_use;     // arenas holding at least one pool, or kept as the empty spare
  uint64_t pools_in_use;      // pool units (kPoolSize each) carved out for a size class now
  uint64_t pools_purged;      // free pools whose pages were returned with madvise
  uint64_t peak_small_bytes;  // high-water mark of pools_in_use * kPoolSize (units in use)
  uint64_t reserved_bytes;   // address space reserved up front (0 when the reservation was refused)
  uint64_t fallback_arenas;  // arenas mapped one by one outside the reservation
  uint64_t heaps_created, heaps_abandoned;
  uint64_t double_frees, invalid_frees, corruptions;  // errors detected
};

// Fills *out. Safe to call at any time from any thread.
void take_snapshot(Snapshot* out);

// Occupancy of one pool, for maps of the heap ("which pools are full, partly used, free").
enum class PoolState : uint8_t {
  kFreeClean = 0,  // free, pages returned to the OS (or never touched)
  kFreeDirty = 1,  // free, pages possibly resident
  kInUse = 2,      // carved for a size class (a pool, or a unit of a pool's span)
  kHeaders = 3,    // the arena's first pool: the headers of the others (pool/pool.h)
};
struct PoolView {
  PoolState state;
  uint8_t cls;        // size class index when in use
  uint16_t used;      // blocks out of the owner's hands (approximate: read without a lock)
  uint16_t capacity;  // blocks the pool holds
};
struct ArenaView {
  uint64_t base;  // address of the arena
  PoolView pools[kArenaSize / kPoolSize];
};
// Fills up to `max` views of the arenas in use (in address order of creation); returns how many
// arenas are in use, which may exceed `max`.
size_t arena_views(ArenaView* out, size_t max);

// What to do when a bad free or a corrupted free list is detected.
// (ErrorMode and error_mode() are base/report.h's.) Initialises the core first, so that
// initialisation, which applies POOLGUARD_ON_ERROR, cannot undo this.
void set_error_mode(ErrorMode mode);

// Collects the calling thread's cross-thread frees, returns its empty pools to their arenas and
// purges free pools (madvise). Tests use it to check that memory really goes back.
void thread_collect();

// Tears down the calling thread's heap now, as its exit would. Later allocations on this thread
// build a new heap. Tests use it to simulate thread exit deterministically.
void thread_detach();

}  // namespace pg
