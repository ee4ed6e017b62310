// Thread heaps: the per-thread state of the pooled allocator and its fast paths.
//
// Each thread gets a Heap on its first small allocation. For every size class the heap has one
// current pool to allocate from (`cur`), a list of its other pools that have free blocks (`avail`)
// and a list of its pools that had none when last looked at (`full`). The fast paths below touch
// only the current pool and the heap: no lock, no atomic read-modify-write.
//
// A block freed by a thread that does not own its pool is kept in that thread's foreign cache
// (Heap::foreign) for its own next allocations; what the cache cannot hold goes back in runs per
// pool onto the pool's `thread_free` stack (one CAS per run). If the owner has
// filed the pool as full (kNotifyOwner in thread_free), the first such pusher instead hands one
// block to the owner heap's `delayed` stack, so the owner learns that the pool has room again
// (mimalloc's delayed free). Either way the blocks still count in Pool::used until their owner
// collects them, so the pool cannot be released under them. docs/DESIGN.md has the whole way.
//
// When a thread exits, its heap is abandoned: empty pools go back to their arenas, the others
// lose their owner and go on a global per-class list, from which any thread adopts them when it
// needs a pool of that class; until then frees into them take the global abandoned-pool lock.
// The Heap struct itself is recycled for the next new thread (heaps are never unmapped, so a
// remote freer holding a stale owner pointer writes only into a valid Heap; the delayed-stack
// handling forwards or drops such stale notifications).
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/compiler.h"
#include "base/counter.h"
#include "base/list.h"
#include "pool/config.h"
#include "pool/pool.h"

