// The thread heaps of pool/heap.h: the slow paths, pool lists, cross-thread frees, abandoned
// pools, thread exit and fork.
#include "pool/heap.h"

#include <pthread.h>

#include <new>

#include "base/lock.h"
#include "base/meta.h"
#include "base/os.h"
#include "base/random.h"
#include "base/report.h"
#include "pool/arena.h"
#include "pool/limit.h"
#include "pool/shared.h"
#if defined(POOLGUARD_FAULT_INJECTION)
#include "base/fault.h"
#endif

namespace pg {

// The sentinel pool: `free` and `data` are both null, which means "empty", so heap_try_alloc()
// always falls through to the slow path for it. Its magic is 0: it is never a real pool. Both
// sentinels are constant-initialised: malloc may run before any constructor.
constinit Pool g_empty_pool{};
constinit Heap g_empty_heap{&g_empty_pool};
constinit Heap g_dead_heap{&g_empty_pool};
__thread Heap* t_heap __attribute__((tls_model("initial-exec"))) = &g_empty_heap;

namespace {

void push_remote_chain(Pool* pool, FreeBlock* head, FreeBlock* tail, uint32_t count);
void flush_foreign(Heap* h, size_t cls);
void flush_all_foreign(Heap* h);

// Set while this thread is inside heap setup, so that a re-entrant malloc (from pthread
// functions) goes to glibc instead of recursing.
__thread bool t_in_setup __attribute__((tls_model("initial-exec"))) = false;

// The heap table (pool/shared.h): slots [0, g_heap_slots) have been used, in order; recycled heaps
// wait on g_heaps_free. Under g_heap_lock, as are the registry counts in the shared globals.
SpinLock g_heap_lock;
size_t g_heap_slots = 0;
Heap* g_heaps_free = nullptr;
pthread_key_t g_key;

// Abandoned pools, per class, and the frees done into them. Guarded by g_abandon_lock.
SpinLock g_abandon_lock;
PoolQueue g_abandoned[kNumClasses];
std::atomic<uint32_t> g_abandoned_count[kNumClasses];  // mirrors g_abandoned[c].count
size_t g_sweep_cursor = 0;

// heaps_configure(): whether threads get heaps at all, and the samplers' interval sources.
bool g_attach = true;
std::atomic<bool> g_open{false};  // heaps_open()
int64_t (*g_guard_interval)(uint64_t) = nullptr;
int64_t (*g_profile_interval)(uint64_t) = nullptr;

// Files pool in h's ring of its class (kListAvail), as the last to come up.
void file_avail(Heap* h, Pool* pool) {
  pool->list = kListAvail;
  h->avail[pool->cls].insert(pool);
}

// Takes pool off h's full list, and its kFullBias off `used`; the caller files it elsewhere.
void unfile_full(Heap* h, Pool* pool) {
  h->full[pool->cls].remove(pool);
  pool->used &= ~kFullBias;
}

// The abandoned lists, under g_abandon_lock, with their counts mirrored for lock-free peeks.
void abandoned_push(size_t cls, Pool* p) {
  g_abandoned[cls].push_back(p);
  g_abandoned_count[cls].store(g_abandoned[cls].count, std::memory_order_relaxed);
}

void abandoned_remove(size_t cls, Pool* p) {
  g_abandoned[cls].remove(p);
  g_abandoned_count[cls].store(g_abandoned[cls].count, std::memory_order_relaxed);
}

// Marks h busy (Heap::busy) for its lifetime; nests. The mark is stored before any list update
// and cleared after the last one, in program order for another CPU too (release), so that a fork
// that snapshots the memory while this thread is anywhere inside sees the mark.
class HeapBusy {
 public:
  explicit HeapBusy(Heap* h) : h_(h) {
    __atomic_store_n(&h->busy, h->busy + 1, __ATOMIC_RELAXED);
#if defined(__x86_64__)
    asm volatile("" ::: "memory");  // x86 keeps stores in order: only the compiler might not
#else
    __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
  }
  ~HeapBusy() {
    __atomic_store_n(&h_->busy, h_->busy - 1, __ATOMIC_RELEASE);
  }
  HeapBusy(const HeapBusy&) = delete;
  HeapBusy& operator=(const HeapBusy&) = delete;

