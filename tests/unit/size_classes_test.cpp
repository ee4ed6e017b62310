// Size classes: every request of 0..kPoolMax bytes is served by a pool block of the right class,
// 16 bytes apart up to kSmallMax (the small tier), four per doubling above it (the medium tier).
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "test_util.h"

namespace pg::test {
namespace {

TEST(SizeClasses, ClassTableIsConsistent) {
  EXPECT_EQ(class_of(0), 0u);
  EXPECT_EQ(class_of(1), 0u);
  EXPECT_EQ(class_of(16), 0u);
  EXPECT_EQ(class_of(17), 1u);
  EXPECT_EQ(class_of(kSmallMax), kNumSmallClasses - 1);
  EXPECT_EQ(class_size(kNumSmallClasses - 1), kSmallMax);
  EXPECT_EQ(class_of(kSmallMax + 1), kNumSmallClasses);
  EXPECT_EQ(class_size(kNumSmallClasses), 320u);
  EXPECT_EQ(class_of(kPoolMax), kNumClasses - 1);
  EXPECT_EQ(class_size(kNumClasses - 1), kPoolMax);
  // The medium tier: four classes per doubling.
  const size_t medium[] = {320,   384,   448,   512,   640,   768,   896,   1024, 1280, 1536,
                           1792,  2048,  2560,  3072,  3584,  4096,  5120,  6144, 7168, 8192,
                           10240, 12288, 14336, 16384, 20480, 24576, 28672, 32768};
  ASSERT_EQ(std::size(medium), kNumMediumClasses);
  for (size_t i = 0; i < kNumMediumClasses; ++i) {
    EXPECT_EQ(class_size(kNumSmallClasses + i), medium[i]) << i;
  }
  for (size_t n = 0; n <= kPoolMax; ++n) {
    size_t cls = class_of(n);
    ASSERT_LT(cls, kNumClasses) << n;
    EXPECT_GE(class_size(cls), n) << n;
    EXPECT_EQ(class_size(cls) % kAlign, 0u) << n;
    // The class is the smallest that fits.
    if (cls > 0) {
      EXPECT_LT(class_size(cls - 1), n) << n;
    }
    // A medium block wastes at most a fifth of itself (a quarter of the request).
    if (n > kSmallMax) {
      EXPECT_LE(class_size(cls) - n, class_size(cls) / 5) << n;
    }
  }
}

// heap_free tells a block start from any other offset with one multiplication (pool/heap.h): the
// test must be exact for every offset of every class.
TEST(SizeClasses, ReciprocalFindsExactlyTheBlockStarts) {
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    uint32_t bs = static_cast<uint32_t>(class_size(cls));
    uint32_t recip = static_cast<uint32_t>(((uint64_t{1} << 32) + bs - 1) / bs);
    for (uint64_t off = 0; off < kPoolSize; ++off) {
      bool start = static_cast<uint32_t>(off * recip) < recip;
      ASSERT_EQ(start, off % bs == 0) << "class " << bs << " offset " << off;
    }
  }
}

TEST(SizeClasses, EverySmallSizeGetsAnAlignedPoolBlockOfItsClass) {
  for (size_t n = 0; n <= kPoolMax; ++n) {
    void* p = malloc_impl(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(is_aligned(p, kAlign)) << n << " " << p;
    EXPECT_TRUE(is_pool_pointer(p)) << n;
    size_t usable = usable_size_impl(p);
    EXPECT_GE(usable, n) << n;
    EXPECT_EQ(usable, class_size(class_of(n))) << n;
    fill(p, usable, n);
    EXPECT_EQ(first_mismatch(p, usable, n), usable) << n;
    free_impl(p);
  }
}

TEST(SizeClasses, LiveBlocksOfEverySizeAreDistinctAndKeepTheirContents) {
  std::vector<void*> blocks;
  for (size_t round = 0; round < 4; ++round) {
    for (size_t n = 0; n <= kPoolMax; ++n) {
      void* p = malloc_impl(n);
      ASSERT_NE(p, nullptr);
      fill(p, usable_size_impl(p), blocks.size());
      blocks.push_back(p);
    }
  }
  std::set<void*> unique(blocks.begin(), blocks.end());
  EXPECT_EQ(unique.size(), blocks.size());
  for (size_t i = 0; i < blocks.size(); ++i) {
    size_t usable = usable_size_impl(blocks[i]);
    EXPECT_EQ(first_mismatch(blocks[i], usable, i), usable) << "block " << i;
  }
  for (void* p : blocks) free_impl(p);
}

TEST(SizeClasses, MallocZeroIsUniqueAndFreeable) {
  Snapshot before = snap();
  std::vector<void*> zeros;
  for (int i = 0; i < 1000; ++i) {
    void* p = malloc_impl(0);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(is_aligned(p, kAlign));
    EXPECT_TRUE(is_pool_pointer(p));
    EXPECT_GE(usable_size_impl(p), 1u);
    zeros.push_back(p);
  }
  EXPECT_EQ(std::set<void*>(zeros.begin(), zeros.end()).size(), zeros.size());
  Snapshot mid = snap();
  EXPECT_EQ(mid.classes[0].live_blocks - before.classes[0].live_blocks, 1000u);
  for (void* p : zeros) free_impl(p);
  Snapshot after = snap();
  EXPECT_EQ(after.classes[0].live_blocks, before.classes[0].live_blocks);
  EXPECT_EQ(after.small_frees - before.small_frees, 1000u);
}

TEST(SizeClasses, PerClassCountersFollowAllocations) {
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    Snapshot before = snap();
    EXPECT_EQ(before.classes[cls].block_size, class_size(cls));
    std::vector<void*> v;
    for (int i = 0; i < 100; ++i) v.push_back(malloc_impl(class_size(cls)));
    Snapshot mid = snap();
    EXPECT_EQ(mid.classes[cls].allocs - before.classes[cls].allocs, 100u) << cls;
    EXPECT_EQ(mid.classes[cls].live_blocks - before.classes[cls].live_blocks, 100u) << cls;
    EXPECT_EQ(mid.small_allocs - before.small_allocs, 100u) << cls;
    for (void* p : v) free_impl(p);
    Snapshot after = snap();
    EXPECT_EQ(after.classes[cls].frees - before.classes[cls].frees, 100u) << cls;
    EXPECT_EQ(after.classes[cls].live_blocks, before.classes[cls].live_blocks) << cls;
  }
}

TEST(SizeClasses, LargeRequestsAreNotPoolPointers) {
  for (size_t n : {kPoolMax + 1, kPoolMax + 16, size_t{100000}, size_t{4} << 20}) {
    Snapshot before = snap();
    void* p = malloc_impl(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_FALSE(is_pool_pointer(p)) << n;
    EXPECT_TRUE(is_aligned(p, kAlign)) << n;
    size_t usable = usable_size_impl(p);
    EXPECT_GE(usable, n);
    fill(p, usable, n);
    EXPECT_EQ(first_mismatch(p, usable, n), usable);
    Snapshot mid = snap();
    EXPECT_EQ(mid.large_allocs - before.large_allocs, 1u) << n;
    EXPECT_GE(mid.large_live_bytes - before.large_live_bytes, n) << n;
    EXPECT_EQ(mid.small_allocs, before.small_allocs) << n;
    free_impl(p);
    Snapshot after = snap();
    EXPECT_EQ(after.large_frees - before.large_frees, 1u) << n;
    EXPECT_EQ(after.large_live_bytes, before.large_live_bytes) << n;
  }
}

TEST(SizeClasses, IsPoolPointerRejectsForeignAddresses) {
  int on_stack = 0;
  static int in_data = 0;
  EXPECT_FALSE(is_pool_pointer(nullptr));
  EXPECT_FALSE(is_pool_pointer(&on_stack));
  EXPECT_FALSE(is_pool_pointer(&in_data));
  EXPECT_FALSE(is_pool_pointer(reinterpret_cast<void*>(&snap)));
  std::vector<char> v(100);
  EXPECT_FALSE(is_pool_pointer(v.data()));
  EXPECT_FALSE(is_pool_pointer(reinterpret_cast<void*>(~uintptr_t{0})));
}

TEST(SizeClasses, FreeNullIsANoOp) {
  Snapshot before = snap();
  // Through a volatile: with a constant null, GCC follows the inlined fast path into pool_of(0)
  // and warns about a read it cannot see is never made (null is not in the reservation).
  void* volatile null = nullptr;
  free_impl(null);
  free_sized_impl(nullptr, 0);
  free_sized_impl(nullptr, 100);
  Snapshot after = snap();
  EXPECT_EQ(after.small_frees, before.small_frees);
  EXPECT_EQ(after.large_frees, before.large_frees);
  EXPECT_EQ(after.invalid_frees, before.invalid_frees);
  EXPECT_EQ(usable_size_impl(nullptr), 0u);
}

TEST(SizeClasses, FreeSizedReleasesBlocks) {
  Snapshot before = snap();
  for (size_t n : {size_t{0}, size_t{1}, size_t{48}, kPoolMax, kPoolMax + 1, size_t{50000}}) {
    void* p = malloc_impl(n);
    ASSERT_NE(p, nullptr);
    free_sized_impl(p, n);
  }
  Snapshot after = snap();
  EXPECT_EQ(after.small_frees - before.small_frees, 4u);
  EXPECT_EQ(after.large_frees - before.large_frees, 2u);
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.invalid_frees, before.invalid_frees);
}

TEST(SizeClasses, FreeSizedSizeIsOnlyAHint) {
  // A wrong size must not send a block to the wrong path (small vs large) or the wrong class.
  Snapshot before = snap();
  void* small = malloc_impl(32);
  void* large = malloc_impl(100000);
  ASSERT_NE(small, nullptr);
  ASSERT_NE(large, nullptr);
  free_sized_impl(small, 100000);
  free_sized_impl(large, 8);
  Snapshot after = snap();
  EXPECT_EQ(after.small_frees - before.small_frees, 1u);
  EXPECT_EQ(after.large_frees - before.large_frees, 1u);
  EXPECT_EQ(after.classes[class_of(32)].live_blocks, before.classes[class_of(32)].live_blocks);
  EXPECT_EQ(after.large_live_bytes, before.large_live_bytes);
}

TEST(SizeClasses, FreedBlockIsReusedBySameClass) {
  // A freed block should come back soon for its class: memory does not only grow.
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    void* p = malloc_impl(class_size(cls));
    free_impl(p);
    bool reused = false;
    std::vector<void*> v;
    for (size_t i = 0; i < pool_capacity(cls) * 2 && !reused; ++i) {
      void* q = malloc_impl(class_size(cls));
      reused = (q == p);
      v.push_back(q);
    }
    EXPECT_TRUE(reused) << "class " << cls;
    for (void* q : v) free_impl(q);
  }
}

}  // namespace
}  // namespace pg::test
