// Random sequences of allocator calls checked against a shadow model: live blocks never overlap,
// and every block keeps the bytes written into it until it is freed or resized.
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <iterator>
#include <map>
#include <random>
#include <vector>

#include "test_util.h"

namespace pg::test {
namespace {

struct Live {
  void* p;
  size_t size;    // bytes asked for
  size_t usable;  // usable_size when allocated
  size_t align;   // alignment asked for (kAlign when none)
  uint64_t seed;  // pattern of the contents
};

class Shadow {
 public:
  // Records a new block; fails the test if it overlaps a live one.
  void add(const Live& b) {
    auto start = reinterpret_cast<uintptr_t>(b.p);
    uintptr_t end = start + (b.usable ? b.usable : 1);
    auto next = ranges_.lower_bound(start);
    if (next != ranges_.end()) {
      EXPECT_GE(next->first, end) << "block " << b.p << "+" << b.usable << " overlaps "
                                  << reinterpret_cast<void*>(next->first);
    }
    if (next != ranges_.begin()) {
      auto prev = std::prev(next);
      EXPECT_LE(prev->second, start)
          << "block " << b.p << " overlaps the one at " << reinterpret_cast<void*>(prev->first);
    }
    ranges_[start] = end;
    blocks_.push_back(b);
  }

  // Removes block i from the model (swap with the last).
  Live take(size_t i) {
    Live b = blocks_[i];
    blocks_[i] = blocks_.back();
    blocks_.pop_back();
    ranges_.erase(reinterpret_cast<uintptr_t>(b.p));
    return b;
  }

  size_t size() const { return blocks_.size(); }
  const Live& at(size_t i) const { return blocks_[i]; }