 private:
  Heap* h_;
};

uint64_t next_random(Heap* h) {
  uint64_t x = h->rng;
  xorshift64(x);
  h->rng = x;
  return x;
}

// Walks a list that starts at `head` (links encoded with the pool's key, ending at the pool),
// counting blocks. Returns false if a link is corrupt; *last gets the last block.
bool walk_list(Pool* pool, void* head, uint32_t* count, void** last) {
  uint32_t n = 0;
  void* b = head;
  void* prev = nullptr;
  while (!pool->is_end(b)) {
    ++n;
    if (n > pool->capacity) return false;  // a cycle
    void* next;
    if (!pool->decode(reinterpret_cast<FreeBlock*>(b)->link, &next)) return false;
    prev = b;
    b = next;
  }
  *count = n;
  if (last) *last = prev;
  return true;
}

// Moves the pool's remote frees onto its (empty or not) local list. Owner only (or under the
// abandoned lock for an abandoned pool). Returns the number of blocks moved.
// A list that holds only the kNotifyOwner bit is left alone: the pool stays filed as full.
uint32_t collect_remote(Pool* pool) {
  // The count first: every block it covers was pushed before it was added, so is on the list
  // taken below (or on one taken earlier).
  uint32_t n = 0;
  if (pool->remote_count.load(std::memory_order_relaxed) != 0) {
    n = pool->remote_count.exchange(0, std::memory_order_acquire);
  }
  void* head = nullptr;
  if ((pool->thread_free.load(std::memory_order_relaxed) & ~kNotifyOwner) != 0) {
    uintptr_t tf = pool->thread_free.exchange(0, std::memory_order_acquire);
    head = reinterpret_cast<void*>(tf & ~kNotifyOwner);
  }
  if (head != nullptr) {
    if (pool->local_empty()) {
      // The list ends at the pool, as an empty local list does: it becomes the local list whole,
      // unwalked (its links are checked as they are used, like any free list's).
      pool->free = head;
    } else {
      uint32_t walked = 0;
      void* last = nullptr;
      if (!walk_list(pool, head, &walked, &last)) {
        report_corruption(head, pool->block_size, "a corrupt link in a cross-thread free list");
        // Report mode: drop the damaged list. Its blocks are lost (leaked), the heap stays sound;
        // their count must not be taken either, or `used` would drop below the live blocks.
        pool->remote_count.fetch_add(n, std::memory_order_relaxed);
        return 0;
      }
      reinterpret_cast<FreeBlock*>(last)->link = pool->encode(pool->free);
      pool->free = head;
    }
  }
  pool->used -= n;
  return n;
}

// Links the next run of never-used blocks into the (empty) local free list: the blocks that start
// within the next 4 KiB, so memory is touched a page at a time, as it is needed.
bool carve(Pool* pool) {
  if (pool->carved >= pool->capacity) return false;
  uint32_t bs = pool->block_size;
  uint32_t start = pool->carved;
  uint32_t n = 4096 / bs;
  if (n == 0) n = 1;
  if (n > pool->capacity - start) n = pool->capacity - start;
  char* first = pool->first_block() + size_t{start} * bs;
  char* b = first;
  for (uint32_t i = 0; i + 1 < n; ++i, b += bs) {
    FreeBlock* fb = reinterpret_cast<FreeBlock*>(b);
    fb->link = pool->encode(b + bs);
    fb->tag = pool->tag;
  }
  FreeBlock* fb = reinterpret_cast<FreeBlock*>(b);
  fb->link = pool->encode(pool->free);
  fb->tag = pool->tag;
  pool->free = first;
  pool->carved = static_cast<uint16_t>(start + n);
  pool->carved_end.store(pool->carved * bs, std::memory_order_relaxed);
  return true;
}

// Makes sure the pool has a local free block. Owner only.
bool refill(Heap* h, Pool* pool) {
  if (!pool->local_empty()) return true;
  uint32_t n = collect_remote(pool);
  if (n) heap_counters(h)->frees[pool->cls].add(n);
  if (!pool->local_empty()) return true;
  return carve(pool);
}

void pool_init(Pool* pool, Heap* h, size_t cls) {
  uint32_t bs = static_cast<uint32_t>(class_size(cls));
  pool->key = next_random(h);
  pool->tag = next_random(h) | 1;
  pool->owner.store(h, std::memory_order_relaxed);
  pool->used = 0;
  pool->block_size = bs;
  size_t units = class_units(cls);
  pool->recip = static_cast<uint32_t>(((uint64_t{1} << 32) + bs - 1) / bs);
  pool->lead = class_lead(cls);
  pool->capacity = static_cast<uint16_t>((units * kPoolSize - pool->lead) / bs);
  pool->link_mask = ~(uintptr_t{units * kPoolSize} - 1) | (kAlign - 1);
  // The headers of the span's other units (side by side after this one) lead back here; only
  // their block size is read besides (usable size), their carved_end stays zero.
  for (size_t k = 1; k < units; ++k) {
    Pool* tail = pool + k;
    tail->data = pool->data;
    tail->arena = pool->arena;
    tail->block_size = bs;
    tail->cls = static_cast<uint8_t>(cls);
    __atomic_store_n(&tail->magic, kTailMagic, __ATOMIC_RELEASE);
  }
  pool->carved_end.store(0, std::memory_order_relaxed);  // nothing carved yet
  pool->carved = 0;
  pool->cls = static_cast<uint8_t>(cls);
  pool->list = kListNone;
  pool->free = pool->data;
  pool->thread_free.store(0, std::memory_order_relaxed);
  pool->remote_count.store(0, std::memory_order_relaxed);
  pool->next = pool->prev = nullptr;
  // Publish last: a pool is recognised by its magic.
  __atomic_store_n(&pool->magic, kPoolMagic, __ATOMIC_RELEASE);
  shared_add(shared_globals().class_pools[cls], 1);
}

void pool_release(Pool* pool) {
  shared_sub(shared_globals().class_pools[pool->cls], 1);
  pool->carved_end.store(0,
                         std::memory_order_relaxed);  // free() into it now fails its bounds check
  __atomic_store_n(&pool->magic, 0u, __ATOMIC_RELEASE);
  pool->owner.store(nullptr, std::memory_order_relaxed);
  size_t units = pool->units;
  for (size_t k = 1; k < units; ++k) __atomic_store_n(&pool[k].magic, 0u, __ATOMIC_RELEASE);
  arena_give_pool(pool);
  limit_release(units * kPoolSize);
}

// Makes `pool`, a member of h's ring of its class, the current pool of its class and the ring's
// head. The current pool holds one extra count in `used`, so that freeing its last live block does
// not take the slow path on every malloc/free pair.
void set_current(Heap* h, Pool* pool) {
  pool->list = kListCurrent;
  ++pool->used;
  h->cur[pool->cls + 1] = pool;
  if (pool->cls == 0) h->cur[0] = pool;
  h->avail[pool->cls].head = pool;
}

// Stops `pool` being current (drops the extra count); it stays in the ring, as kListAvail.
void unset_current(Heap* h, Pool* pool) {
  --pool->used;
#if defined(POOLGUARD_FAULT_INJECTION)
  fault::reached(fault::Point::kUnsetCurrent);
#endif
  pool->list = kListAvail;
  h->cur[pool->cls + 1] = &g_empty_pool;
  if (pool->cls == 0) h->cur[0] = &g_empty_pool;
}

// Takes the pool off whichever of h's lists it is on (cur, avail, full).
void unlink_owned(Heap* h, Pool* pool) {
  switch (pool->list) {
    case kListCurrent:
      unset_current(h, pool);
      h->avail[pool->cls].remove(pool);
      break;
    case kListAvail:
      h->avail[pool->cls].remove(pool);
      break;
    case kListFull:
      unfile_full(h, pool);
      break;
    default:
      break;
  }
  pool->list = kListNone;
}

// Files an exhausted pool as full, setting kNotifyOwner so that the next remote free tells us.
// If remote frees are already waiting, the pool is not full after all: it goes on `avail`.
void make_full(Heap* h, Pool* pool) {
  uintptr_t tf = pool->thread_free.load(std::memory_order_relaxed);
  while ((tf & ~kNotifyOwner) == 0) {
    if (tf == kNotifyOwner ||
        pool->thread_free.compare_exchange_weak(tf, kNotifyOwner, std::memory_order_acq_rel,
                                                std::memory_order_relaxed)) {
      pool->list = kListFull;
      pool->used |= kFullBias;  // the next local free takes the slow path (pool/pool.h)
      h->full[pool->cls].push_back(pool);
      return;
    }
  }
  file_avail(h, pool);
}

void move_to_avail(Heap* h, Pool* pool) {
  unfile_full(h, pool);
  file_avail(h, pool);
}

// Frees the blocks other threads handed to this heap's delayed stack. A block whose pool we own is
// freed locally, which moves its pool from `full` to `avail`; any other block (its pool changed
// hands since) is freed as the freeing thread would have.
void process_delayed(Heap* h) {
  if (h->delayed.load(std::memory_order_relaxed) == nullptr) return;
  FreeBlock* b = h->delayed.exchange(nullptr, std::memory_order_acquire);
  while (b != nullptr) {
    FreeBlock* next = reinterpret_cast<FreeBlock*>(b->link);
    Pool* pool = pool_at(b);
    if (pool->owner.load(std::memory_order_acquire) == h) {
      b->tag = 0;  // it was marked free in transit; now free it for real
      Heap* saved = t_heap;
      t_heap = h;  // heap_free decides local vs remote by t_heap
      heap_free_owned(h, pool, b);
      t_heap = saved;
    } else {
      // Its pool changed hands since (abandoned, or adopted): on to its pool as it is, tagged.
      push_remote_chain(pool, b, b, 1);
    }
    b = next;
  }
}

// A pusher that read a pool's owner just before the owner's thread exited may hand a block to
// that heap's delayed stack after the heap's last look at it: the heap then sits on the free list
// with the block until a new thread takes it. Here (malloc_trim, and whatever collects) such
// blocks go on to their pools. Under g_heap_lock: a heap on the free list cannot be taken
// meanwhile, and owns no pool, so its blocks are all pushed on.
void sweep_retired_heaps() {
  LockGuard guard(g_heap_lock);
  for (Heap* h = g_heaps_free; h != nullptr; h = h->next_free) process_delayed(h);
}

Pool* adopt(Heap* h, size_t cls) {
  // A lock-free peek first: most allocations that need a pool find no abandoned one.
  if (g_abandoned_count[cls].load(std::memory_order_relaxed) == 0) return nullptr;
  LockGuard guard(g_abandon_lock);
  Pool* pool = g_abandoned[cls].head;
  if (pool == nullptr) return nullptr;
  abandoned_remove(cls, pool);
  pool->list = kListNone;
  pool->owner.store(h, std::memory_order_release);
  return pool;
}

Pool* fresh_pool(Heap* h, size_t cls, size_t request) {
  size_t bytes = class_pool_bytes(cls);
  if (!limit_charge_quiet(bytes, request))
    return nullptr;  // the large path decides about the limit
  Pool* pool = arena_take_pool(cls);
  if (pool == nullptr) {
    limit_release(bytes);
    return nullptr;
  }
  pool_init(pool, h, cls);
  return pool;
}

// Keeps `pool`, empty and off h's lists, as the spare of its class if there is room (Heap::spare).
bool keep_spare(Heap* h, Pool* pool) {
  size_t cls = pool->cls, bytes = class_pool_bytes(cls);
  if (cls < kNumSmallClasses || h->spare[cls] != nullptr || h->spare_bytes + bytes > kSpareBytes) {
    return false;
  }
  h->spare[cls] = pool;
  h->spare_bytes += bytes;
  return true;
}

// Takes the spare pool of class cls, or nullptr.
Pool* take_spare(Heap* h, size_t cls) {
  Pool* pool = h->spare[cls];
  if (pool != nullptr) {
    h->spare[cls] = nullptr;
    h->spare_bytes -= class_pool_bytes(cls);
  }
  return pool;
}

void release_spares(Heap* h) {
  for (size_t cls = kNumSmallClasses; cls < kNumClasses; ++cls) {
    if (Pool* pool = take_spare(h, cls)) pool_release(pool);
  }
}

// Abandoned pools whose remote list holds their last blocks would never be released otherwise:
// look at up to `budget` of them (round robin), collect, and release the empty ones.
void sweep_abandoned(size_t budget) {
  LockGuard guard(g_abandon_lock);
  for (size_t i = 0; i < kNumClasses && budget; ++i) {
    size_t cls = (g_sweep_cursor + i) % kNumClasses;
    Pool* p = g_abandoned[cls].head;
    while (p != nullptr && budget) {
      --budget;
      Pool* next = p->next;
      shared_add(shared_globals().abandoned_frees[cls], collect_remote(p));
      if (p->used == 0) {
        abandoned_remove(cls, p);
        pool_release(p);
      }
      p = next;
    }
  }
  g_sweep_cursor = (g_sweep_cursor + 1) % kNumClasses;
}

// Gives up all of h's pools (thread exit). Empty ones go back to their arenas.
void heap_abandon(Heap* h) {
  HeapBusy busy(h);
  flush_all_foreign(h);
  process_delayed(h);
  release_spares(h);
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    Pool* cur = h->cur[cls + 1];
    if (cur != &g_empty_pool) unset_current(h, cur);  // it stays in the ring
    for (;;) {
      Pool* p = h->avail[cls].head;
      if (p != nullptr) {
        h->avail[cls].remove(p);
      } else if ((p = h->full[cls].head) != nullptr) {
        unfile_full(h, p);
      } else {
        break;
      }
      uint32_t n = collect_remote(p);
      if (n) heap_counters(h)->frees[cls].add(n);
      if (p->used == 0) {
        p->list = kListNone;
        pool_release(p);
        continue;
      }
      LockGuard guard(g_abandon_lock);
      p->owner.store(nullptr, std::memory_order_release);
      p->list = kListNone;  // on no heap's lists
      abandoned_push(cls, p);
    }
  }
  // Blocks handed over meanwhile belong to pools we no longer own: they go on to their pools; and
  // none of others' blocks may stay in the cache of a heap that is going away.
  process_delayed(h);
  flush_all_foreign(h);
  release_spares(h);  // in case a delayed block emptied a pool into a spare meanwhile
  sweep_abandoned(64);
}

void recycle(Heap* h) {
  LockGuard guard(g_heap_lock);
  h->active = false;
  h->thread = 0;
  h->next_free = g_heaps_free;
  g_heaps_free = h;
  shared_add(shared_globals().heaps_abandoned, 1);
}

void thread_exit_hook(void* arg) {
  Heap* h = static_cast<Heap*>(arg);
  if (h == nullptr || h == &g_empty_heap || h == &g_dead_heap) return;
  heap_abandon(h);
  recycle(h);
  t_heap = &g_dead_heap;
}

Heap* attach_heap() {
  Heap* h = nullptr;
  {
    LockGuard guard(g_heap_lock);
    if (g_heaps_free != nullptr) {
      h = g_heaps_free;
      g_heaps_free = h->next_free;
      h->next_free = nullptr;
    }
  }
  if (h == nullptr) {
    char* table = shared_heap_table();
    if (table == nullptr) return nullptr;
    {
      LockGuard guard(g_heap_lock);
      if (g_heap_slots == kMaxHeaps) return nullptr;  // this thread's small requests go to glibc
      h = reinterpret_cast<Heap*>(table + g_heap_slots * kHeapStride);
      ++g_heap_slots;
      shared_set(shared_globals().heap_slots, g_heap_slots);
    }
    new (h) Heap();
  }
  // Every attach: created - abandoned == threads with a heap now.
  shared_add(shared_globals().heaps_created, 1);
  for (Pool*& c : h->cur) c = &g_empty_pool;
  h->rng = os::random64() ^ reinterpret_cast<uintptr_t>(h);
  h->guard_left = g_guard_interval != nullptr ? g_guard_interval(next_random(h)) : INT64_MAX;
  h->prof_left = g_profile_interval != nullptr ? g_profile_interval(next_random(h)) : INT64_MAX;
  h->sample_set = h->sample_left = h->guard_left < h->prof_left ? h->guard_left : h->prof_left;
  h->thread = pthread_self();
  h->active = true;
  // Registers the exit hook. pthread_setspecific may allocate for high key numbers: the
  // re-entrant call sees t_in_setup and is served by glibc.
  pthread_setspecific(g_key, h);
  return h;
}

}  // namespace

