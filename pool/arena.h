// Arenas: where pools come from, and how memory goes back to the OS.
//
// Address space. At start-up poolguard reserves one large range (POOLGUARD_RESERVE, 64 GiB by
// default, PROT_NONE so it costs nothing) and carves 1 MiB arenas from it, bottom up. Whether a
// pointer is poolguard's is then one subtraction and compare: (p - base) < used, lock-free
// (`used` only grows). When the reservation is refused (ulimit -v, strict overcommit) it is retried
// smaller, down to kMinReserve, and capped at a quarter of RLIMIT_AS; when it is refused altogether
// or full, arenas are mapped one at a time anywhere ("fallback" arenas) and recorded in a lock-free
// two-level byte map indexed by address >> kArenaShift, so ownership stays O(1).
//
// Choosing a pool. Arenas with free pools sit in buckets by their number of free pools; a new pool
// comes from the arena with the fewest free pools (the fullest), as in pymalloc, so that nearly
// empty arenas drain and can be released. Inside an arena, a pool whose pages are still resident
// ("dirty") is preferred over one that was never touched or was purged. The pools of the largest
// classes span 2-16 units (pool/config.h, class_units): they need that many free units, aligned to
// their span, and come from the fullest arena that has such a run.
//
// Giving memory back. A fully free arena is decommitted (madvise MADV_DONTNEED: RSS drops, the
// range stays mapped and reads as zeroes, so a stale pointer into it is seen as "not a pool") and
// its slot is reused first by the next arena: not at once, but at the next purge (below), which
// keeps one empty arena as a spare (hysteresis), so that a program hovering at an arena boundary,
// or churning big blocks, does not decommit and fault in the same arenas in a loop. Free pools
// inside arenas still in use are purged in bulk once more than POOLGUARD_PURGE bytes of them are
// dirty (a second after the last such purge at the soonest, unless four times as many are).
//
// Arenas are never unmapped: an address that was once an arena stays readable, which keeps the
// ownership test and the pool-header read in free() safe for any pointer that was ever valid.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "pool/config.h"
#include "pool/pool.h"

namespace pg {

// Arena descriptor. Lives in metadata memory (never inside the arena), so that decommitting an
// arena loses nothing. Guarded by the arena lock.
struct Arena {
  char* base;           // kArenaSize-aligned start
  uint64_t free_mask;   // bit i set: pool i is not carved for any class
  uint64_t dirty_mask;  // bit i set: pool i is free and its pages may be resident
  uint32_t nfree;       // popcount(free_mask)
  bool live;            // committed and counted as mapped
  bool fallback;        // mapped outside the reservation
  uint32_t map_index;   // its entry in the stats segment's arena map (pool/shared.h)
  Arena* next;          // bucket list (by nfree), or the free-slot list when not live
  Arena* prev;
};

// The reservation, readable without a lock. `used` is the high-water mark of arenas carved in it
// and only grows; `reserved` (>= used) only shrinks, when the unused tail is given back
// (arena_fit_reservation): it is lowered before the tail is unmapped, so that no reader takes an
// address the kernel has handed to someone else for part of the reservation.
struct AddressSpace {
  std::atomic<uintptr_t> base{0};
  std::atomic<uintptr_t> used{0};
  std::atomic<uintptr_t> reserved{0};
};
// Hidden: the fast path then reads it RIP-relative instead of through the GOT.
extern AddressSpace g_space __attribute__((visibility("hidden")));

// Sets up the reservation. Idempotent; called once from global init with `reserve` bytes asked.
// `on_first_fallback` runs once, when the first arena outside the reservation is mapped.
void arenas_init(size_t reserve, void (*on_first_fallback)());
extern std::atomic<bool> g_any_fallback_arena __attribute__((visibility("hidden")));

// True if p lies in an arena poolguard mapped (live or released). O(1), lock-free.
bool arena_owns(const void* p);
// arena_owns() for a pointer already known to be outside the reservation: one load when no
// fallback arena exists (the common case), so that the large path does not pay for the map.
inline bool arena_owns_outside_reservation(const void* p) {
  return g_any_fallback_arena.load(std::memory_order_relaxed) && arena_owns(p);
}
// Only the reservation test, for the inlined fast path. On x86-64 it is written out: four
// instructions, both fields read as memory operands (the compiler loads each into a register and
// copies p twice: seven).
inline bool in_reserved_arenas(const void* p) {
#if defined(__x86_64__)
  asm goto(
      "movq %0, %%r11\n\t"
      "subq %1, %%r11\n\t"
      "cmpq %2, %%r11\n\t"
      "jae %l[outside]"
      :
      : "r"(p), "m"(g_space.base), "m"(g_space.used)
      : "r11", "cc"
      : outside);
  return true;
outside:
  return false;
#else
  return reinterpret_cast<uintptr_t>(p) - g_space.base.load(std::memory_order_relaxed) <
         g_space.used.load(std::memory_order_relaxed);
#endif
}

// True if p lies anywhere in the reserved range, carved or not.
inline bool in_reservation(const void* p) {
  return reinterpret_cast<uintptr_t>(p) - g_space.base.load(std::memory_order_relaxed) <
         g_space.reserved.load(std::memory_order_acquire);
}

// True if p lies in the reserved range but past the arenas carved so far: never a valid block,
// and its pages are inaccessible, so nothing may read around it.
inline bool in_reservation_unused(const void* p) {
  uintptr_t off = reinterpret_cast<uintptr_t>(p) - g_space.base.load(std::memory_order_relaxed);
  return g_space.base.load(std::memory_order_relaxed) != 0 &&
         off < g_space.reserved.load(std::memory_order_acquire) &&
         off >= g_space.used.load(std::memory_order_relaxed);
}

// The address space limit (RLIMIT_AS) counts the reservation whole, used or not, so a reservation
// must never be what makes a program fail. Gives back the unused tail of the reservation beyond
// what a quarter of `limit` allows (all of it when limit is 0), keeping the arenas carved so far;
// new arenas are then mapped one at a time. Returns the bytes given back.
size_t arena_fit_reservation(size_t limit);
// Called when memory was refused: if an address space limit is in force and the reservation has
// an unused tail, gives all of it back and returns true (the caller tries again).
bool arena_reclaim_address_space();

// Takes a free pool from the fullest arena (mapping a new arena if needed) for size class `cls`
// and returns its address, with pages zeroed if never used. nullptr when the OS refuses memory.
Pool* arena_take_pool(size_t cls);
// Gives a pool back to its arena (header must already be cleared by the caller).
void arena_give_pool(Pool* pool);
// Free pools may hold this many dirty bytes before a bulk purge (POOLGUARD_PURGE).
void arena_set_purge_threshold(size_t bytes);
// Decommits every dirty free pool now.
void arena_purge_all();

// Calls fn(arena, ctx) for each arena in use, under the arena lock. fn must not allocate.
void arena_for_each(void (*fn)(const Arena*, void*), void* ctx);

struct ArenaCounters {
  uint64_t mapped;        // arenas brought into use (mapped or re-committed)
  uint64_t released;      // arenas decommitted
  uint64_t live;          // arenas in use now (including the spare)
  uint64_t pools_in_use;  // pools handed out
  uint64_t peak_pools;    // high-water mark of pools_in_use
  uint64_t pools_purged;  // pools decommitted while their arena stayed in use
  uint64_t fallback;      // arenas mapped outside the reservation
  uint64_t reserved;      // bytes reserved
};
void arena_counters(ArenaCounters* out);

// fork support: take/release the arena lock around fork().
void arenas_lock_for_fork();
void arenas_unlock_after_fork();

}  // namespace pg
