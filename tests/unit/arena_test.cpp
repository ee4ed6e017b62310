// Arenas and pools: memory is carved from arenas on demand and goes back to the OS once empty.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "test_util.h"

namespace pg::test {
namespace {

// The largest class whose pools are one unit: the fewest blocks per 16 KiB pool.
constexpr size_t kBigClass = class_of(3584);
constexpr size_t kBigSize = class_size(kBigClass);
static_assert(class_units(kBigClass) == 1 && class_units(kBigClass + 1) > 1);

// A random request up to kPoolMax, most of them up to kBigSize (the spans' classes are big: a
// uniform draw would make tests of many blocks hold gigabytes).
template <typename Rng>
size_t random_pooled_size(Rng& rng) {
  return rng() % 8 == 0 ? rng() % (kPoolMax + 1) : rng() % (kBigSize + 1);
}

// A snapshot taken after the calling thread has handed back what it does not use.
Snapshot settled_snap() {
  thread_collect();
  return snap();
}

// Pools of a class hold exactly their live blocks plus their free blocks.
void expect_class_invariants(const Snapshot& s) {
  uint64_t pools = 0;
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    const ClassSnapshot& c = s.classes[cls];
    EXPECT_EQ(c.block_size, class_size(cls));
    EXPECT_EQ(c.allocs - c.frees, c.live_blocks) << "class " << cls;
    EXPECT_EQ(c.pools * pool_capacity(cls), c.live_blocks + c.free_blocks) << "class " << cls;
    pools += c.pools * class_units(cls);  // pools_in_use counts units
  }
  EXPECT_EQ(pools, s.pools_in_use);
  EXPECT_LE(s.pools_in_use, s.arenas_in_use * kDataPoolsPerArena);
  EXPECT_GE(s.peak_small_bytes, s.pools_in_use * kPoolSize);
  EXPECT_LE(s.arenas_released, s.arenas_mapped);
}

TEST(Arena, InvariantsHoldAtRest) {
  expect_class_invariants(settled_snap());
}

TEST(Arena, ManyArenasAreReleasedWhenEmpty) {
  Snapshot before = settled_snap();
  expect_class_invariants(before);
  // Enough blocks to fill every free slot of the arenas already in use, every free block of
  // the class, and then at least ten more arenas.
  const size_t cap = pool_capacity(kBigClass);
  const uint64_t free_pool_slots = before.arenas_in_use * kDataPoolsPerArena - before.pools_in_use;
  const size_t n =
      before.classes[kBigClass].free_blocks + (free_pool_slots + 10 * kDataPoolsPerArena) * cap;

  std::vector<void*> blocks;
  blocks.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    void* p = malloc_impl(kBigSize);
    ASSERT_NE(p, nullptr) << i;
    // Touch the first and last bytes: every pool really is backed by memory.
    static_cast<uint8_t*>(p)[0] = static_cast<uint8_t>(i);
    static_cast<uint8_t*>(p)[kBigSize - 1] = static_cast<uint8_t>(i >> 8);
    blocks.push_back(p);
  }
  Snapshot mid = snap();
  expect_class_invariants(mid);
  EXPECT_EQ(mid.classes[kBigClass].live_blocks - before.classes[kBigClass].live_blocks, n);
  EXPECT_GE(mid.arenas_mapped - before.arenas_mapped, 10u);
  EXPECT_GE(mid.arenas_in_use, before.arenas_in_use + 10);
  EXPECT_GE(mid.pools_in_use * cap, mid.classes[kBigClass].live_blocks);
  EXPECT_GE(mid.peak_small_bytes, mid.pools_in_use * kPoolSize);
  EXPECT_GE(mid.peak_small_bytes, before.peak_small_bytes);

  for (size_t i = 0; i < n; ++i) {
    auto* b = static_cast<uint8_t*>(blocks[i]);
    ASSERT_EQ(b[0], static_cast<uint8_t>(i));
    ASSERT_EQ(b[kBigSize - 1], static_cast<uint8_t>(i >> 8));
    free_impl(b);
  }
  Snapshot after = settled_snap();
  expect_class_invariants(after);
  EXPECT_EQ(after.classes[kBigClass].live_blocks, before.classes[kBigClass].live_blocks);
  EXPECT_GE(after.arenas_released - before.arenas_released, 1u);
  // Back to where we started, give or take a pool per class and one empty spare arena.
  EXPECT_LE(after.pools_in_use, before.pools_in_use + kNumClasses);
  EXPECT_LE(after.arenas_in_use, before.arenas_in_use + 1);
  // The high-water mark remembers the peak.
  EXPECT_GE(after.peak_small_bytes, mid.peak_small_bytes);
  EXPECT_GE(after.peak_small_bytes, mid.pools_in_use * kPoolSize);
}