namespace {

// Gives the calling thread, which has none yet, its heap; nullptr when it cannot have one now
// (inside heap setup, before the heaps are open, in modes without pools, or no room).
Heap* attach_current() {
  if (t_in_setup || !g_open.load(std::memory_order_acquire)) return nullptr;
  if (!g_attach) return nullptr;  // every allocation is guarded: no pools
  t_in_setup = true;
  Heap* h = attach_heap();
  t_in_setup = false;
  if (h != nullptr) t_heap = h;
  return h;
}

}  // namespace

void* heap_alloc_slow(size_t slot, size_t size) {
  size_t cls = slot_to_class(slot);
  Heap* h = t_heap;
  if (PG_UNLIKELY(h == &g_empty_heap)) {
    h = attach_current();
    if (h == nullptr) return nullptr;
  } else if (PG_UNLIKELY(h == &g_dead_heap)) {
    return nullptr;
  }
  HeapBusy busy(h);
  // The fast path stopped at the end of a sampling countdown, and the caller chose not to sample
  // (or could not): start the next one.
  if (PG_UNLIKELY(h->sample_left <= 0)) heap_sample_fire(h);
  Pool* pool = h->cur[slot];
  if (pool != &g_empty_pool && !pool->local_empty()) {
    // The fast path gave up on a non-empty list: for the sampling countdown (and the caller chose
    // not to sample), or because its next link does not decode.
    if (void* p = heap_take(h, pool, pool->free, slot, size)) return p;
    report_corruption(pool->free, pool->block_size, "a corrupt free-list link");
    // Report mode: forget the damaged list (its blocks leak) and never carve this pool again.
    pool->free = pool->data;
    pool->carved = pool->capacity;
  }
  if (FreeBlock* b = h->foreign[cls]) {
    // A block of another heap's pool this thread freed: it is still warm in this core's cache.
    h->foreign[cls] = reinterpret_cast<FreeBlock*>(b->link);
    --h->foreign_count[cls];
    b->tag = 0;
    heap_count_alloc(h, slot, size);
    return b;
  }
  Pool* exhausted = nullptr;
  if (pool != &g_empty_pool && !refill(h, pool)) {
    // Exhausted: it stays in the ring, not yet filed as full, and the ring turns. A program that
    // frees at random (an object churn) scatters its frees over all its pools, so by the time this
    // pool comes up again it usually has local frees; it is filed as full (an atomic flag for
    // remote freers, and list moves on the free side) only if it is still exhausted then.
    unset_current(h, pool);
    exhausted = pool;
    pool = &g_empty_pool;
  }
  if (pool == &g_empty_pool) {
    process_delayed(h);
    // Each pool of the ring once, from the head, or from the one after it when the head is the
    // pool just exhausted (which then comes last). Pools with no room leave the ring as full.
    PoolRing& ring = h->avail[cls];
    Pool* p = ring.head;
    if (p != nullptr && p == exhausted) p = p->next;
    for (uint32_t n = ring.count; n > 0; --n) {
      Pool* next = p->next;
      if (refill(h, p)) {
        pool = p;
        break;
      }
      ring.remove(p);
      make_full(h, p);  // back in the ring, as the last, if remote frees came meanwhile
      if (ring.head == nullptr) break;
      p = next == p ? ring.head : next;
    }
  }
  while (pool == &g_empty_pool) {
    Pool* p = adopt(h, cls);
    if (p == nullptr) break;
    if (refill(h, p)) {
      file_avail(h, p);
      pool = p;
    } else {
      make_full(h, p);
    }
  }
  if (pool == &g_empty_pool) {
    pool = take_spare(h, cls);
    if (pool != nullptr) {
      refill(h, pool);  // all its blocks are on its local list (or never carved)
    } else {
      pool = fresh_pool(h, cls, size);
      if (pool == nullptr) return nullptr;
      carve(pool);
    }
    file_avail(h, pool);
  }
  if (h->cur[slot] != pool) set_current(h, pool);
  // Not heap_try_alloc: this one is not counted against the sampling countdown.
  void* b = pool->free;
  if (!pool->is_end(b)) {
    if (void* p = heap_take(h, pool, b, slot, size)) return p;
  }
  return heap_alloc_slow(slot, size);  // the new current pool's first link was corrupt: report it
}

