// Thread heaps: the per-thread state of the pooled allocator and its fast paths.
//
// Each thread gets a Heap on its first small allocation. For every size class the heap has one
// current pool to allocate from (`cur`), a list of its other pools that have free blocks (`avail`)
// and a list of its pools that had none when last looked at (`full`). The fast paths below touch
// only the current pool and the heap: no lock, no atomic read-modify-write.
//
// A block freed by a thread that does not own its pool goes on the pool's `thread_free` stack
// (one CAS). If the owner has filed the pool as full (kNotifyOwner in thread_free), the first such
// freer instead pushes its block on the owner heap's `delayed` stack, so the owner learns that the
// pool has room again (mimalloc's delayed free). Either way the freeing thread touches the pool
// only while its block is still counted in Pool::used, so the pool cannot be released under it.
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

#include "pool/config.h"
#include "pool/pool.h"

#define PG_LIKELY(x) __builtin_expect(!!(x), 1)
#define PG_UNLIKELY(x) __builtin_expect(!!(x), 0)

namespace pg {

// A doubly linked list of pools through Pool::next / Pool::prev.
struct PoolQueue {
  Pool* head = nullptr;
  Pool* tail = nullptr;
  uint32_t count = 0;
};

// A statistics counter written by one thread and read by others: a relaxed load and store, not a
// locked add, so the fast path pays no atomic read-modify-write.
struct Counter {
  std::atomic<uint64_t> v{0};
  void add(uint64_t n) {
    v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t get() const { return v.load(std::memory_order_relaxed); }
};

struct alignas(64) Heap {
  constexpr Heap() = default;
  // A sentinel heap whose every class points at the empty pool (constant-initialised).
  constexpr explicit Heap(Pool* empty) {
    for (Pool*& c : cur) c = empty;
  }
  Pool* cur[kNumClasses] = {};  // pool to allocate from; &g_empty_pool when there is none
  Counter allocs[kNumClasses];  // blocks handed out by this heap (kept across recycling)
  Counter frees[kNumClasses];   // blocks returned to this heap's pools
  PoolQueue avail[kNumClasses];
  PoolQueue full[kNumClasses];
  // Blocks other threads freed into pools this heap had filed as full (a stack linked through
  // FreeBlock::link, plain pointers). The owner frees them locally, which refiles their pools.
  std::atomic<FreeBlock*> delayed{nullptr};
  uint64_t rng = 0;      // xorshift state for pool keys
  pthread_t thread = 0;  // owning thread while active
  bool active = false;
  Heap* next_all = nullptr;   // registry of every heap ever made
  Heap* next_free = nullptr;  // recycled heaps
};

// The empty pool: its free list is always empty, so the fast path falls to the slow path.
extern Pool g_empty_pool;
// The heap of a thread that has not allocated yet (all `cur` = &g_empty_pool).
extern Heap g_empty_heap;
// The heap of a thread whose heap was torn down at exit: its allocations go to glibc.
extern Heap g_dead_heap;

extern __thread Heap* t_heap __attribute__((tls_model("initial-exec")));

void* heap_alloc_slow(Heap* h, size_t cls);
void* heap_alloc_corrupt(Heap* h, Pool* pool);
void heap_free_slow(Heap* h, Pool* pool, void* old_free);
void heap_free_remote(Pool* pool, void* p);
void heap_free_bad(void* p);                 // not a block start: report
bool heap_free_tagged(Pool* pool, void* p);  // tag matched: true if it really was free

// Allocates a block of class `cls`. nullptr when the pools cannot serve it now (before
// initialisation, on a thread being torn down, or when the OS refuses memory): the caller then
// uses the large path.
inline void* heap_alloc(size_t cls) {
  Heap* h = t_heap;
  Pool* pool = h->cur[cls];
  void* b = pool->free;
  if (PG_UNLIKELY(b == pool)) return heap_alloc_slow(h, cls);
  FreeBlock* fb = static_cast<FreeBlock*>(b);
  void* next;
  if (PG_UNLIKELY(!pool->decode(fb->link, &next))) return heap_alloc_corrupt(h, pool);
  pool->free = next;
  fb->tag = 0;
  ++pool->used;
  h->allocs[cls].add(1);
  return b;
}

// Frees p, which lies in poolguard's arenas (arena_owns(p) is true).
inline void heap_free(void* p) {
  Pool* pool = pool_of(p);
  if (PG_UNLIKELY(pool->magic != kPoolMagic)) return heap_free_bad(p);
  uintptr_t off = static_cast<uintptr_t>(static_cast<char*>(p) - pool->first_block());
  uint64_t idx = (off * pool->recip) >> 32;
  if (PG_UNLIKELY(off >= pool->span || idx * pool->block_size != off)) return heap_free_bad(p);
  Heap* h = t_heap;
  if (PG_UNLIKELY(pool->owner.load(std::memory_order_relaxed) != h)) {
    return heap_free_remote(pool, p);
  }
  FreeBlock* fb = static_cast<FreeBlock*>(p);
  if (PG_UNLIKELY(fb->tag == pool->tag) && heap_free_tagged(pool, p)) return;
  void* old = pool->free;
  fb->link = pool->encode(old);
  fb->tag = pool->tag;
  pool->free = p;
  h->frees[pool->cls].add(1);
  if (PG_UNLIKELY(--pool->used == 0 || old == pool)) {
    heap_free_slow(h, pool, old);
  }
}

// Usable size of a block in the pools.
inline size_t heap_block_size(const void* p) {
  return pool_of(p)->block_size;
}

// Per-class figures summed over every heap, for snapshots.
void heap_class_counters(uint64_t* allocs, uint64_t* frees, uint64_t* pools);
void heap_registry_counters(uint64_t* created, uint64_t* abandoned);

// Sets up thread-exit handling and fork handlers. Called once from global init.
void heaps_init();
// Collects the caller's remote frees and releases its empty pools and the abandoned ones.
void heap_collect_current();
// Abandons the caller's heap now (as at thread exit); its next allocation attaches a new heap.
void heap_detach_current();

void heaps_lock_for_fork();
void heaps_unlock_after_fork_parent();
void heaps_after_fork_child();

}  // namespace pg