 private:
  std::map<uintptr_t, uintptr_t> ranges_;  // start -> end of every live block
  std::vector<Live> blocks_;
};

// Sizes weighted like real programs: mostly small, some medium, a few large.
size_t random_size(std::mt19937_64& rng) {
  uint64_t r = rng() % 100;
  if (r < 70) return rng() % (kPoolMax + 1);
  if (r < 93) return kPoolMax + 1 + rng() % 2048;
  if (r < 99) return rng() % 65536;
  return rng() % (size_t{1} << 20);
}

void check_contents(const Live& b) {
  size_t bad = first_mismatch(b.p, b.size, b.seed);
  ASSERT_EQ(bad, b.size) << "block " << b.p << " of " << b.size << " bytes changed at offset "
                         << bad;
}

void check_new_block(const Live& b) {
  ASSERT_NE(b.p, nullptr) << b.size;
  EXPECT_TRUE(is_aligned(b.p, b.align < kAlign ? kAlign : b.align)) << b.p << " " << b.align;
  EXPECT_GE(b.usable, b.size);
  EXPECT_EQ(is_pool_pointer(b.p), b.size <= kPoolMax && b.align <= kMaxPoolAlign) << b.size;
}

void run_random_ops(uint64_t seed, int ops, size_t max_live) {
  std::mt19937_64 rng(seed);
  Shadow shadow;
  uint64_t next_seed = 1;
  Snapshot before = snap();
  for (int op = 0; op < ops; ++op) {
    uint64_t r = rng() % 100;
    bool must_free = shadow.size() >= max_live;
    if (!must_free && (r < 45 || shadow.size() == 0)) {
      // Allocate with one of the entry points.
      Live b{};
      b.size = random_size(rng);
      b.align = kAlign;
      uint64_t how = rng() % 10;
      if (how < 6) {
        b.p = malloc_impl(b.size);
      } else if (how < 8) {
        b.p = calloc_impl(1, b.size);
      } else {
        b.align = size_t{1} << (rng() % 13);  // 1 .. 4096
        if (how == 8) {
          b.p = memalign_impl(b.align, b.size);
        } else {
          if (b.align < sizeof(void*)) b.align = sizeof(void*);
          EXPECT_EQ(posix_memalign_impl(&b.p, b.align, b.size), 0);
        }
      }
      b.usable = b.p ? usable_size_impl(b.p) : 0;
      check_new_block(b);
      if (how >= 6 && how < 8) {
        ASSERT_TRUE(all_bytes(b.p, b.size, 0)) << "calloc of " << b.size;
      }
      b.seed = next_seed++;
      fill(b.p, b.size, b.seed);
      shadow.add(b);
    } else if (r < 80 || must_free) {
      // Free a random block after checking it.
      Live b = shadow.take(rng() % shadow.size());
      check_contents(b);
      if (rng() % 4 == 0) {
        free_sized_impl(b.p, b.size);
      } else {
        free_impl(b.p);
      }
    } else {
      // Resize a random block; the common prefix must survive.
      Live b = shadow.take(rng() % shadow.size());
      check_contents(b);
      size_t n = random_size(rng);
      if (n == 0) n = 1;  // realloc(p, 0) frees: tested in semantics_test
      void* q = realloc_impl(b.p, n);
      ASSERT_NE(q, nullptr) << b.size << " -> " << n;
      size_t kept = std::min(b.size, n);
      ASSERT_EQ(first_mismatch(q, kept, b.seed), kept) << b.size << " -> " << n;
      Live nb{q, n, usable_size_impl(q), kAlign, next_seed++};
      EXPECT_GE(nb.usable, n);
      fill(q, n, nb.seed);
      shadow.add(nb);
    }
    if (::testing::Test::HasFatalFailure()) return;
  }
  // Everything still live must be intact; then hand it all back.
  while (shadow.size() > 0) {
    Live b = shadow.take(shadow.size() - 1);
    check_contents(b);
    free_impl(b.p);
  }
  Snapshot after = snap();
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.small_allocs - before.small_allocs, after.small_frees - before.small_frees);
  EXPECT_EQ(after.large_allocs - before.large_allocs, after.large_frees - before.large_frees);
  EXPECT_EQ(after.large_live_bytes, before.large_live_bytes);
  EXPECT_EQ(after.double_frees, before.double_frees);
  EXPECT_EQ(after.invalid_frees, before.invalid_frees);
  EXPECT_EQ(after.corruptions, before.corruptions);
}

TEST(Shadow, RandomOpsFewLiveBlocks) {
  run_random_ops(0x5eed0001, 40000, 64);
}

TEST(Shadow, RandomOpsManyLiveBlocks) {
  run_random_ops(0x5eed0002, 60000, 4000);
}

TEST(Shadow, RandomOpsOtherSeeds) {
  for (uint64_t seed = 100; seed < 104; ++seed) {
    run_random_ops(seed, 10000, 1000);
    if (HasFatalFailure()) return;
  }
}

TEST(Shadow, ReverseAndInterleavedFreeOrders) {
  // Fill pools of every class, free every other block, refill the holes, then free the rest in
  // reverse: the free lists are exercised in orders a LIFO-only test would not see.
  Shadow shadow;
  uint64_t next_seed = 1;
  std::vector<Live> blocks;
  for (int i = 0; i < 8000; ++i) {
    size_t n = static_cast<size_t>(i) % (kPoolMax + 1);
    Live b{malloc_impl(n), n, 0, kAlign, next_seed++};
    b.usable = usable_size_impl(b.p);
    check_new_block(b);
    fill(b.p, n, b.seed);
    shadow.add(b);
  }
  for (size_t i = shadow.size(); i-- > 0;) {
    if (i % 2 == 0) {
      Live b = shadow.take(i);
      check_contents(b);
      free_impl(b.p);
    }
  }
  for (int i = 0; i < 4000; ++i) {
    size_t n = static_cast<size_t>(i * 7) % (kPoolMax + 1);
    Live b{malloc_impl(n), n, 0, kAlign, next_seed++};
    b.usable = usable_size_impl(b.p);
    check_new_block(b);
    fill(b.p, n, b.seed);
    shadow.add(b);
  }
  while (shadow.size() > 0) {
    Live b = shadow.take(shadow.size() - 1);
    check_contents(b);
    free_impl(b.p);
  }
}

}  // namespace
}  // namespace pg::test