void heaps_configure(bool attach, int64_t (*guard_interval)(uint64_t random),
                     int64_t (*profile_interval)(uint64_t random)) {
  g_attach = attach;
  g_guard_interval = guard_interval;
  g_profile_interval = profile_interval;
}

unsigned heap_sample_fire(Heap* h) {
  // Allocations counted since sample_left was set (at least sample_set, as it ran out).
  int64_t elapsed = h->sample_set - h->sample_left;
  unsigned events = 0;
  if (g_guard_interval != nullptr) {
    h->guard_left -= elapsed;
    if (h->guard_left <= 0) {
      events |= kSampleGuard;
      h->guard_left = g_guard_interval(next_random(h));
    }
  }
  if (g_profile_interval != nullptr) {
    h->prof_left -= elapsed;
    if (h->prof_left <= 0) {
      events |= kSampleProfile;
      h->prof_left = g_profile_interval(next_random(h));
    }
  }
  h->sample_set = h->sample_left = h->guard_left < h->prof_left ? h->guard_left : h->prof_left;
  return events;
}

uint64_t heap_random(Heap* h) {
  return next_random(h);
}

void heap_free_slow(Heap* h, Pool* pool) {
  os::SavedErrno keep;  // releasing a pool may madvise
  HeapBusy busy(h);
  // Filed as full (kFullBias set): the block just freed is room again.
  if (pool->list == kListFull) move_to_avail(h, pool);
  if (pool->used == 0) {  // never the current pool (see set_current)
    unlink_owned(h, pool);
    if (!keep_spare(h, pool)) pool_release(pool);
  }
}

