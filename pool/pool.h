// The pooled small-object allocator: data structures.
//
// Glossary
//   block      what malloc hands out: kAlign-aligned, of one size class (16, 32, ..., kSmallMax,
//              then the medium tier's 320, 384, ..., kPoolMax; pool/config.h).
//   size class the block size a request is rounded up to; class_of(n) in pool/config.h.
//   pool       kPoolSize bytes (16 KiB, a "unit"), aligned to its size, holding blocks of a single
//              class from its lead on (128 bytes, or a page for the classes that are multiples of
//              a page: class_lead); a pool of a class above 3584 bytes spans class_units(cls)
//              units (2 to 16), aligned to its span. Its header (struct Pool) is kept apart, in
//              its arena's first unit; pool_of(p) finds the header of p's unit from the block's
//              address with a few bit operations. The header of a span's first unit is the pool's;
//              the headers of its other units are "tails" (kTailMagic; is_tail) whose `data` is
//              where the pool starts (pool_at).
//   arena      kArenaSize bytes (1 MiB), aligned to its size, cut into kPoolsPerArena pools: pool 0
//              holds the 64 headers side by side, pools 1..63 hold blocks. Arenas come from the OS
//              (pool/arena.h) and go back to it when all their pools are free.
//   heap       the per-thread allocation state (pool/heap.h): for each class, the pool it allocates
//              from now and the other pools it owns. Only the owner thread allocates from a pool.
//   local free a block freed by the pool's owner thread: pushed on Pool::free, no atomics.
//   remote free a block freed by any other thread: pushed on Pool::thread_free with one CAS; the
//              owner moves that list over when its local list runs dry (mimalloc's sharding).
//   abandoned  a pool whose owner thread exited with blocks still live; any thread may adopt it,
//              and frees into it take the global lock until then.
//
// Free-list hardening. A free block's first word is the link to the next free block, stored as
// (address of the next block) XOR Pool::key, where the pool's own address means "end" (it is in
// the lead, never a block). Decoding checks that the result is a 16-byte aligned address inside
// the pool, so a write into a free block (overflow or use after free) is caught when the link is
// next used, instead of steering malloc to an address of the attacker's choice (cf. glibc's
// safe-linking). A stored link gives away neither the key nor a heap address without the other.
// (Encoding the offset in the pool instead would cost one more instruction at each end, on the
// chain of dependent loads a run of mallocs follows: load the head, load its link, decode, store.)
// The second word of a free block holds Pool::tag; free() finding the tag already there checks the
// free lists for the block and reports a double free (cf. glibc's tcache key).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "base/compiler.h"
#include "pool/config.h"

namespace pg {

struct Heap;
struct Arena;

inline constexpr uint32_t kPoolMagic = 0x504f4f4c;  // "POOL"; zero in a pool that is not in use
inline constexpr uint32_t kTailMagic = 0x5441494c;  // "TAIL": a unit of a span past its first

// Which of its owner's lists a pool is on.
enum PoolList : uint8_t { kListNone = 0, kListCurrent, kListAvail, kListFull };

struct FreeBlock {
  uintptr_t link;  // encoded offset of the next free block (see above)
  uintptr_t tag;   // == Pool::tag while the block is free
};

// The header of a pool in use. Invariant (when no free is in flight):
//   |free| + |thread_free| + used + (capacity - carved) == capacity + (blocks on thread_free),
// i.e. `used` counts blocks out of the owner's hands: live ones, remote-freed ones that the owner
// has not collected yet, and collected ones whose count (remote_count) it has not taken yet. A
// pool may be released only when used == 0: then no other thread can be in the middle of freeing
// into it.
//
// Why the headers are not in their pools: pools are 16 KiB-aligned, so a header at the start of
// each pool would put every header in the same few sets of the caches (one set of 64 in an 8-way
// 32 KiB L1, 8 of 2048 in an 8-way 1 MiB L2): a program with more than a few dozen pools in play
// would miss the cache on the header at nearly every free (callgrind's cache model on
// bench/churn.c; docs/BENCHMARKS.md has the figures). Side by side in the arena's first pool, the
// headers of the pools in use are contiguous lines, as mimalloc's page headers are.
//
// Three lines by who writes them. Line 0 holds what every free() reads (the checks, the owner,
// the encoding) and is written only when the pool is set up; line 1 is what the owner writes on
// each malloc and free; line 2 is what other threads write. With the owner's `free` and `used` on
// the line remote freers read, a producer/consumer pair bounced that line on every operation
// (docs/BENCHMARKS.md, "Pool headers and the caches").
struct alignas(64) Pool {
  // ---- cache line 0: read by every free, written only when the pool is set up ----
  uintptr_t key;             // link encoding key (random per pool)
  uintptr_t tag;             // free-block marker (random per pool)
  std::atomic<Heap*> owner;  // owning heap; nullptr while abandoned
  char* data;                // the pool itself (kPoolSize-aligned); nullptr in g_empty_pool
  uint32_t block_size;       // class size in bytes
  uint32_t recip;            // ceil(2^32 / block_size): offset -> block index without a divide
  // carved * block_size: offsets at or past this were never handed out (grows as blocks are
  // carved; read by remote freers, relaxed). Zero in a tail header, so that the inline free
  // takes the slow path for a block that starts past a span's first unit.
  std::atomic<uint32_t> carved_end;
  uint16_t capacity;    // blocks that fit after the lead
  uint8_t cls;          // size class index
  uint8_t list;         // PoolList: which of the owner's lists holds it (owner only)
  uintptr_t link_mask;  // ~(pool bytes - 1) | (kAlign - 1): the test decode() makes
  uintptr_t lead;       // bytes before the first block: class_lead(cls)
  // ---- cache line 1: written by the owner thread ----
  alignas(64) void* free;  // next local free block; == data when the list is empty
  uint32_t used;           // blocks out of the owner's lists (live or remote-freed uncollected),
                           // plus kFullBias while the pool is filed as full (see below)
  uint16_t carved;         // blocks linked into the free list so far (carving is lazy)
  Pool* next;              // owner heap's list for this class (or the abandoned list)
  Pool* prev;
  // ---- cache line 2: written by other threads ----
  // Remote frees: a stack of blocks (links encoded as above, the last one links to the pool).
  // Bit 0 is kNotifyOwner: set by the owner when it files the pool as full; the first remote
  // freer to see it clears it and hands its block to the owner heap's `delayed` stack instead,
  // which tells the owner that the pool has room again.
  alignas(64) std::atomic<uintptr_t> thread_free;
  // Blocks pushed on thread_free and not yet collected: each pusher adds its count after its push,
  // so that the owner takes a whole list without walking it. The count may lag behind the list,
  // never run ahead of it, so `used` minus it never drops below the blocks really live.
  std::atomic<uint32_t> remote_count;
  char pad[64 - sizeof(std::atomic<uintptr_t>) - sizeof(std::atomic<uint32_t>)];
  // ---- cache line 3: read on slow paths only ----
  alignas(64) uint32_t magic;  // kPoolMagic while the pool is carved for a class; kTailMagic in
                               // the header of a span's unit past the first
  uint32_t index;              // unit number of the pool's (first) unit inside its arena
  uint8_t units;               // units the pool spans (class_units(cls))
  Arena* arena;
  char pad3[64 - 2 * sizeof(uint32_t) - sizeof(uint64_t) - sizeof(Arena*)];