TEST(Arena, HeadersSitSideBySideInTheFirstPool) {
  // Enough blocks for several pools; each block's header is slot k of its arena's first
  // pool, k being the block's pool number, and describes the pool the block is in.
  const size_t n = 4 * pool_capacity(kBigClass);
  std::vector<void*> blocks;
  for (size_t i = 0; i < n; ++i) blocks.push_back(malloc_impl(kBigSize));
  std::set<uintptr_t> headers;
  for (void* p : blocks) {
    ASSERT_NE(p, nullptr);
    const uintptr_t a = reinterpret_cast<uintptr_t>(p);
    const uintptr_t arena = a & ~(kArenaSize - 1);
    const uintptr_t index = (a - arena) >> kPoolShift;
    ASSERT_GE(index, 1u) << "no block in the headers' pool";
    const Pool* pool = pool_of(p);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(pool), arena + index * kPoolMetaSize);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(pool->data), a & ~(kPoolSize - 1));
    EXPECT_EQ(pool->index, index);
    EXPECT_EQ(pool->block_size, kBigSize);
    EXPECT_EQ((a - reinterpret_cast<uintptr_t>(pool->first_block())) % kBigSize, 0u);
    headers.insert(reinterpret_cast<uintptr_t>(pool));
  }
  EXPECT_GE(headers.size(), 4u);
  for (void* p : blocks) free_impl(p);
}

// The pools of the largest classes span several units, aligned to their span: a block anywhere in
// the span finds its pool (pool_at), the other units' headers lead back to it, every block is a
// block to free() and realloc(), and the spans go back to their arenas when empty.
TEST(Arena, SpansOfTheLargestClasses) {
  Snapshot before = settled_snap();
  std::vector<void*> blocks;
  for (size_t cls = kBigClass + 1; cls < kNumClasses; ++cls) {
    const size_t units = class_units(cls), size = class_size(cls);
    ASSERT_GT(units, 1u) << cls;
    for (size_t i = 0; i < 3 * pool_capacity(cls); ++i) {
      void* p = malloc_impl(size);
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(is_pool_pointer(p)) << size;
      fill(p, size, i);
      const uintptr_t a = reinterpret_cast<uintptr_t>(p);
      const uintptr_t arena = a & ~(kArenaSize - 1);
      const Pool* pool = pool_at(p);
      const uintptr_t data = reinterpret_cast<uintptr_t>(pool->data);
      EXPECT_EQ(data % (units * kPoolSize), 0u) << size << ": a span is aligned to its size";
      EXPECT_EQ(data, a & ~(units * kPoolSize - 1)) << size;
      EXPECT_EQ(pool->index, (data - arena) >> kPoolShift);
      EXPECT_EQ(pool->units, units);
      EXPECT_EQ(pool->block_size, size);
      EXPECT_EQ((a - reinterpret_cast<uintptr_t>(pool->first_block())) % size, 0u);
      const Pool* unit = pool_of(p);
      if (unit != pool) {
        EXPECT_EQ(unit->magic, kTailMagic) << size;
        EXPECT_GT(unit, pool);
        EXPECT_LT(unit, pool + units);
      }
      EXPECT_EQ(usable_size_impl(p), size);
      blocks.push_back(p);
    }
  }
  Snapshot mid = snap();
  expect_class_invariants(mid);
  for (size_t cls = kBigClass + 1; cls < kNumClasses; ++cls) {
    EXPECT_GE(mid.classes[cls].pools, before.classes[cls].pools + 3) << cls;
  }
  // Nothing overlapped: every block still holds its fill. Then free them last first, so that
  // spans empty from their last units.
  for (size_t i = 0, k = 0; k < blocks.size(); ++i) {
    const size_t cls = kBigClass + 1 + i;
    for (size_t j = 0; j < 3 * pool_capacity(cls); ++j, ++k) {
      ASSERT_EQ(first_mismatch(blocks[k], class_size(cls), j), class_size(cls)) << cls;
    }
  }
  std::reverse(blocks.begin(), blocks.end());
  for (void* p : blocks) free_impl(p);
  Snapshot after = settled_snap();
  expect_class_invariants(after);
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.invalid_frees, before.invalid_frees);
  EXPECT_LE(after.pools_in_use, before.pools_in_use + kNumClasses * kMaxPoolUnits);
  for (size_t cls = kBigClass + 1; cls < kNumClasses; ++cls) {
    EXPECT_LE(after.classes[cls].pools, before.classes[cls].pools + 1) << cls;
  }
}