// A free into an abandoned pool: done under the lock, straight onto its local list.
namespace {

void free_abandoned(Pool* pool, void* p);

// Pushes a chain of blocks of `pool` (tagged free, linked head to tail as on Pool::thread_free; the
// tail's link is written here) onto the pool's remote-free list with one compare-and-swap. If the
// owner filed the pool as full (kNotifyOwner), the head goes to the owner heap's delayed stack
// instead, which tells the owner the pool has room, and the rest onto the list. If the pool was
// abandoned since the blocks were set aside, each is freed into it as an abandoned pool's.
void push_remote_chain(Pool* pool, FreeBlock* head, FreeBlock* tail, uint32_t count) {
  Heap* owner = pool->owner.load(std::memory_order_acquire);
  if (owner == nullptr) {
    os::SavedErrno keep;  // releasing the pool may madvise
    for (FreeBlock* b = head;;) {
      void* next = nullptr;
      bool last = b == tail;
      if (!last && !pool->decode(b->link, &next)) {
        // Written by this thread moments ago: something overwrote the free block since.
        return report_corruption(b, pool->block_size, "a corrupt link in a batch of remote frees");
      }
      b->tag = 0;  // marked free in transit; now free it for real
      free_abandoned(pool, b);
      if (last) return;
      b = static_cast<FreeBlock*>(next);
    }
  }
  uintptr_t tf = pool->thread_free.load(std::memory_order_relaxed);
  for (;;) {
    if (tf == kNotifyOwner) {
      // The owner filed this pool as full: take the flag and hand the head to the owner heap.
      if (!pool->thread_free.compare_exchange_weak(tf, 0, std::memory_order_acq_rel,
                                                   std::memory_order_relaxed)) {
        continue;
      }
      void* rest = nullptr;
      if (head != tail && !pool->decode(head->link, &rest)) {
        return report_corruption(head, pool->block_size,
                                 "a corrupt link in a batch of remote frees");
      }
      FreeBlock* top = owner->delayed.load(std::memory_order_relaxed);
      do {
        head->link = reinterpret_cast<uintptr_t>(top);
      } while (!owner->delayed.compare_exchange_weak(top, head, std::memory_order_release,
                                                     std::memory_order_relaxed));
      if (rest == nullptr) return;
      head = static_cast<FreeBlock*>(rest);
      --count;
      tf = pool->thread_free.load(std::memory_order_relaxed);
      continue;
    }
    void* top = reinterpret_cast<void*>(tf & ~kNotifyOwner);
    tail->link = pool->encode(top ? top : pool->data);
    if (pool->thread_free.compare_exchange_weak(tf, reinterpret_cast<uintptr_t>(head),
                                                std::memory_order_release,
                                                std::memory_order_relaxed)) {
      // After the push, never before (Pool::remote_count).
      pool->remote_count.fetch_add(count, std::memory_order_release);
      return;
    }
  }
}

// A send-back in progress: blocks of other heaps' pools gathered in runs per pool (heap.h,
// kRemoteChains), each pushed with one compare-and-swap when full, when a block of another pool
// takes its place, and at the end. A local of the send-back, so that a free the pushes lead to
// (an abandoned pool adopted meanwhile) may start a send-back of its own.
class SendBack {
 public:
  SendBack() = default;
  SendBack(const SendBack&) = delete;
  SendBack& operator=(const SendBack&) = delete;
  ~SendBack() {
    for (Run& r : runs_) {
      if (r.pool != nullptr) push(r);
    }
  }