namespace pg {

// A list of pools through Pool::next / Pool::prev (base/list.h).
using PoolQueue = List<Pool>;

// A ring of pools through Pool::next / Pool::prev (base/list.h): a heap's pools of one class that
// may have room. `head` is where allocation goes on: the current pool while there is one (which
// stays in the ring), and the ring turns by moving `head` alone, so that switching from an
// exhausted pool to the next touches no other pool's header. New members go just before `head`:
// they come up last.
using PoolRing = Ring<Pool>;

// Two indexes, two kinds of array. A request slot indexes what the fast path reads by request size
// (Heap::cur, the per-slot counters): (n + 15) / 16 for n <= kSmallMax, so that malloc(0) needs no
// special case; slot 0 (malloc(0)) and slot 1 share class 0 (16 bytes); a medium request's slot is
// its class + 1. A class (class_of(n),
// pool/config.h) indexes what is kept per block size (Heap::avail and full, pools, statistics).
// Medium request slots by (n - 1) / 64: every medium class size is a multiple of 64, so one
// entry never spans two classes. A load in place of class_of's bit arithmetic on the fast path.
struct MediumSlots {
  uint8_t slot[(kPoolMax - 1) / 64 + 1];
};
inline constexpr MediumSlots kMediumSlots = [] {
  MediumSlots t{};
  for (size_t i = kSmallMax / 64; i <= (kPoolMax - 1) / 64; ++i) {
    t.slot[i] = static_cast<uint8_t>(class_of(i * 64 + 1) + 1);
  }
  return t;
}();
constexpr size_t request_slot(size_t n) {
  return n <= kSmallMax ? (n + kAlign - 1) / kAlign : kMediumSlots.slot[(n - 1) / 64];
}
static_assert(
    [] {
      for (size_t n = kSmallMax + 1; n <= kPoolMax; ++n) {
        if (request_slot(n) != class_of(n) + 1) return false;
      }
      return true;
    }(),
    "the medium slot table agrees with class_of");
// The class a request slot is served from.
constexpr size_t slot_to_class(size_t slot) {
  return slot == 0 ? 0 : slot - 1;
}
inline constexpr size_t kNumSlots = kNumClasses + 1;

// When a heap sends the blocks of its foreign cache (below) back to their pools, it gathers them
// in runs per pool, so that a run costs one compare-and-swap on the pool's remote-free list instead
// of one per block (the remote batching of jemalloc's and snmalloc's caches): up to kRemoteChains
// runs at a time (a block goes to the run of its pool's header address, modulo this), of up to
// kRemoteBatch blocks each; every run is pushed before the send-back ends (heap.cpp, SendBack).
inline constexpr size_t kRemoteChains = 4;
inline constexpr uint32_t kRemoteBatch = 32;

struct alignas(64) Heap {
  constexpr Heap() = default;
  // A sentinel heap whose every slot points at the empty pool (constant-initialised).
  constexpr explicit Heap(Pool* empty) {
    for (Pool*& c : cur) c = empty;
  }
  // Allocations left before the next sampling event: the fast path counts it down and gives up at
  // zero, and the slow path (heap_sample_fire) says which sampler's turn it is. Two samplers share
  // it: the guard's (POOLGUARD_GUARD_SAMPLE, 1 in N allocations) and the profile's
  // (POOLGUARD_PROFILE, see track/tracker.h); each keeps its own countdown below, and sample_left
  // runs to the nearer one. INT64_MAX when sampling is off (it never gets to zero), and always in
  // the sentinel heaps, which are never written (the fast path leaves before the countdown on
  // their empty pools).
  int64_t sample_left = INT64_MAX;
  int64_t sample_set = INT64_MAX;  // the value sample_left started from
  int64_t guard_left = INT64_MAX;  // allocations to the next guarded one, as of sample_set
  int64_t prof_left = INT64_MAX;   // allocations to the next profile event, as of sample_set
  // Pool to allocate from, by slot (cur[0] == cur[1]); &g_empty_pool when there is none. The
  // current pool carries one extra count in Pool::used, so a free never sees it drop to zero.
  Pool* cur[kNumSlots] = {};
  PoolRing avail[kNumClasses];  // pools that may have room, the current one included
  PoolQueue full[kNumClasses];  // pools that had none when last looked at (kFullBias set)
  // Blocks other threads freed into pools this heap had filed as full (a stack linked through
  // FreeBlock::link, plain pointers). The owner frees them locally, which refiles their pools.
  std::atomic<FreeBlock*> delayed{nullptr};
  uint64_t rng = 0;      // xorshift state for pool keys
  pthread_t thread = 0;  // owning thread while active
  bool active = false;
  // Nonzero while the owner changes its pool lists (slow paths, abandon; HeapBusy in heap.cpp).
  // A fork child must not take over a heap caught in the middle of that: the other threads are
  // gone and their heaps are abandoned in the child, but only the ones whose lists are whole.
  uint32_t busy = 0;
  Heap* next_free = nullptr;  // recycled heaps
  // Blocks of other heaps' pools that this thread freed, kept for its own next allocations of
  // their class (the thread caches of tcmalloc and jemalloc): a block just freed is in this
  // thread's cache, and handing it out again here costs no atomic operation and no cache miss,
  // where sending it back to its owner costs both. Linked through FreeBlock::link (plain
  // pointers) and tagged free; still counted in their pools' `used`. At most
  // foreign_cap(class) per class; when full, or when the thread exits, they go back to their
  // pools in runs per pool.
  FreeBlock* foreign[kNumClasses] = {};
  uint8_t foreign_count[kNumClasses] = {};
  // One empty pool per medium class, kept instead of released when its last block comes back (on
  // no list; still owned, its blocks all free): the medium classes' pools hold few blocks, so a
  // program that frees and allocates them at random empties and refills pools all the time, and
  // each round trip through the arenas cost a lock, and often a purge and the page faults after
  // it. At most kSpareBytes of pools per heap; malloc_trim and the thread's exit release them.
  Pool* spare[kNumClasses] = {};
  size_t spare_bytes = 0;
};
inline constexpr size_t kSpareBytes = size_t{1} << 20;
// How many blocks of class cls a heap keeps in Heap::foreign: 64 KiB worth, 8 to 64 blocks.
constexpr uint32_t foreign_cap(size_t cls) {
  size_t n = (size_t{64} << 10) / class_size(cls);
  return static_cast<uint32_t>(n < 8 ? 8 : n > 64 ? 64 : n);
}

// The statistics a heap's fast paths keep, kHeapCountersOffset bytes after the heap, in the memory
// shared with readers (pool/shared.h; base/segment.h has the layout readers see: u64 allocs,
// requested, frees, in this order). Only the heap's owner thread writes them; they are kept when
// the heap is recycled for another thread, so that summed over every heap slot they are totals.
// The sentinel heaps below have none: the fast paths never count on them.
struct HeapCounters {
  Counter allocs[kNumSlots];     // blocks handed out by this heap, by slot
  Counter requested[kNumSlots];  // bytes asked for by those allocations (internal fragmentation)
  Counter frees[kNumClasses];    // blocks returned to this heap's pools, by class
};
static_assert(sizeof(Heap) <= kHeapStride && sizeof(HeapCounters) <= kHeapStride,
              "a heap and its counters fit their slots of the heap table");
inline HeapCounters* heap_counters(Heap* h) {
  return reinterpret_cast<HeapCounters*>(reinterpret_cast<uintptr_t>(h) + kHeapCountersOffset);
}

// The empty pool: its free list is always empty, so the fast path falls to the slow path.
extern Pool g_empty_pool;
// The heap of a thread that has not allocated yet (all `cur` = &g_empty_pool).
extern Heap g_empty_heap;
// The heap of a thread whose heap was torn down at exit: its allocations go to glibc.
extern Heap g_dead_heap;

extern __thread Heap* t_heap __attribute__((tls_model("initial-exec")));

// Slow paths; each is reached by a tail call from the fast paths below.
void* heap_alloc_slow(size_t slot, size_t size);      // nullptr: the pools cannot serve it now
void heap_free_slow(Heap* h, Pool* pool);             // pool became empty, or was filed as full
void heap_free_remote(Pool* pool, void* p);           // another thread's pool
void heap_free_bad(void* p);                          // not a block start: report
void heap_free_tagged(Heap* h, Pool* pool, void* p);  // tag matched: double free, or not

// Counts an allocation of `size` bytes of slot `slot` in h's counters (HeapCounters): two adds
// on x86-64, addressed from h and slot directly. Written out because the compiler, given the two
// counters as memory operands, first computes their common address into registers (two more
// instructions on the fast path). The memory clobber stands for the two counters, which only
// their owner writes and others read with relaxed loads.
PG_ALWAYS_INLINE void heap_count_alloc(Heap* h, size_t slot, size_t size) {
#if defined(__x86_64__)
  asm volatile(
      "addq $1, %c[allocs](%[h],%[slot],8)\n\t"
      "addq %[size], %c[requested](%[h],%[slot],8)"
      :
      : [h] "r"(h), [slot] "r"(slot), [size] "r"(size),
        [allocs] "i"(kHeapCountersOffset + offsetof(HeapCounters, allocs)),
        [requested] "i"(kHeapCountersOffset + offsetof(HeapCounters, requested))
      : "memory");
#else
  HeapCounters* c = heap_counters(h);
  c->allocs[slot].inc();
  c->requested[slot].add_fast(size);
#endif
}

// Takes block b, the head of the free list of h's current pool of `slot`; nullptr when its next
// link does not decode (the slow path reports it).
PG_ALWAYS_INLINE void* heap_take(Heap* h, Pool* pool, void* b, size_t slot, size_t size) {
  FreeBlock* fb = static_cast<FreeBlock*>(b);
  void* next;
  if (PG_UNLIKELY(!pool->decode(fb->link, &next))) return nullptr;  // the slow path reports it
  pool->free = next;
  fb->tag = 0;
  ++pool->used;
  heap_count_alloc(h, slot, size);
  return b;
}

// Counts one allocation against h's sampling countdown: true when it has run out. Two
// instructions on x86-64 (a subtract from memory and a branch; the compiler would load, subtract,
// store and test).
inline bool heap_sample_expired(Heap* h) {
#if defined(__x86_64__)
  asm goto("subq $1, %0\n\tjle %l[expired]" : "+m"(h->sample_left) : : "cc" : expired);
  return false;
expired:
  return true;
#else
  return --h->sample_left <= 0;
#endif
}

// Counts a block back into its pool (--used); true when that needs the slow path: zero, the pool's
// last block came back, or negative, the pool is filed as full (kFullBias, pool/pool.h). Two
// instructions on x86-64 (the compiler would load, subtract, store and test).
inline bool pool_count_free(Pool* pool) {
#if defined(__x86_64__)
  asm goto("subl $1, %0\n\tjle %l[slow]" : "+m"(pool->used) : : "cc" : slow);
  return false;
slow:
  return true;
#else
  return static_cast<int32_t>(--pool->used) <= 0;
#endif
}

// Takes a block of slot `slot` from the current pool; nullptr when that needs the slow path
// (no current pool, its free list is empty, its next link does not decode, or this allocation is
// the one to sample). No calls, so the caller can tail-call its own slow path with its arguments
// still in registers. `size` is the request, counted for statistics only.
PG_ALWAYS_INLINE void* heap_try_alloc(size_t slot, size_t size) {
  Heap* h = t_heap;
  Pool* pool = h->cur[slot];
  void* b = pool->free;
  if (PG_UNLIKELY(pool->is_end(b))) return nullptr;
  if (PG_UNLIKELY(heap_sample_expired(h))) return nullptr;
  return heap_take(h, pool, b, slot, size);
}

// Frees p, a block start of `pool`, which h (the caller's heap) owns.
PG_ALWAYS_INLINE void heap_free_owned(Heap* h, Pool* pool, void* p) {
  FreeBlock* fb = static_cast<FreeBlock*>(p);
  const uintptr_t tag = pool->tag;  // once: the compiler must assume the stores below may alias it
  if (PG_UNLIKELY(fb->tag == tag)) return heap_free_tagged(h, pool, p);
  void* old = pool->free;
  fb->link = pool->encode(old);
  fb->tag = tag;
  pool->free = p;
  heap_counters(h)->frees[pool->cls].inc();
  if (PG_UNLIKELY(pool_count_free(pool))) return heap_free_slow(h, pool);
}

// Frees p, which lies in poolguard's arenas (arena_owns(p) is true).
//
// Validity of p costs two compares. `carved_end` covers the blocks carved so far, and is zero in
// any pool not in use (cleared on release, zero in pages never touched or decommitted), so `off >=
// carved_end` rejects never-handed-out slots and unused pools without a magic check. Block starts
// are the offsets that are multiples of block_size: with recip = ceil(2^32 / size), the low 32 bits
// of off * recip are below recip exactly for those (the rounding error, below off < 2^14 in a
// pool's first unit, stays under recip, which is at least 2^17 for every class up to kPoolMax =
// 2^15; size_classes_test checks every offset of every class).
//
// A block that starts past the first unit of a span (pool/pool.h) finds a tail header, whose zero
// carved_end sends it to heap_free_bad, which checks it against the pool's own header and comes
// back to heap_free_block.
PG_ALWAYS_INLINE void heap_free(void* p) {
  Pool* pool = pool_of(p);
  uintptr_t off = pool_offset(pool, p);
  uint32_t frac = static_cast<uint32_t>(off * pool->recip);
  if (PG_UNLIKELY(off >= pool->carved_end_offset() || frac >= pool->recip)) return heap_free_bad(p);
  Heap* h = t_heap;
  if (PG_UNLIKELY(pool->owner.load(std::memory_order_relaxed) != h)) {
    return heap_free_remote(pool, p);
  }
  return heap_free_owned(h, pool, p);
}

// Frees p, a block start of `pool` (checked): heap_free after its checks.
inline void heap_free_block(Pool* pool, void* p) {
  Heap* h = t_heap;
  if (pool->owner.load(std::memory_order_relaxed) != h) return heap_free_remote(pool, p);
  heap_free_owned(h, pool, p);
}

// heap_is_block for a block past the first unit of a span.
bool heap_is_span_block(const void* p);
// True if p is the start of a block of a pool in use (live or free): the checks free() makes.
inline bool heap_is_block(const void* p) {
  Pool* pool = pool_of(p);
  uintptr_t off = pool_offset(pool, p);
  if (off < pool->carved_end_offset() && static_cast<uint32_t>(off * pool->recip) < pool->recip) {
    return true;
  }
  return PG_UNLIKELY(pool->magic == kTailMagic) && heap_is_span_block(p);
}

// Usable size of a block in the pools (a tail header holds its pool's block size too).
inline size_t heap_block_size(const void* p) {
  return pool_of(p)->block_size;
}

// Sampling and guarded modes (set once from initialisation, before any heap is attached):
// `attach` false means no thread heap is ever attached, so heap_alloc_slow returns nullptr and
// every small request goes to the caller's other paths (POOLGUARD_GUARD=redzone|page,
// POOLGUARD_LEAKS); `guard_interval` and `profile_interval` give the length of each sampler's
// countdowns from a random number (nullptr: that sampler is off).
void heaps_configure(bool attach, int64_t (*guard_interval)(uint64_t random),
                     int64_t (*profile_interval)(uint64_t random));
// True when h is a thread's own heap (not one of the sentinels).
inline bool heap_is_real(const Heap* h) {
  return h->active;
}
// Events of heap_sample_fire.
inline constexpr unsigned kSampleGuard = 1;    // this allocation is the guard's sample
inline constexpr unsigned kSampleProfile = 2;  // this allocation is a profile event
// Called when h->sample_left has run out: advances both samplers by the allocations counted,
// says whose turn it is (kSample* bits, possibly both), and starts the next countdown. Owner
// thread only, h real.
unsigned heap_sample_fire(Heap* h);
// A random number from h's generator. Owner thread only.
uint64_t heap_random(Heap* h);

// Per-class figures summed over every heap, for snapshots.
void heap_class_counters(uint64_t* allocs, uint64_t* frees, uint64_t* pools, uint64_t* requested);
void heap_registry_counters(uint64_t* created, uint64_t* abandoned);

// Sets up thread-exit handling. Called once from global init.
void heaps_init();
// From now on threads get heaps (heap_alloc_slow returns nullptr before): initialisation calls it
// last, once every other part is set up.
void heaps_open();
// Collects the caller's remote frees and releases its empty pools and the abandoned ones.
void heap_collect_current();
// Abandons the caller's heap now (as at thread exit); its next allocation attaches a new heap.
void heap_detach_current();

void heaps_lock_for_fork();
void heaps_unlock_after_fork_parent();
void heaps_after_fork_child();

}  // namespace pg
