// The arenas of pool/arena.h: the address-space reservation, 1 MiB arenas, which pool comes next
// (fullest arenas first), and giving memory back.
#include "pool/arena.h"

#include <cstring>

#include "base/align.h"
#include "base/clock.h"
#include "base/list.h"
#include "base/lock.h"
#include "base/meta.h"
#include "base/os.h"
#include "base/seqlock.h"
#include "pool/limit.h"
#include "pool/shared.h"

namespace pg {

std::atomic<bool> g_any_fallback_arena{false};

AddressSpace g_space;

namespace {

constexpr size_t kMinReserve = 64 * kArenaSize;
// Dirty free pools tolerated inside arenas still in use before a bulk purge (POOLGUARD_PURGE), in
// units. Past it, a purge waits until a second after the last one, unless the dirty units reach
// four times it: a program whose pools empty and fill again all the time (a churn of the spans'
// big blocks) would otherwise give back and fault in the same pages over and over, while one that
// has gone quiet or is shrinking still gets its memory returned within a second of its next free.
size_t g_purge_threshold_pools = (4u << 20) / kPoolSize;
constexpr int64_t kPurgeSpacingNs = 1000000000;
int64_t g_last_purge_ns = INT64_MIN / 2;  // monotonic_ns() of the last threshold purge

SpinLock g_arena_lock;
bool g_inited = false;
void (*g_on_fallback)() = nullptr;  // arenas_init's on_first_fallback

// Pool 0 of every arena holds the pool headers (pool/pool.h): it is never free.
constexpr uint64_t kDataPoolsMask = ~uint64_t{1};

// buckets[n] holds the live arenas with exactly n free pools (1 <= n <= 63). Bit n-1 of
// g_bucket_mask is set when buckets[n] is non-empty, so the fullest arena is one ctz away.
List<Arena> g_buckets[kPoolsPerArena + 1];
uint64_t g_bucket_mask = 0;
Arena* g_released = nullptr;  // descriptors of decommitted arenas, reused first
// Live arenas with every pool free. They are released (decommitted, their slot kept for the next
// arena) by the purge, which keeps one as a spare: not as soon as they empty, because an arena
// holds only three pools of the largest class, and a churn of big blocks emptied and refilled
// arenas all the time, each round a decommit and the page faults after it. Until the purge, their
// pages are dirty free units like any others, bounded by the same rule (g_purge_threshold_pools).
uint32_t g_empty_arenas = 0;
uint64_t g_dirty_pools = 0;  // free pools with possibly resident pages, in arenas in use

// Every descriptor ever made, for purging and counting (never shrinks; at most one per arena).
Arena** g_all = nullptr;
size_t g_all_count = 0, g_all_cap = 0;
// A descriptor made for an arena the OS then refused, kept for the next try: metadata is never
// freed, so a program refused memory over and over would otherwise grow it with each refusal.
Arena* g_unused_descriptor = nullptr;

// The arena figures live in the stats segment (pool/shared.h), written under the arena lock.
stats::SegmentGlobals& figures() {
  return shared_globals();
}
void bump(uint64_t& field, int64_t by) {
  shared_set(field, field + static_cast<uint64_t>(by));
}

// The arena map of the stats segment: entry a->map_index describes arena a (when it is below the
// map's size). Each entry is rewritten under its seqlock, by the arena lock's holder.
stats::SegmentArena* map_entry(const Arena* a) {
  stats::SegmentArena* map = shared_arena_map();
  return map != nullptr && a->map_index < shared_max_arenas() ? &map[a->map_index] : nullptr;
}
void map_begin(stats::SegmentArena* e) {
  seq_begin(&e->seq, e->seq + 1);
}
void map_end(stats::SegmentArena* e) {
  seq_end(&e->seq, e->seq + 1);
}
// Sets the state (and class) of pool i of arena a in the map.
void map_pool(const Arena* a, unsigned i, uint8_t state, uint8_t cls) {
  stats::SegmentArena* e = map_entry(a);
  if (e == nullptr) return;
  map_begin(e);
  e->pools[i].state = state;
  e->pools[i].cls = cls;
  map_end(e);
}
// (Re)describes arena a in the map: in use at `base` (0: not in use), every pool free.
void map_arena(const Arena* a, uint64_t base) {
  stats::SegmentArena* e = map_entry(a);
  if (e == nullptr) return;
  map_begin(e);
  e->base = base;
  e->pools[0].state = stats::kSegPoolHeaders;
  for (unsigned i = 1; i < kPoolsPerArena; ++i) {
    e->pools[i].state = stats::kSegPoolFreeClean;
    e->pools[i].cls = 0;
  }
  map_end(e);
}

// Fallback arenas: address >> kArenaShift (27 bits on 47-bit user space) split 13 + 14.
constexpr size_t kRadixLeafBits = 14;
constexpr size_t kRadixTop = size_t{1} << (47 - kArenaShift - kRadixLeafBits);
std::atomic<uint8_t*> g_radix[kRadixTop];

void bucket_insert(Arena* a) {
  if (a->nfree == 0) return;
  g_buckets[a->nfree].push_front(a);
  g_bucket_mask |= uint64_t{1} << (a->nfree - 1);
}

void bucket_remove(Arena* a) {
  if (a->nfree == 0) return;
  g_buckets[a->nfree].remove(a);
  if (g_buckets[a->nfree].empty()) g_bucket_mask &= ~(uint64_t{1} << (a->nfree - 1));
}

// Makes room in g_all for one more descriptor; false when the metadata is refused. Done before
// an arena is mapped, so that recording it cannot fail afterwards.
bool room_to_remember() {
  if (g_all_count == g_all_cap) {
    size_t cap = g_all_cap ? g_all_cap * 2 : 1024;
    Arena** grown = static_cast<Arena**>(meta_alloc(cap * sizeof(Arena*), 64));
    if (grown == nullptr) return false;
    if (g_all_count) memcpy(grown, g_all, g_all_count * sizeof(Arena*));
    g_all = grown;  // the old array is metadata: abandoned, never freed (rare, small)
    g_all_cap = cap;
  }
  return true;
}

bool radix_set(uintptr_t addr) {
  size_t idx = addr >> kArenaShift;
  size_t top = idx >> kRadixLeafBits;
  if (top >= kRadixTop) return false;
  uint8_t* leaf = g_radix[top].load(std::memory_order_acquire);
  if (leaf == nullptr) {
    leaf = static_cast<uint8_t*>(os::map(size_t{1} << kRadixLeafBits));
    if (leaf == nullptr) return false;
    g_radix[top].store(leaf, std::memory_order_release);  // under the arena lock: one writer
  }
  leaf[idx & ((size_t{1} << kRadixLeafBits) - 1)] = 1;
  return true;
}

// See arena_fit_reservation(). Under the arena lock.
size_t fit_reservation_locked(size_t limit) {
  uintptr_t base = g_space.base.load(std::memory_order_relaxed);
  uintptr_t reserved = g_space.reserved.load(std::memory_order_relaxed);
  uintptr_t used = g_space.used.load(std::memory_order_relaxed);
  if (base == 0 || reserved <= used) return 0;
  uintptr_t keep = align_down(limit / 4, kArenaSize);
  if (keep < used) keep = used;
  if (keep >= reserved) return 0;
  g_space.reserved.store(keep, std::memory_order_release);
  os::unmap(reinterpret_cast<char*>(base + keep), reserved - keep);
  shared_set(figures().reserved_bytes, keep);
  return reserved - keep;
}

// Brings a new arena into use: a released one, the next slot of the reservation, or a fallback.
Arena* arena_new() {
  if (Arena* a = g_released) {
    g_released = a->next;
    a->next = a->prev = nullptr;
    a->free_mask = kDataPoolsMask;
    a->dirty_mask = 0;  // decommitted: pages read as zero and cost nothing until touched
    a->nfree = kDataPoolsPerArena;
    a->live = true;
    bump(figures().arenas_mapped, 1);
    bump(figures().arenas_in_use, 1);
    map_arena(a, reinterpret_cast<uintptr_t>(a->base));
    return a;
  }
  Arena* a = g_unused_descriptor;
  g_unused_descriptor = nullptr;
  if (a == nullptr) a = static_cast<Arena*>(meta_alloc(sizeof(Arena), 64));
  if (a == nullptr) return nullptr;
  if (!room_to_remember()) {
    g_unused_descriptor = a;
    return nullptr;
  }
  char* base = nullptr;
  uintptr_t rbase = g_space.base.load(std::memory_order_relaxed);
  uintptr_t used = g_space.used.load(std::memory_order_relaxed);
  if (rbase != 0 && used + kArenaSize <= g_space.reserved.load(std::memory_order_relaxed)) {
    base = reinterpret_cast<char*>(rbase + used);
    if (!os::commit(base, kArenaSize)) base = nullptr;
    // Publish only after the pages are accessible: `used` bounds what free() may read.
    if (base) g_space.used.store(used + kArenaSize, std::memory_order_release);
  }
  if (base == nullptr) {
    base = static_cast<char*>(os::map_aligned(kArenaSize, kArenaSize));
    if (base == nullptr && os::address_space_limit() != SIZE_MAX &&
        fit_reservation_locked(0) != 0) {
      base = static_cast<char*>(os::map_aligned(kArenaSize, kArenaSize));
    }
    if (base == nullptr || !radix_set(reinterpret_cast<uintptr_t>(base))) {
      if (base != nullptr) os::unmap(base, kArenaSize);
      g_unused_descriptor = a;
      return nullptr;
    }
    a->fallback = true;
    bump(figures().fallback_arenas, 1);
    if (!g_any_fallback_arena.exchange(true, std::memory_order_acq_rel) && g_on_fallback) {
      g_on_fallback();
    }
  }
  a->map_index = static_cast<uint32_t>(g_all_count);
  g_all[g_all_count++] = a;
  shared_set(figures().arenas_total, g_all_count);
  size_t listed = g_all_count < shared_max_arenas() ? g_all_count : shared_max_arenas();
  shared_set(figures().arenas_listed, listed);
  a->base = base;
  a->free_mask = kDataPoolsMask;
  a->dirty_mask = 0;
  a->nfree = kDataPoolsPerArena;
  a->live = true;
  bump(figures().arenas_mapped, 1);
  bump(figures().arenas_in_use, 1);
  map_arena(a, reinterpret_cast<uintptr_t>(base));
  return a;
}

// Decommits an arena that has every pool free. It must not be in a bucket.
void arena_release(Arena* a) {
  g_dirty_pools -= static_cast<uint64_t>(__builtin_popcountll(a->dirty_mask));
  os::decommit(a->base, kArenaSize);
  a->dirty_mask = 0;
  a->live = false;
  a->next = g_released;
  g_released = a;
  bump(figures().arenas_released, 1);
  bump(figures().arenas_in_use, -1);
  map_arena(a, 0);
}

void purge_locked() {
  for (size_t i = 0; i < g_all_count && g_empty_arenas > 1; ++i) {
    Arena* a = g_all[i];
    if (a->live && a->nfree == kDataPoolsPerArena) {
      bucket_remove(a);
      --g_empty_arenas;
      arena_release(a);  // every empty arena but one spare
    }
  }
  for (size_t i = 0; i < g_all_count; ++i) {
    Arena* a = g_all[i];
    if (!a->live || a->dirty_mask == 0) continue;
    // Decommit runs of consecutive dirty pools with one madvise each.
    uint64_t m = a->dirty_mask;
    while (m) {
      unsigned start = static_cast<unsigned>(__builtin_ctzll(m));
      unsigned end = start;
      while (end < kPoolsPerArena && (m >> end) & 1) ++end;
      os::decommit(a->base + start * kPoolSize, (end - start) * kPoolSize);
      bump(figures().pools_purged, end - start);
      for (unsigned k = start; k < end; ++k) map_pool(a, k, stats::kSegPoolFreeClean, 0);
      m &= end >= 64 ? 0 : ~((uint64_t{1} << end) - 1);
    }
    g_dirty_pools -= static_cast<uint64_t>(__builtin_popcountll(a->dirty_mask));
    a->dirty_mask = 0;
  }
}

}  // namespace

void arenas_init(size_t reserve, void (*on_first_fallback)()) {
  LockGuard guard(g_arena_lock);
  if (g_inited) return;
  g_inited = true;
  g_on_fallback = on_first_fallback;
  size_t limit = os::address_space_limit();
  if (limit != SIZE_MAX && reserve > limit / 4) reserve = limit / 4;
  reserve &= ~(kArenaSize - 1);
  while (reserve >= kMinReserve) {
    void* p = os::reserve_aligned(reserve, kArenaSize);
    if (p != nullptr) {
      g_space.reserved.store(reserve, std::memory_order_relaxed);
      g_space.used.store(0, std::memory_order_relaxed);
      g_space.base.store(reinterpret_cast<uintptr_t>(p), std::memory_order_release);
      shared_set(figures().reserved_bytes, reserve);
      return;
    }
    reserve /= 2;
  }
  // No reservation: every arena is a fallback arena. Still correct, one more load per free.
}

void arena_set_purge_threshold(size_t bytes) {
  g_purge_threshold_pools = bytes / kPoolSize;
}

size_t arena_fit_reservation(size_t limit) {
  LockGuard guard(g_arena_lock);
  return fit_reservation_locked(limit);
}

bool arena_reclaim_address_space() {
  if (os::address_space_limit() == SIZE_MAX) return false;
  return arena_fit_reservation(0) != 0;
}

bool arena_owns(const void* p) {
  if (in_reserved_arenas(p)) return true;
  uintptr_t idx = reinterpret_cast<uintptr_t>(p) >> kArenaShift;
  size_t top = idx >> kRadixLeafBits;
  if (top >= kRadixTop) return false;
  uint8_t* leaf = g_radix[top].load(std::memory_order_acquire);
  return leaf != nullptr && leaf[idx & ((size_t{1} << kRadixLeafBits) - 1)] != 0;
}

namespace {

// Bit i set: units i .. i+units-1 are all set in mask, and i is a multiple of `units` (a power of
// two up to kMaxPoolUnits): where a span of that many units can start.
uint64_t span_starts(uint64_t mask, unsigned units) {
  for (unsigned w = 1; w < units; w *= 2) mask &= mask >> w;
  // Bits at the multiples of `units`: every bit for 1, every other for 2 (0x5555...), and so on.
  constexpr uint64_t kAligned[] = {~uint64_t{0}, 0x5555555555555555ull, 0x1111111111111111ull,
                                   0x0101010101010101ull, 0x0001000100010001ull};
  return mask & kAligned[__builtin_ctz(units)];
}
static_assert(kMaxPoolUnits == 16, "span_starts has aligned masks for spans of up to 16 units");

// The fullest live arena with a free span of `units` units, or nullptr; with `resident`, only a
// span whose pages are all dirty (still resident) counts, and at most kResidentScan arenas are
// looked at. A span of one unit is in any arena with a free unit (the fullest is one ctz away); a
// longer span needs its units free and aligned, so the arenas are tried from the fullest that has
// enough free units.
constexpr unsigned kResidentScan = 32;
Arena* arena_with_room(unsigned units, bool resident) {
  uint64_t buckets = g_bucket_mask >> (units - 1);
  if (units == 1 && !resident) {
    return buckets ? g_buckets[__builtin_ctzll(buckets) + 1].head : nullptr;
  }
  unsigned budget = kResidentScan;
  while (buckets) {
    unsigned n = static_cast<unsigned>(__builtin_ctzll(buckets)) + units;
    for (Arena* a = g_buckets[n].head; a != nullptr; a = a->next) {
      if (span_starts(resident ? a->free_mask & a->dirty_mask : a->free_mask, units) != 0) return a;
      if (resident && --budget == 0) return nullptr;
    }
    buckets &= buckets - 1;
  }
  return nullptr;
}

}  // namespace

Pool* arena_take_pool(size_t cls) {
  LockGuard guard(g_arena_lock);
  unsigned units = static_cast<unsigned>(class_units(cls));
  // Resident free units first, wherever they are (the fullest such arena): taking untouched units
  // of a fuller arena while resident ones sit elsewhere costs page faults now and a purge later.
  Arena* a = g_dirty_pools >= units ? arena_with_room(units, true) : nullptr;
  if (a == nullptr) a = arena_with_room(units, false);
  if (a == nullptr) {
    a = arena_new();
    if (a == nullptr) return nullptr;
    bucket_insert(a);
    ++g_empty_arenas;
  }
  if (a->nfree == kDataPoolsPerArena) --g_empty_arenas;
  // A span whose units are all dirty (resident) first, then any.
  uint64_t starts = span_starts(a->free_mask & a->dirty_mask, units);
  if (starts == 0) starts = span_starts(a->free_mask, units);
  unsigned i = static_cast<unsigned>(__builtin_ctzll(starts));
  uint64_t bits = (units == 64 ? ~uint64_t{0} : (uint64_t{1} << units) - 1) << i;
  bucket_remove(a);
  g_dirty_pools -= static_cast<uint64_t>(__builtin_popcountll(a->dirty_mask & bits));
  a->free_mask &= ~bits;
  a->dirty_mask &= ~bits;
  a->nfree -= units;
  bucket_insert(a);
  stats::SegmentGlobals& f = figures();
  bump(f.pools_in_use, units);
  if (f.pools_in_use > f.peak_pools) shared_set(f.peak_pools, f.pools_in_use);
  limit_note_pools(f.pools_in_use * kPoolSize);
  for (unsigned k = i; k < i + units; ++k) {
    map_pool(a, k, k == i ? stats::kSegPoolInUse : stats::kSegPoolSpanTail,
             static_cast<uint8_t>(cls));
  }
  Pool* pool = reinterpret_cast<Pool*>(a->base + i * kPoolMetaSize);
  pool->data = a->base + i * kPoolSize;
  pool->arena = a;
  pool->index = i;
  pool->units = static_cast<uint8_t>(units);
  return pool;
}

void arena_give_pool(Pool* pool) {
  LockGuard guard(g_arena_lock);
  Arena* a = pool->arena;
  unsigned units = pool->units;
  uint64_t bits = (units == 64 ? ~uint64_t{0} : (uint64_t{1} << units) - 1) << pool->index;
  bucket_remove(a);
  a->free_mask |= bits;
  a->dirty_mask |= bits;
  a->nfree += units;
  g_dirty_pools += units;
  bump(figures().pools_in_use, -static_cast<int64_t>(units));
  for (unsigned k = pool->index; k < pool->index + units; ++k) {
    map_pool(a, k, stats::kSegPoolFreeDirty, 0);
  }
  if (a->nfree == kDataPoolsPerArena) ++g_empty_arenas;
  bucket_insert(a);
  if (g_dirty_pools > g_purge_threshold_pools) {
    int64_t now = monotonic_ns();
    if (g_dirty_pools > 4 * g_purge_threshold_pools || now - g_last_purge_ns >= kPurgeSpacingNs) {
      g_last_purge_ns = now;
      purge_locked();
    }
  }
}

void arena_purge_all() {
  LockGuard guard(g_arena_lock);
  purge_locked();
}

void arena_for_each(void (*fn)(const Arena*, void*), void* ctx) {
  LockGuard guard(g_arena_lock);
  for (size_t i = 0; i < g_all_count; ++i) {
    if (g_all[i]->live) fn(g_all[i], ctx);
  }
}

void arena_counters(ArenaCounters* out) {
  LockGuard guard(g_arena_lock);
  const stats::SegmentGlobals& f = figures();
  out->mapped = f.arenas_mapped;
  out->released = f.arenas_released;
  out->live = f.arenas_in_use;
  out->pools_in_use = f.pools_in_use;
  out->peak_pools = f.peak_pools;
  out->pools_purged = f.pools_purged;
  out->fallback = f.fallback_arenas;
  out->reserved = f.reserved_bytes;
}

void arenas_lock_for_fork() {
  g_arena_lock.lock_for_fork();
}
void arenas_unlock_after_fork() {
  g_arena_lock.unlock_after_fork();
}

}  // namespace pg