  void add(Pool* pool, FreeBlock* fb) {
    Run& r = runs_[(reinterpret_cast<uintptr_t>(pool) >> kPoolMetaShift) % kRemoteChains];
    if (r.pool != pool) {
      if (r.pool != nullptr) push(r);
      r.head = r.tail = fb;
      r.count = 1;
      r.pool = pool;
      return;
    }
    fb->link = pool->encode(r.head);  // linked as on Pool::thread_free, head first
    r.head = fb;
    if (++r.count >= kRemoteBatch) push(r);
  }

 private:
  struct Run {
    Pool* pool = nullptr;  // nullptr: empty
    FreeBlock* head = nullptr;
    FreeBlock* tail = nullptr;  // its link is written by push_remote_chain
    uint32_t count = 0;
  };
  static void push(Run& r) {
    Run taken = r;
    r = Run{};
    push_remote_chain(taken.pool, taken.head, taken.tail, taken.count);
  }
  Run runs_[kRemoteChains];
};

// Sends the blocks of h's foreign cache of class cls back to their pools, in runs per pool. Their
// free is counted again by their owner when it collects them.
void flush_foreign(Heap* h, size_t cls) {
  FreeBlock* b = h->foreign[cls];
  heap_counters(h)->frees[cls].add(0 - uint64_t{h->foreign_count[cls]});
  h->foreign[cls] = nullptr;
  h->foreign_count[cls] = 0;
  SendBack send;
  while (b != nullptr) {
    FreeBlock* next = reinterpret_cast<FreeBlock*>(b->link);
    send.add(pool_at(b), b);
    b = next;
  }
}

// Sends every foreign block back: the heap keeps none of others' blocks.
void flush_all_foreign(Heap* h) {
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    if (h->foreign[cls] != nullptr) flush_foreign(h, cls);
  }
}

