// The malloc family of front/alloc.h: C semantics, the slow paths, the samplers' decisions, and
// owner_of, the one place that decides who handed a pointer out.
#include "front/alloc.h"

#include <errno.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "base/align.h"
#include "base/os.h"
#include "base/random.h"
#include "base/report.h"
#include "front/init.h"
#include "front/introspect.h"
#include "guard/guard.h"
#include "large/large.h"
#include "pool/arena.h"
#include "pool/heap.h"
#include "pool/limit.h"
#include "pool/shared.h"
#include "track/tracker.h"

namespace pg {

namespace {

size_t page() {
  return static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

bool is_pow2(size_t a) {
  return a != 0 && (a & (a - 1)) == 0;
}

// Zeroes a pool block for calloc: n bytes (a multiple of kAlign, at most kPoolMax) from p
// (kAlign-aligned), with 16-byte stores. GCC turns memset() of a variable length with known
// alignment into `rep stosq`, whose start-up cost exceeds the whole job for blocks this small
// (docs/BENCHMARKS.md has the figures); it would also recognise a plain loop as a memset, which
// the empty asm (the pointer "changes" each step) prevents.
// Above kSmallMax the C library's memset (vector stores, its own dispatch) is faster than a loop
// of 16-byte stores; not inlined, so that GCC does not expand it into `rep stosq` here.
[[gnu::noinline]] void zero_medium_block(void* p, size_t n) {
  memset(p, 0, n);
}

inline void zero_small_block(void* p, size_t n) {
#if defined(__SSE2__)
  __m128i* v = static_cast<__m128i*>(p);
  __m128i* const end = v + n / kAlign;
  const __m128i z = _mm_setzero_si128();
  if ((n & kAlign) != 0) _mm_store_si128(v++, z);  // an odd number of 16-byte units
  while (v != end) {
    _mm_store_si128(v, z);
    _mm_store_si128(v + 1, z);
    v += 2;
    asm("" : "+r"(v));
  }
#else
  memset(p, 0, n);
#endif
}

// Zeroes a pool block of either tier: n bytes, a multiple of kAlign, at most kPoolMax.
inline void zero_pool_block(void* p, size_t n) {
  if (n > kSmallMax) return zero_medium_block(p, n);
  zero_small_block(p, n);
}

[[gnu::noinline]] void* alloc_large(size_t size, size_t alignment, bool zero) {
  void* p = large_alloc(size, alignment < kAlign ? kAlign : alignment, zero);
  if (p == nullptr) errno = ENOMEM;
  return p;
}

// Threads without a heap (every thread when every block is guarded or tracked, and threads the
// heap table had no room for) share one generator and one guard countdown. Races between them
// only cost randomness.
std::atomic<uint64_t> g_heapless_rng{0};
std::atomic<int64_t> g_heapless_guard_left{0};

uint64_t heapless_random() {
  uint64_t x = g_heapless_rng.load(std::memory_order_relaxed);
  if (PG_UNLIKELY(x == 0)) x = os::random64();
  uint64_t r = xorshift64star(x);
  g_heapless_rng.store(x, std::memory_order_relaxed);
  return r;
}

// The events of a request from a thread without a heap, after initialisation: the guard's (every
// request in redzone and page modes, else 1 in POOLGUARD_GUARD_SAMPLE on average) and the
// tracker's (every request in leak mode, else with probability size / POOLGUARD_PROFILE).
[[gnu::noinline]] unsigned sample_heapless(size_t size) {
  unsigned events = 0;
  if (guard_enabled()) {
    if (guard_all()) {
      events |= kSampleGuard;
    } else if (int64_t left = g_heapless_guard_left.fetch_sub(1, std::memory_order_relaxed);
               left <= 1) {
      // 0: the first request of all, which starts the countdown (as the heaps' do) unsampled.
      g_heapless_guard_left.store(guard_sample_interval(heapless_random()),
                                  std::memory_order_relaxed);
      if (left != 0) events |= kSampleGuard;
    }
  }
  if (tracking() && (tracking_all() || track_keep_large(size, heapless_random()))) {
    events |= kSampleProfile;
  }
  return events;
}

// Sampling and whole-program modes: which requests the fast path did not serve go elsewhere.
//   kSampleGuard    the guarded allocator (guard/guard.h): every request in redzone and page modes,
//                   and with POOLGUARD_GUARD_SAMPLE the one whose countdown ran out;
//   kSampleProfile  the tracker (track/tracker.h): every request in leak mode, and with
//                   POOLGUARD_PROFILE the sampled ones.
// `pooled`: a request the pools may serve, which a fast path (heap_try_alloc) may have counted
// against the heap's countdown: it did if the countdown is at zero or below (that is why it gave
// up), else it gave up earlier, on an empty free list, or was not tried. Every other request is
// counted here. Threads without a heap (all of them when every block is guarded or tracked)
// decide on shared countdowns, after initialisation.
inline unsigned sample_events(bool pooled, size_t size) {
  Heap* h = t_heap;
  if (PG_LIKELY(heap_is_real(h))) {
    unsigned events = 0;
    // A countdown still above zero was not counted down by the fast path for this request.
    if (!pooled || h->sample_left > 0) --h->sample_left;
    if (PG_UNLIKELY(h->sample_left <= 0)) {
      events = heap_sample_fire(h);
      // A small request's profile event is kept with a probability that grows with its size; a
      // larger request draws its own sample below instead.
      if ((events & kSampleProfile) != 0 &&
          (size > kSmallMax || !track_keep_small(size, heap_random(h)))) {
        events &= ~kSampleProfile;
      }
    }
    if (size > kSmallMax && PG_UNLIKELY(tracking()) && track_keep_large(size, heap_random(h))) {
      events |= kSampleProfile;
    }
    return events;
  }
  if (!ensure_init()) return 0;
  return sample_heapless(size);
}

// Serves a request sample_events() gave to the guard or the tracker (the guard first: a block
// cannot be both). *done is false when they declined it (sampling without a free page guard, or
// a re-entrant tracker): the caller goes on as usual. With every block guarded, a failure is
// final: nullptr and ENOMEM.
[[gnu::noinline]] void* alloc_sampled(unsigned events, size_t size, size_t alignment, bool zero,
                                      bool* done) {
  if (alignment < kAlign) alignment = kAlign;
  if ((events & kSampleGuard) != 0 && alignment <= kGuardMaxAlignment) {
    void* p = guard_alloc(size, alignment, zero);
    *done = p != nullptr || guard_all();
    if (*done) {
      if (p == nullptr) errno = ENOMEM;
      return p;
    }
  }
  if ((events & kSampleProfile) != 0) {
    bool refused;
    void* p = tracked_alloc(size, alignment, zero, &refused);
    *done = p != nullptr || refused;
    if (refused) errno = ENOMEM;
    return p;
  }
  *done = false;
  return nullptr;
}

// Serves size bytes aligned to `alignment` (a power of two): from the pools when a class that is a
// multiple of the alignment fits, else from glibc.
void* alloc_aligned(size_t alignment, size_t size) {
  if (alignment <= kAlign) return malloc_impl(size);
  size_t slot = 0;
  if (alignment <= kMaxPoolAlign && size <= kPoolMax) {
    // The class's blocks must all be aligned (config.h, class_alignment). Up to kPoolLead, the
    // class of a multiple of the alignment is one; past it, only the classes that are multiples
    // of a page are (a page-aligned 64-byte request takes a page, as in tcmalloc).
    size_t rounded = align_up(size == 0 ? 1 : size, alignment <= kPoolLead ? alignment : kPageLead);
    if (rounded <= kPoolMax && class_alignment(class_of(rounded)) >= alignment) {
      slot = request_slot(rounded);
      if (void* p = pooled_try_alloc(slot, size)) return p;
    }
  }
  if (unsigned events = sample_events(slot != 0, size); PG_UNLIKELY(events != 0)) {
    bool done;
    void* p = alloc_sampled(events, size, alignment, false, &done);
    if (done) return p;
  }
  if (slot != 0) {
    if (void* p = heap_alloc_slow(slot, size)) return p;
  }
  return alloc_large(size, alignment, false);
}

// A pointer outside the arenas may take the direct large path (free, realloc): it must lie outside
// the whole reservation (its unused part is inaccessible: the caller has already ruled out the used
// part), and route_direct() (front/init.h) must hold, which also rules out fallback arenas.
inline bool direct_free_ok(const void* p) {
  return !in_reservation(p) && route_direct();
}

[[gnu::noinline]] void* calloc_slow(size_t total) {
  if (total > kPoolMax) {
    if (PG_LIKELY(route_direct())) return large_calloc_direct(total);
  } else if (total > kSmallMax) {
    if (void* p = pooled_try_alloc(request_slot(total), total)) {
      zero_pool_block(p, class_size(class_of(total)));
      return p;
    }
  }
  if (unsigned events = sample_events(total <= kPoolMax, total); PG_UNLIKELY(events != 0)) {
    bool done;
    void* p = alloc_sampled(events, total, kAlign, true, &done);
    if (done) return p;
  }
  if (total <= kPoolMax) {
    if (void* p = heap_alloc_slow(request_slot(total), total)) {
      zero_pool_block(p, total == 0 ? kAlign : class_size(class_of(total)));
      return p;
    }
  }
  return alloc_large(total, kAlign, true);
}

// malloc_slow and free_unreserved only choose between the direct large path and the general one, by
// tail calls, so that neither needs a stack frame on the way to glibc.
[[gnu::noinline]] void* malloc_general(size_t size) {
  if (unsigned events = sample_events(size <= kPoolMax, size); PG_UNLIKELY(events != 0)) {
    bool done;
    void* p = alloc_sampled(events, size, kAlign, false, &done);
    if (done) return p;
  }
  if (size <= kPoolMax) {
    if (void* p = heap_alloc_slow(request_slot(size), size)) return p;
  }
  return alloc_large(size, kAlign, false);
}

// Who handed out p, a pointer that is not null: the one decision free, realloc and
// malloc_usable_size take for any pointer their fast paths did not settle.
enum class Owner : uint8_t {
  kPools,        // an arena's range (the reservation's or a fallback arena): a pool's block, or
                 // not a block at all (heap_is_block tells)
  kUnusedRange,  // the reservation's unused part: never handed out
  kGuard,        // the guard's (live, or already freed or not a block start: see `guard`)
  kTracked,      // the tracker's: a glibc block with a record
  kLarge,        // the large path's (large/large.h)
  kForeign,      // glibc's: allocated before poolguard, or by glibc itself
};
struct Ownership {
  Owner owner;
  GuardLookup guard;  // kGuard: what the guard knows of p
  size_t usable;      // kGuard (when live) and kTracked: the bytes the program may use
};

// The order matters: guarded blocks are never in the arenas, and a page-guarded one must be
// recognised before large_owns reads the 16 bytes before it (a guard page, when the block starts
// a page); tracked blocks are glibc blocks, which large_owns would take for its own.
//
// The arenas' answer, the common one, is settled inline; the rest is owner_of_outside_arenas. (When
// the whole function was one, and not inlined, the compiler built the result in memory, with
// narrow stores read back wide: a store-forwarding stall on every realloc of a pool block.)
[[gnu::noinline]] Ownership owner_of_outside_arenas(const void* p) {
  size_t usable = 0;
  if (in_reservation_unused(p)) return {Owner::kUnusedRange, GuardLookup::kNotGuarded, 0};
  if (PG_UNLIKELY(guard_may_own(p))) {
    GuardLookup g = guard_lookup(p, &usable);
    if (g != GuardLookup::kNotGuarded) return {Owner::kGuard, g, usable};
  }
  if (PG_UNLIKELY(tracked_may_own(p)) && tracked_size(p, &usable)) {
    return {Owner::kTracked, GuardLookup::kNotGuarded, usable};
  }
  if (large_owns(p)) return {Owner::kLarge, GuardLookup::kNotGuarded, 0};
  return {Owner::kForeign, GuardLookup::kNotGuarded, 0};
}
PG_ALWAYS_INLINE Ownership owner_of(const void* p) {
  if (PG_LIKELY(in_reserved_arenas(p)) || arena_owns_outside_reservation(p)) {
    return {Owner::kPools, GuardLookup::kNotGuarded, 0};
  }
  return owner_of_outside_arenas(p);
}

[[gnu::noinline]] void free_routed(void* p) {
  os::SavedErrno keep;  // the guard's mprotect and mmap, reports, trims
  switch (owner_of(p).owner) {
    case Owner::kPools:
      return heap_free(p);  // a fallback arena: the reservation's pools took the fast path
    case Owner::kUnusedRange:
      return report_invalid_free(p, nullptr, 0, "not a block poolguard handed out (unused range)");
    case Owner::kGuard:
      guard_free(p);  // frees, or reports a double or invalid free
      return;
    case Owner::kTracked:
      if (tracked_free(p)) return;
      // Its record went meanwhile (another thread freed it first): as an untracked block.
      if (large_owns(p)) return large_free(p);
      return __libc_free(p);
    case Owner::kLarge:
      return large_free(p);
    case Owner::kForeign:
      return __libc_free(p);  // allocated before poolguard, or by glibc internals: glibc's
  }
}

}  // namespace

void* malloc_slow(size_t size) {
  // A pool-sized request has had its fast path (malloc_impl): trying it again would count it
  // twice against the sampling countdown.
  if (size > kPoolMax && PG_LIKELY(route_direct())) return large_malloc_direct(size);
  return malloc_general(size);
}

// Frees a pointer that is not in the arenas: one of our large blocks, or glibc's.
void free_unreserved(void* p) {
  if (PG_LIKELY(direct_free_ok(p))) return large_free_direct(p);
  return free_routed(p);
}

int prlimit_impl(int pid, int resource, const void* new_limit, void* old_limit) {
  if (resource == RLIMIT_AS && new_limit != nullptr && (pid == 0 || pid == getpid())) {
    const struct rlimit64* n = static_cast<const struct rlimit64*>(new_limit);
    if (n->rlim_cur != RLIM64_INFINITY) {
      arena_fit_reservation(static_cast<size_t>(n->rlim_cur));
      guard_fit_address_space(static_cast<size_t>(n->rlim_cur));
    }
  }
  return static_cast<int>(syscall(SYS_prlimit64, pid, resource, new_limit, old_limit));
}

bool is_pool_pointer(const void* p) {
  return p != nullptr && arena_owns(p);
}

void free_sized_impl(void* p, size_t) {
  free_impl(p);
}

void* calloc_impl(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  if (total <= kSmallMax) {
    if (void* p = heap_try_alloc(request_slot(total), total)) {
      zero_small_block(p, total == 0 ? kAlign : class_size(class_of(total)));
      return p;
    }
  }
  return calloc_slow(total);
}

void* realloc_impl(void* p, size_t size) {
  if (p == nullptr) return malloc_impl(size);
  if (size == 0) {
    // glibc's semantics (REALLOC_ZERO_BYTES_FREES): free and return NULL.
    free_impl(p);
    return nullptr;
  }
  // A large block staying large, with nothing but statistics in play: glibc resizes it.
  if (size > kPoolMax && PG_LIKELY(direct_free_ok(p))) {
    if (void* q; large_realloc_direct(p, size, &q)) return q;
  }
  size_t old_usable = 0;
  Ownership o = owner_of(p);
  switch (o.owner) {
    case Owner::kPools:
      if (!heap_is_block(p)) {
        heap_free_bad(p);  // reports, as free() would
        errno = EINVAL;
        return nullptr;
      }
      old_usable = heap_block_size(p);
      // Stay in place while the new size maps to the same class.
      if (size <= kPoolMax && class_size(class_of(size)) == old_usable) return p;
      break;
    case Owner::kUnusedRange:
      report_invalid_free(p, nullptr, 0, "realloc of a pointer poolguard never handed out");
      errno = EINVAL;
      return nullptr;
    case Owner::kGuard:
      if (o.guard != GuardLookup::kLive) {
        guard_free(p);  // reports the double or invalid free, as free() would
        errno = EINVAL;
        return nullptr;
      }
      // A guarded block always moves: the new one gets fresh redzones (or guard page), and the
      // old one's are checked when it is freed below.
      old_usable = o.usable;
      break;
    case Owner::kTracked:
      // A tracked block always moves too: its record goes with the free below, and the new block
      // is sampled (or tracked) on its own. Its whole usable size moves with it: that is what
      // malloc_usable_size told the program it may use (the glibc block's, beyond the request).
      old_usable = large_size(p);
      break;
    case Owner::kLarge:
      old_usable = large_size(p);
      if (size > kPoolMax) {
        if (void* q = large_realloc(p, size)) return q;
        if (large_alignment(p) <= kAlign) {
          errno = ENOMEM;
          return nullptr;  // glibc could not grow it: the old block stays valid
        }
      }
      break;
    case Owner::kForeign:
      // A foreign (glibc) block: let glibc resize it; it stays glibc's.
      return __libc_realloc(p, size);
  }
  void* q = malloc_impl(size);
  if (q == nullptr) return nullptr;
  memcpy(q, p, old_usable < size ? old_usable : size);
  free_impl(p);
  return q;
}

void* reallocarray_impl(void* p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) {
    errno = ENOMEM;
    return nullptr;
  }
  return realloc_impl(p, total);
}

void* memalign_impl(size_t alignment, size_t size) {
  // glibc rounds a non-power-of-two alignment up to the next power of two.
  if (!is_pow2(alignment)) {
    if (alignment > (SIZE_MAX >> 1) + 1) {
      errno = EINVAL;
      return nullptr;
    }
    size_t a = 1;
    while (a < alignment) a <<= 1;
    alignment = a;
  }
  return alloc_aligned(alignment, size);
}

int posix_memalign_impl(void** out, size_t alignment, size_t size) {
  if (!is_pow2(alignment) || alignment % sizeof(void*) != 0) return EINVAL;
  // posix_memalign reports through its result, never errno: not on failure, and not on a success
  // that took a detour (a pool refused by the OS, then served by glibc) either.
  int saved = errno;
  void* p = alloc_aligned(alignment, size);
  errno = saved;
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}

void* aligned_alloc_impl(size_t alignment, size_t size) {
  // C11 with DR 460: an alignment that is not a power of two fails; the size need not be a
  // multiple of it (glibc's behaviour).
  if (!is_pow2(alignment)) {
    errno = EINVAL;
    return nullptr;
  }
  return alloc_aligned(alignment, size);
}

void* valloc_impl(size_t size) {
  return alloc_aligned(page(), size);
}

void* pvalloc_impl(size_t size) {
  size_t pg = page();
  size_t rounded = align_up(size, pg);
  if (rounded < size) {
    errno = ENOMEM;
    return nullptr;
  }
  return alloc_aligned(pg, rounded == 0 ? pg : rounded);
}

size_t usable_size_impl(const void* p) {
  if (p == nullptr) return 0;
  Ownership o = owner_of(p);
  switch (o.owner) {
    case Owner::kPools:
      return heap_is_block(p) ? heap_block_size(p) : 0;
    case Owner::kUnusedRange:
      return 0;
    case Owner::kGuard:
      // Exactly the bytes asked for (the rest is redzone); nothing for a freed or bad pointer.
      return o.guard == GuardLookup::kLive ? o.usable : 0;
    case Owner::kTracked:
    case Owner::kLarge:
      return large_size(p);
    case Owner::kForeign:
      break;
  }
  return foreign_usable_size(p);
}

void take_snapshot(Snapshot* out) {
  memset(out, 0, sizeof *out);
  uint64_t allocs[kNumClasses], frees[kNumClasses], pools[kNumClasses], requested[kNumClasses];
  heap_class_counters(allocs, frees, pools, requested);
  for (size_t c = 0; c < kNumClasses; ++c) {
    ClassSnapshot& cs = out->classes[c];
    cs.block_size = static_cast<uint32_t>(class_size(c));
    cs.allocs = allocs[c];
    cs.requested_bytes = requested[c];
    cs.frees = frees[c];
    cs.live_blocks = allocs[c] >= frees[c] ? allocs[c] - frees[c] : 0;
    cs.pools = pools[c];
    uint64_t capacity = pools[c] * ((class_pool_bytes(c) - class_lead(c)) / cs.block_size);
    cs.free_blocks = capacity >= cs.live_blocks ? capacity - cs.live_blocks : 0;
    out->small_allocs += allocs[c];
    out->small_frees += frees[c];
  }
  LargeCounters lc;
  large_counters(&lc);
  out->large_allocs = lc.allocs;
  out->large_frees = lc.frees;
  out->large_live_bytes = lc.live_bytes;
  ArenaCounters ac;
  arena_counters(&ac);
  out->arenas_mapped = ac.mapped;
  out->arenas_released = ac.released;
  out->arenas_in_use = ac.live;
  out->pools_in_use = ac.pools_in_use;
  out->pools_purged = ac.pools_purged;
  out->peak_small_bytes = ac.peak_pools * kPoolSize;
  out->reserved_bytes = ac.reserved;
  out->fallback_arenas = ac.fallback;
  heap_registry_counters(&out->heaps_created, &out->heaps_abandoned);
  const stats::SegmentGlobals& g = shared_globals();
  out->double_frees = __atomic_load_n(&g.double_frees, __ATOMIC_RELAXED);
  out->invalid_frees = __atomic_load_n(&g.invalid_frees, __ATOMIC_RELAXED);
  out->corruptions = __atomic_load_n(&g.corruptions, __ATOMIC_RELAXED);
}

namespace {
struct ViewFill {
  ArenaView* out;
  size_t max;
  size_t n;
};

void fill_view(const Arena* a, void* ctx) {
  ViewFill* f = static_cast<ViewFill*>(ctx);
  size_t i = f->n++;
  if (i >= f->max) return;
  ArenaView& v = f->out[i];
  v.base = reinterpret_cast<uintptr_t>(a->base);
  for (size_t k = 0; k < kPoolsPerArena; ++k) {
    PoolView& pv = v.pools[k];
    uint64_t bit = uint64_t{1} << k;
    pv = PoolView{};
    if (k == 0) {
      pv.state = PoolState::kHeaders;
      continue;
    }
    if (a->free_mask & bit) {
      pv.state = (a->dirty_mask & bit) ? PoolState::kFreeDirty : PoolState::kFreeClean;
      continue;
    }
    // In use: the header is read without the owner's cooperation, so the figures are a moment's.
    // A unit past the first of a span shows its pool's.
    Pool* pool = reinterpret_cast<Pool*>(a->base + k * kPoolMetaSize);
    if (__atomic_load_n(&pool->magic, __ATOMIC_ACQUIRE) == kTailMagic) pool = pool_of(pool->data);
    pv.state = PoolState::kInUse;
    pv.cls = __atomic_load_n(&pool->cls, __ATOMIC_RELAXED);
    pv.used = static_cast<uint16_t>(__atomic_load_n(&pool->used, __ATOMIC_RELAXED) & ~kFullBias);
    pv.capacity = __atomic_load_n(&pool->capacity, __ATOMIC_RELAXED);
    if (pv.used > pv.capacity) pv.used = pv.capacity;  // the current pool's extra count
  }
}
}  // namespace

size_t arena_views(ArenaView* out, size_t max) {
  ViewFill f{out, max, 0};
  arena_for_each(fill_view, &f);
  return f.n;
}

void thread_collect() {
  heap_collect_current();
}

void thread_detach() {
  heap_detach_current();
}

}  // namespace pg