TEST(Arena, ReleasedMemoryIsUsableAgain) {
  // Two rounds of fill / free / collect: the second must get working memory from the released
  // arenas (re-mapped or re-used), with no stale contents visible through calloc.
  for (int round = 0; round < 3; ++round) {
    Snapshot before = settled_snap();
    const size_t n = 4 * kPoolsPerArena * pool_capacity(kBigClass);
    std::vector<void*> blocks;
    blocks.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      void* p = calloc_impl(1, kBigSize);
      ASSERT_NE(p, nullptr);
      ASSERT_TRUE(all_bytes(p, kBigSize, 0)) << "round " << round << " block " << i;
      fill(p, kBigSize, i);
      blocks.push_back(p);
    }
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(first_mismatch(blocks[i], kBigSize, i), kBigSize) << i;
      free_impl(blocks[i]);
    }
    Snapshot after = settled_snap();
    EXPECT_LE(after.pools_in_use, before.pools_in_use + kNumClasses) << "round " << round;
  }
}

TEST(Arena, PoolsPerClassFollowLiveBlocks) {
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    Snapshot before = settled_snap();
    const size_t cap = pool_capacity(cls);
    const size_t n = 5 * cap + 1 + before.classes[cls].free_blocks;
    std::vector<void*> v;
    for (size_t i = 0; i < n; ++i) v.push_back(malloc_impl(class_size(cls)));
    Snapshot mid = snap();
    expect_class_invariants(mid);
    const ClassSnapshot& c = mid.classes[cls];
    EXPECT_EQ(c.live_blocks - before.classes[cls].live_blocks, n);
    // At least 6 new pools were carved for this class, and no other class grew.
    EXPECT_GE(c.pools, before.classes[cls].pools + 6) << cls;
    // Pools are filled before new ones are carved: at most one new pool is partly empty.
    EXPECT_LT(c.free_blocks, before.classes[cls].free_blocks + cap) << cls;
    for (size_t other = 0; other < kNumClasses; ++other) {
      if (other != cls) {
        EXPECT_EQ(mid.classes[other].pools, before.classes[other].pools) << other;
      }
    }
    for (void* p : v) free_impl(p);
    Snapshot after = settled_snap();
    expect_class_invariants(after);
    EXPECT_EQ(after.classes[cls].live_blocks, before.classes[cls].live_blocks);
    EXPECT_LE(after.classes[cls].pools, before.classes[cls].pools + 1) << cls;
  }
}

TEST(Arena, PoolsWithLiveBlocksSurviveCollection) {
  // Free all but a few scattered blocks: the pools holding them must keep their memory.
  const size_t cls = class_of(64);
  const size_t cap = pool_capacity(cls);
  Snapshot before = settled_snap();
  const size_t n = 2 * kPoolsPerArena * cap;
  std::vector<void*> blocks;
  for (size_t i = 0; i < n; ++i) {
    void* p = malloc_impl(64);
    ASSERT_NE(p, nullptr);
    fill(p, 64, i);
    blocks.push_back(p);
  }
  std::mt19937_64 rng(42);
  std::vector<size_t> keep;
  for (size_t i = 0; i < n; ++i) {
    if (rng() % (cap * 2) == 0) {
      keep.push_back(i);
    } else {
      EXPECT_EQ(first_mismatch(blocks[i], 64, i), 64u);
      free_impl(blocks[i]);
    }
  }
  ASSERT_GT(keep.size(), 10u);
  Snapshot mid = settled_snap();
  expect_class_invariants(mid);
  for (size_t i : keep) {
    EXPECT_EQ(first_mismatch(blocks[i], 64, i), 64u) << "kept block " << i;
  }
  // The holes are reused before new pools are carved.
  std::vector<void*> refill;
  for (size_t i = 0; i < n / 4; ++i) refill.push_back(malloc_impl(64));
  Snapshot full = snap();
  EXPECT_LE(full.classes[cls].pools, mid.classes[cls].pools + 1);
  for (void* p : refill) free_impl(p);
  for (size_t i : keep) {
    EXPECT_EQ(first_mismatch(blocks[i], 64, i), 64u) << "kept block " << i;
    free_impl(blocks[i]);
  }
  Snapshot after = settled_snap();
  expect_class_invariants(after);
  EXPECT_LE(after.pools_in_use, before.pools_in_use + kNumClasses);
}