void free_abandoned(Pool* pool, void* p) {
  LockGuard guard(g_abandon_lock);
  if (pool->owner.load(std::memory_order_acquire) != nullptr) {
    // Adopted meanwhile: it has an owner again, so this is an ordinary remote free.
    g_abandon_lock.unlock();
    heap_free_remote(pool, p);
    g_abandon_lock.lock();
    return;
  }
  FreeBlock* fb = static_cast<FreeBlock*>(p);
  if (fb->tag == pool->tag) {  // free already (heap_free_tagged says why the tag is proof)
    g_abandon_lock.unlock();
    report_double_free(p, pool->block_size);
    g_abandon_lock.lock();
    return;
  }
  size_t cls = pool->cls;
  fb->link = pool->encode(pool->free);
  fb->tag = pool->tag;
  pool->free = p;
  --pool->used;
  shared_add(shared_globals().abandoned_frees[cls], 1 + collect_remote(pool));
  if (pool->used == 0) {
    abandoned_remove(cls, pool);
    pool_release(pool);
  }
}

}  // namespace

void heap_free_remote(Pool* pool, void* p) {
  Heap* owner = pool->owner.load(std::memory_order_acquire);
  if (owner == nullptr) {
    os::SavedErrno keep;  // releasing the pool may madvise
    return free_abandoned(pool, p);
  }
  FreeBlock* fb = static_cast<FreeBlock*>(p);
  if (PG_UNLIKELY(fb->tag == pool->tag)) {
    // The owner's lists cannot be walked from here; a 64-bit random tag is proof enough.
    return report_double_free(p, pool->block_size);
  }
  fb->tag = pool->tag;
  Heap* h = t_heap;
  // A thread that only frees (a consumer) gets a heap for its foreign cache, as it would at its
  // first malloc.
  if (PG_UNLIKELY(h == &g_empty_heap)) h = attach_current();
  if (PG_UNLIKELY(h == nullptr || !heap_is_real(h))) return push_remote_chain(pool, fb, fb, 1);
  HeapBusy busy(h);  // a fork child must not hand out or send back a half-linked cache
  size_t cls = pool->cls;
  if (PG_UNLIKELY(h->foreign_count[cls] >= foreign_cap(cls))) flush_foreign(h, cls);
  fb->link = reinterpret_cast<uintptr_t>(h->foreign[cls]);
  h->foreign[cls] = fb;
  ++h->foreign_count[cls];
  // Counted as freed here, by this heap: the program freed it. If it goes back to its pool
  // instead of being handed out here, flush_foreign takes the count back, and the owner counts it
  // when it collects it.
  heap_counters(h)->frees[cls].inc();
}

// The block's second word holds its pool's tag: it is free already. It may be on the pool's lists,
// on the owner's delayed stack, or kept in some thread's foreign cache (Heap::foreign), where no
// list walk can see it; the tag, a 64-bit random number that handing a block out clears, is proof
// enough (a live block holds it only if the program copied it there from freed memory).
void heap_free_tagged(Heap*, Pool* pool, void* p) {
  report_double_free(p, pool->block_size);
}

void heap_free_bad(void* p) {
  Pool* pool = pool_of(p);
  if (is_tail(pool)) {
    // A block that starts past its span's first unit: the checks of heap_free with the pool's own
    // header, on its first line (carved_end is zero unless the pool is in use). off * recip / 2^32
    // is off / size rounded down, exactly so for a multiple of the size (recip's rounding error
    // times off stays below 2^32), and the product fits: off < kMaxPoolUnits * kPoolSize.
    Pool* lead = pool_of(pool->data);
    uintptr_t off = static_cast<uintptr_t>(static_cast<char*>(p) - lead->first_block());
    uint64_t index = (uint64_t{off} * lead->recip) >> 32;
    if (off < lead->carved_end_offset() && index * lead->block_size == off) {
      return heap_free_block(lead, p);
    }
    if (pool->magic == kTailMagic) pool = lead;  // a live tail: report against its pool
  }
  if (pool->magic != kPoolMagic) {
    return report_invalid_free(p, nullptr, 0, "not a block poolguard handed out (pool not in use)");
  }
  uintptr_t off = static_cast<uintptr_t>(static_cast<char*>(p) - pool->first_block());
  if (off >= uint64_t{pool->capacity} * pool->block_size) {
    return report_invalid_free(
        p, nullptr, 0, "not a block poolguard handed out (before or after the pool's blocks)");
  }
  if (off >= pool->carved_end_offset() && off % pool->block_size == 0) {
    return report_invalid_free(p, nullptr, 0, "a block of a pool that was never handed out");
  }
  char* block = pool->first_block() + off / pool->block_size * pool->block_size;
  report_invalid_free(p, block, pool->block_size, "pointer into the middle of a block");
}

bool heap_is_span_block(const void* p) {
  Pool* pool = pool_at(p);
  uintptr_t off = static_cast<uintptr_t>(static_cast<const char*>(p) - pool->first_block());
  return pool->magic == kPoolMagic && off < pool->carved_end_offset() &&
         off % pool->block_size == 0;
}