  uint32_t carved_end_offset() const { return carved_end.load(std::memory_order_relaxed); }
  char* first_block() const { return data + lead; }
  // The value of `free` (and of a decoded link) that means "no more blocks".
  bool is_end(const void* b) const { return b == data; }
  bool local_empty() const { return is_end(free); }
  uintptr_t encode(const void* next) const { return reinterpret_cast<uintptr_t>(next) ^ key; }
  // Decodes a stored link; returns false if it is not a 16-byte aligned address in this pool.
  bool decode(uintptr_t stored, void** next) {
    uintptr_t a = stored ^ key;
    *next = reinterpret_cast<void*>(a);
    // One AND, off the chain of loads: a and the pool (aligned to its size) agree above the
    // pool's size, and a is 16-byte aligned. (An address in the lead passes this test; it would
    // still be caught as a non-block by free().)
    return ((a ^ reinterpret_cast<uintptr_t>(data)) & link_mask) == 0;
  }
};
inline constexpr uintptr_t kNotifyOwner = 1;

// While a pool is on its owner's `full` list, Pool::used carries kFullBias (its top bit), so that
// it reads as negative when taken as an int32_t. free() then needs a single test, `--used <= 0`,
// for both of its reasons to take the slow path: the pool's last block came back (zero), or a
// block came back to a pool filed as full (negative), which must move to `avail`. Only the owner
// writes `used`; pool_live() is the count without the bias.
inline constexpr uint32_t kFullBias = uint32_t{1} << 31;
inline uint32_t pool_live(const Pool* p) {
  return p->used & ~kFullBias;
}

static_assert(sizeof(Pool) == kPoolMetaSize, "headers are packed kPoolMetaSize apart");
static_assert(offsetof(Pool, free) == 64 && offsetof(Pool, thread_free) == 128 &&
                  offsetof(Pool, magic) == 192,
              "owner-written, remote-written and cold fields start lines 1, 2 and 3");

// The header of the unit that address p lies in: header k of p's arena, k = p's unit number.
// Four ALU operations, no load. For an address in an arena's first unit this is header 0, which
// no pool uses (all zero: it reads as a pool not in use). For an address past the first unit of
// a span it is a tail header: pool_at() gives the pool's own.
inline Pool* pool_of(const void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  constexpr uintptr_t kIndexMask = (kPoolsPerArena - 1) << kPoolMetaShift;
  return reinterpret_cast<Pool*>((a & ~(uintptr_t{kArenaSize} - 1)) |
                                 ((a >> (kPoolShift - kPoolMetaShift)) & kIndexMask));
}

// True if h, the header of a unit in use or once used, leads elsewhere: its `data` is not its own
// unit but the start of the span it is (or was) a tail of. Read from the header's first line,
// which every path that looks at a block reads anyway (the magic is on the cold fourth). A unit
// never used has no data at all.
inline bool is_tail(const Pool* h) {
  uintptr_t a = reinterpret_cast<uintptr_t>(h);
  uintptr_t base = a & ~(uintptr_t{kArenaSize} - 1);
  uintptr_t unit = base + (((a - base) >> kPoolMetaShift) << kPoolShift);
  uintptr_t data = reinterpret_cast<uintptr_t>(h->data);
  return data != 0 && data != unit;
}

// The header of the pool that p, a block in use or on a free list, lies in, tails followed: what
// every path but the inline free's uses.
inline Pool* pool_at(const void* p) {
  Pool* h = pool_of(p);
  return PG_UNLIKELY(is_tail(h)) ? pool_of(h->data) : h;
}

// Offset of p from the first block of `pool`, its unit's header, for p in the pool's first unit
// (the inline free's case: a tail header fails its bounds test first); huge (wrapped) for an
// address in the lead. The lead is read from the header (a subtraction from memory, no more
// instructions than a constant).
inline uintptr_t pool_offset(const Pool* pool, const void* p) {
  return (reinterpret_cast<uintptr_t>(p) & (uintptr_t{kPoolSize} - 1)) - pool->lead;
}

}  // namespace pg