// A pool filed as full (its `used` carries kFullBias) goes back on `avail` at the first local free,
// without a collection in between, and its hole is handed out again before any new pool is
// carved. A fresh thread, so that its heap holds only the pools this test fills.
TEST(Arena, AFreeIntoAFullPoolMakesItsHoleAvailable) {
  std::thread([] {
    const size_t cls = class_of(64);
    const size_t cap = pool_capacity(cls);
    std::vector<void*> blocks{malloc_impl(64)};
    Pool* a = pool_of(blocks[0]);
    // A pool is filed as full when it comes up again with no room: allocate until that happens.
    while (a->list != kListFull && blocks.size() < 64 * cap) blocks.push_back(malloc_impl(64));
    ASSERT_EQ(a->list, kListFull);
    EXPECT_LT(static_cast<int32_t>(a->used), 0) << "the full pool's bias";
    EXPECT_EQ(pool_live(a), cap);
    void* hole = blocks[0];
    free_impl(hole);
    blocks[0] = nullptr;
    EXPECT_EQ(a->list, kListAvail);
    EXPECT_EQ(a->used, cap - 1);
    bool reused = false;
    for (size_t i = 0; i < 2 * cap && !reused; ++i) {
      void* p = malloc_impl(64);
      blocks.push_back(p);
      reused = p == hole;
    }
    EXPECT_TRUE(reused) << "the hole in the full pool was never handed out again";
    for (void* p : blocks) free_impl(p);
    thread_collect();
  }).join();
}

// The calling thread's pool lists, checked link by link: per class, the ring of pools with room
// is circular both ways with `count` members, holds the current pool as its head (when there is
// one), and every member is marked as on it; the full list holds pools marked full whose `used`
// carries kFullBias.
void expect_heap_lists_consistent() {
  const Heap* h = t_heap;
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    const PoolRing& ring = h->avail[cls];
    const Pool* cur = h->cur[cls + 1];
    if (cur != &g_empty_pool) {
      EXPECT_EQ(ring.head, cur) << "class " << cls;
      EXPECT_EQ(cur->list, kListCurrent);
    }
    if (ring.head == nullptr) {
      EXPECT_EQ(ring.count, 0u);
    } else {
      const Pool* p = ring.head;
      for (uint32_t k = 0; k < ring.count; ++k) {
        ASSERT_EQ(p->next->prev, p) << "class " << cls;
        EXPECT_EQ(p->cls, cls);
        EXPECT_EQ(p->list, p == cur ? kListCurrent : kListAvail) << "class " << cls;
        EXPECT_GE(static_cast<int32_t>(p->used), 0);
        p = p->next;
      }
      EXPECT_EQ(p, ring.head) << "class " << cls << ": the ring is not `count` long";
    }
    uint32_t full = 0;
    for (const Pool* p = h->full[cls].head; p != nullptr; p = p->next, ++full) {
      EXPECT_EQ(p->list, kListFull);
      EXPECT_LT(static_cast<int32_t>(p->used), 0) << "a full pool without its bias";
    }
    EXPECT_EQ(full, h->full[cls].count);
  }
}

// Random mallocs and frees of every class in a fresh thread (pools are exhausted, filed as full,
// refiled, released), with the lists checked as they go and the contents at the end.
TEST(Arena, HeapListsStayConsistentUnderRandomUse) {
  std::thread([] {
    std::mt19937_64 rng(11);
    std::vector<std::pair<void*, size_t>> live;
    for (int op = 0; op < 300000; ++op) {
      // Grow to 30000 blocks, then shrink to none, twice: pools fill up, then empty out.
      const bool grow = (op / 75000) % 2 == 0;
      if (!live.empty() && (rng() % 4 == 0 || !grow)) {
        size_t i = rng() % live.size();
        ASSERT_EQ(first_mismatch(live[i].first, live[i].second, live[i].second), live[i].second);
        free_impl(live[i].first);
        live[i] = live.back();
        live.pop_back();
      } else if (grow && live.size() < 30000) {
        size_t n = random_pooled_size(rng);
        void* p = malloc_impl(n);
        ASSERT_NE(p, nullptr);
        fill(p, n, n);
        live.emplace_back(p, n);
      }
      if (op % 10000 == 0) expect_heap_lists_consistent();
    }
    expect_heap_lists_consistent();
    for (auto& [p, n] : live) free_impl(p);
    thread_collect();
    expect_heap_lists_consistent();
  }).join();
}

TEST(Arena, MixedClassesRandomOrderReturnToBaseline) {
  Snapshot before = settled_snap();
  std::mt19937_64 rng(7);
  std::vector<void*> blocks;
  for (int i = 0; i < 60000; ++i) blocks.push_back(malloc_impl(random_pooled_size(rng)));
  Snapshot mid = snap();
  expect_class_invariants(mid);
  std::shuffle(blocks.begin(), blocks.end(), rng);
  for (void* p : blocks) free_impl(p);
  Snapshot after = settled_snap();
  expect_class_invariants(after);
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_LE(after.pools_in_use, before.pools_in_use + kNumClasses);
  EXPECT_LE(after.arenas_in_use, before.arenas_in_use + 1);
  EXPECT_GT(after.arenas_released, before.arenas_released);
}

}  // namespace
}  // namespace pg::test