void heap_class_counters(uint64_t* allocs, uint64_t* frees, uint64_t* pools, uint64_t* requested) {
  const stats::SegmentGlobals& g = shared_globals();
  for (size_t c = 0; c < kNumClasses; ++c) {
    allocs[c] = 0;
    requested[c] = 0;
    frees[c] = __atomic_load_n(&g.abandoned_frees[c], __ATOMIC_RELAXED);
    pools[c] = __atomic_load_n(&g.class_pools[c], __ATOMIC_RELAXED);
  }
  char* table = shared_heap_table();
  size_t slots = __atomic_load_n(&g.heap_slots, __ATOMIC_ACQUIRE);
  for (size_t i = 0; i < slots; ++i) {
    HeapCounters* hc = heap_counters(reinterpret_cast<Heap*>(table + i * kHeapStride));
    for (size_t s = 0; s < kNumSlots; ++s) {
      allocs[slot_to_class(s)] += hc->allocs[s].get();
      requested[slot_to_class(s)] += hc->requested[s].get();
    }
    for (size_t c = 0; c < kNumClasses; ++c) frees[c] += hc->frees[c].get();
  }
}

void heap_registry_counters(uint64_t* created, uint64_t* abandoned) {
  const stats::SegmentGlobals& g = shared_globals();
  *created = __atomic_load_n(&g.heaps_created, __ATOMIC_RELAXED);
  *abandoned = __atomic_load_n(&g.heaps_abandoned, __ATOMIC_RELAXED);
}

void heaps_open() {
  g_open.store(true, std::memory_order_release);
}

void heaps_init() {
  pthread_key_create(&g_key, thread_exit_hook);
}

void heap_collect_current() {
  Heap* h = t_heap;
  if (h != &g_empty_heap && h != &g_dead_heap) {
    HeapBusy busy(h);
    flush_all_foreign(h);
    process_delayed(h);
    release_spares(h);
    for (size_t cls = 0; cls < kNumClasses; ++cls) {
      Pool* cur = h->cur[cls + 1];
      PoolRing& ring = h->avail[cls];
      Pool* p = ring.head;
      for (uint32_t k = ring.count; k > 0; --k) {
        Pool* next = p->next;
        if (p != cur) {
          uint32_t n = collect_remote(p);
          if (n) heap_counters(h)->frees[cls].add(n);
          if (p->used == 0) {
            unlink_owned(h, p);
            pool_release(p);
          }
        }
        p = next;
      }
      for (p = h->full[cls].head; p != nullptr;) {
        Pool* next = p->next;
        uint32_t n = collect_remote(p);
        if (n) heap_counters(h)->frees[cls].add(n);
        if (pool_live(p) == 0) {
          unlink_owned(h, p);
          pool_release(p);
        } else if (!p->local_empty()) {
          move_to_avail(h, p);
        }
        p = next;
      }
      if (cur != &g_empty_pool) {
        uint32_t n = collect_remote(cur);
        if (n) heap_counters(h)->frees[cls].add(n);
        if (cur->used == 1) {  // only the current-pool count: nothing live
          unlink_owned(h, cur);
          pool_release(cur);
        }
      }
    }
  }
  sweep_retired_heaps();
  sweep_abandoned(SIZE_MAX);
  arena_purge_all();
}

void heap_detach_current() {
  Heap* h = t_heap;
  if (h == &g_empty_heap || h == &g_dead_heap) return;
  pthread_setspecific(g_key, nullptr);
  heap_abandon(h);
  recycle(h);
  t_heap = &g_empty_heap;
}

void heaps_lock_for_fork() {
  g_heap_lock.lock_for_fork();
  g_abandon_lock.lock_for_fork();
}

void heaps_unlock_after_fork_parent() {
  g_abandon_lock.unlock_after_fork();
  g_heap_lock.unlock_after_fork();
}

void heaps_after_fork_child() {
  g_abandon_lock.unlock_after_fork();
  g_heap_lock.unlock_after_fork();
  // Only the forking thread exists in the child: the other heaps' threads are gone, so abandon
  // their pools now; this thread and its heap go on as before. A heap whose thread was changing
  // its lists at the fork (busy) may have them half-updated: a pool unlinked from its ring and not
  // yet filed, or the current pool's extra count already dropped while it is still current.
  // Abandoning it could release a pool that holds live blocks, so it is retired untouched instead:
  // its pools keep it as their owner, so frees into them are remote frees that nobody collects,
  // and the heap slot is never reused in this process. Those pools leak; the heap stays sound.
  pthread_t self = pthread_self();
  Heap* others[64];
  for (;;) {
    size_t n = 0;
    {
      LockGuard guard(g_heap_lock);
      char* table = shared_heap_table();
      for (size_t i = 0; i < g_heap_slots && n < 64; ++i) {
        Heap* h = reinterpret_cast<Heap*>(table + i * kHeapStride);
        if (!h->active || h->thread == self) continue;
        if (__atomic_load_n(&h->busy, __ATOMIC_RELAXED) != 0) {
          h->active = false;  // retired: neither abandoned nor on the free list
          h->thread = 0;
          shared_add(shared_globals().heaps_abandoned, 1);
          continue;
        }
        others[n++] = h;
      }
    }
    if (n == 0) break;
    for (size_t i = 0; i < n; ++i) {
      heap_abandon(others[i]);
      recycle(others[i]);
    }
  }
}

}  // namespace pg
