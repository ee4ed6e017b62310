// The C semantics of the malloc family: errno, overflow, zeroing, glibc's realloc rules, page
// alignment, and the exactness of usable_size.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "test_util.h"

namespace pg::test {
namespace {

size_t page_size() {
  return static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

TEST(Semantics, MallocHugeIsNullAndENOMEM) {
  // Sizes where adding a header or rounding up would wrap around.
  for (size_t n :
       {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 8, SIZE_MAX - 15, SIZE_MAX - 16, SIZE_MAX - 4095,
        SIZE_MAX - 4096, size_t{PTRDIFF_MAX}, size_t{PTRDIFF_MAX} + 1, SIZE_MAX / 2 - 15}) {
    Snapshot before = snap();
    errno = 0;
    EXPECT_EQ(malloc_impl(n), nullptr) << n;
    EXPECT_EQ(errno, ENOMEM) << n;
    Snapshot after = snap();
    EXPECT_EQ(after.large_live_bytes, before.large_live_bytes) << n;
  }
}

TEST(Semantics, CallocOverflowIsNullAndENOMEM) {
  struct Case {
    size_t n, size;
  };
  for (Case c : {Case{SIZE_MAX, 2}, Case{2, SIZE_MAX}, Case{size_t{1} << 32, size_t{1} << 32},
                 Case{(SIZE_MAX / 16) + 1, 16}, Case{3, SIZE_MAX / 2}, Case{SIZE_MAX, SIZE_MAX}}) {
    errno = 0;
    EXPECT_EQ(calloc_impl(c.n, c.size), nullptr) << c.n << " x " << c.size;
    EXPECT_EQ(errno, ENOMEM) << c.n << " x " << c.size;
  }
  // A product that just fits in size_t but is far too big for memory.
  errno = 0;
  EXPECT_EQ(calloc_impl(SIZE_MAX / 16, 16), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Semantics, CallocZeroCountsAreUniqueAndFreeable) {
  void* a = calloc_impl(0, 16);
  void* b = calloc_impl(16, 0);
  void* c = calloc_impl(0, 0);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(a, b);
  EXPECT_NE(b, c);
  EXPECT_NE(a, c);
  free_impl(a);
  free_impl(b);
  free_impl(c);
}

TEST(Semantics, CallocZeroesFreshAndReusedSmallBlocks) {
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    size_t n = class_size(cls);
    // Dirty a batch of blocks and free them, so that calloc has to hand out recycled memory.
    std::vector<void*> dirty;
    for (int i = 0; i < 64; ++i) {
      void* p = malloc_impl(n);
      ASSERT_NE(p, nullptr);
      std::memset(p, 0xAB, usable_size_impl(p));
      dirty.push_back(p);
    }
    for (void* p : dirty) free_impl(p);
    std::vector<void*> zeroed;
    size_t reused = 0;
    for (int i = 0; i < 64; ++i) {
      void* p = calloc_impl(1, n);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(all_bytes(p, usable_size_impl(p), 0)) << "class " << cls << " block " << i;
      for (void* d : dirty) reused += (d == p);
      zeroed.push_back(p);
    }
    // The check above only means something if recycled blocks were seen.
    EXPECT_GT(reused, 0u) << "class " << cls;
    for (void* p : zeroed) free_impl(p);
  }
}

TEST(Semantics, CallocZeroesOddSizesAndLargeBlocks) {
  for (size_t n : {size_t{3}, size_t{7}, size_t{33}, size_t{250}, size_t{257}, size_t{4000},
                   size_t{70000}, size_t{1} << 20, (size_t{1} << 22) + 3}) {
    for (int round = 0; round < 3; ++round) {
      void* d = malloc_impl(n);
      ASSERT_NE(d, nullptr);
      std::memset(d, 0xCD, usable_size_impl(d));
      free_impl(d);
      void* p = calloc_impl(n, 1);
      ASSERT_NE(p, nullptr) << n;
      EXPECT_TRUE(all_bytes(p, usable_size_impl(p), 0)) << n;
      free_impl(p);
      // The same total split as count x size.
      p = calloc_impl(1, n);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(all_bytes(p, n, 0)) << n;
      free_impl(p);
    }
  }
}

TEST(Semantics, ReallocNullIsMalloc) {
  for (size_t n : {size_t{0}, size_t{10}, kPoolMax, kPoolMax + 1, size_t{100000}}) {
    void* p = realloc_impl(nullptr, n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_GE(usable_size_impl(p), n);
    EXPECT_EQ(is_pool_pointer(p), n <= kPoolMax);
    free_impl(p);
  }
}

TEST(Semantics, ReallocToZeroFreesAndReturnsNull) {
  {
    void* p = malloc_impl(40);
    ASSERT_NE(p, nullptr);
    Snapshot before = snap();
    EXPECT_EQ(realloc_impl(p, 0), nullptr);
    Snapshot after = snap();
    EXPECT_EQ(after.small_frees - before.small_frees, 1u);
    EXPECT_EQ(after.classes[class_of(40)].live_blocks + 1,
              before.classes[class_of(40)].live_blocks);
  }
  {
    void* p = malloc_impl(50000);
    ASSERT_NE(p, nullptr);
    Snapshot before = snap();
    EXPECT_EQ(realloc_impl(p, 0), nullptr);
    Snapshot after = snap();
    EXPECT_EQ(after.large_frees - before.large_frees, 1u);
    EXPECT_LT(after.large_live_bytes, before.large_live_bytes);
  }
}

TEST(Semantics, ReallocPreservesContentsAcrossTheThresholdBothWays) {
  const size_t steps[] = {1,   16,   17,  100, 255, 256,   257, 300,     1000, 256, 255,
                          100, 4096, 256, 257, 16,  70000, 20,  1 << 20, 200,  1,   300};
  Snapshot before = snap();
  size_t cur = 0;
  void* p = nullptr;
  for (size_t next : steps) {
    void* q = realloc_impl(p, next);
    ASSERT_NE(q, nullptr) << cur << " -> " << next;
    size_t kept = cur < next ? cur : next;
    EXPECT_EQ(first_mismatch(q, kept, 77), kept) << cur << " -> " << next;
    EXPECT_GE(usable_size_impl(q), next);
    if (next > kPoolMax) {
      EXPECT_FALSE(is_pool_pointer(q)) << cur << " -> " << next;
    }
    fill(q, next, 77);
    p = q;
    cur = next;
  }
  free_impl(p);
  Snapshot after = snap();
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.large_live_bytes, before.large_live_bytes);
}

TEST(Semantics, ReallocEveryPairOfSmallSizes) {
  // Every 5th size up to a KiB, then steps of a sixteenth: both sides of every class boundary
  // and of the large threshold, in a few hundred sizes.
  auto next = [](size_t n, size_t step) { return n + (n < 1024 ? step : n / 16); };
  for (size_t from = 1; from <= kPoolMax + 16; from = next(from, 5)) {
    for (size_t to = 1; to <= kPoolMax + 16; to = next(to, 7)) {
      void* p = malloc_impl(from);
      ASSERT_NE(p, nullptr);
      fill(p, from, from);
      void* q = realloc_impl(p, to);
      ASSERT_NE(q, nullptr);
      size_t kept = from < to ? from : to;
      ASSERT_EQ(first_mismatch(q, kept, from), kept) << from << " -> " << to;
      EXPECT_GE(usable_size_impl(q), to);
      free_impl(q);
    }
  }
}

TEST(Semantics, ReallocFailureLeavesTheBlockAlone) {
  for (size_t n : {size_t{48}, size_t{3000}}) {
    void* p = malloc_impl(n);
    ASSERT_NE(p, nullptr);
    fill(p, n, 5);
    for (size_t huge : {SIZE_MAX, SIZE_MAX - 16, size_t{PTRDIFF_MAX} + 1}) {
      errno = 0;
      EXPECT_EQ(realloc_impl(p, huge), nullptr) << n << " -> " << huge;
      EXPECT_EQ(errno, ENOMEM);
      EXPECT_EQ(first_mismatch(p, n, 5), n);
      EXPECT_GE(usable_size_impl(p), n);
    }
    free_impl(p);
  }
}

TEST(Semantics, ReallocarrayChecksOverflow) {
  void* p = malloc_impl(64);
  ASSERT_NE(p, nullptr);
  fill(p, 64, 9);
  errno = 0;
  EXPECT_EQ(reallocarray_impl(p, SIZE_MAX / 2, 3), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(reallocarray_impl(p, size_t{1} << 33, size_t{1} << 33), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  // The original block is untouched by a refused reallocarray.
  EXPECT_EQ(first_mismatch(p, 64, 9), 64u);
  void* q = reallocarray_impl(p, 100, 8);
  ASSERT_NE(q, nullptr);
  EXPECT_GE(usable_size_impl(q), 800u);
  EXPECT_EQ(first_mismatch(q, 64, 9), 64u);
  free_impl(q);
  // reallocarray(NULL, ...) allocates.
  void* r = reallocarray_impl(nullptr, 4, 4);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(is_pool_pointer(r));
  free_impl(r);
  errno = 0;
  EXPECT_EQ(reallocarray_impl(nullptr, SIZE_MAX, 2), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Semantics, VallocIsPageAligned) {
  const size_t page = page_size();
  for (size_t n : {size_t{0}, size_t{1}, size_t{16}, size_t{256}, page - 1, page, page + 1,
                   10 * page, size_t{1} << 20}) {
    void* p = valloc_impl(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(is_aligned(p, page)) << n << " " << p;
    // Up to kPoolMax, the classes that are multiples of a page serve it (pool/config.h).
    EXPECT_EQ(is_pool_pointer(p), n <= kPoolMax && page <= kMaxPoolAlign) << n;
    EXPECT_GE(usable_size_impl(p), n);
    fill(p, usable_size_impl(p), n);
    free_impl(p);
  }
}

TEST(Semantics, PvallocRoundsUpToWholePages) {
  const size_t page = page_size();
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, page - 1, page, page + 1, 3 * page + 5}) {
    void* p = pvalloc_impl(n);
    ASSERT_NE(p, nullptr) << n;
    EXPECT_TRUE(is_aligned(p, page)) << n;
    size_t want = n == 0 ? page : (n + page - 1) / page * page;
    size_t usable = usable_size_impl(p);
    EXPECT_GE(usable, want) << n;
    fill(p, usable, n);
    EXPECT_EQ(first_mismatch(p, usable, n), usable);
    free_impl(p);
  }
  errno = 0;
  EXPECT_EQ(pvalloc_impl(SIZE_MAX - 10), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  errno = 0;
  EXPECT_EQ(valloc_impl(SIZE_MAX - 10), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(Semantics, UsableSizeIsExactForPoolsAndTheSlackIsWritable) {
  // Allocate neighbours on both sides so that writing the slack would be seen in them.
  for (size_t n = 0; n <= kPoolMax; ++n) {
    void* a = malloc_impl(n);
    void* p = malloc_impl(n);
    void* b = malloc_impl(n);
    ASSERT_TRUE(a && p && b);
    size_t ua = usable_size_impl(a), up = usable_size_impl(p), ub = usable_size_impl(b);
    EXPECT_EQ(up, class_size(class_of(n))) << n;
    fill(a, ua, 1);
    fill(b, ub, 3);
    fill(p, up, 2);
    EXPECT_EQ(first_mismatch(a, ua, 1), ua) << n;
    EXPECT_EQ(first_mismatch(b, ub, 3), ub) << n;
    EXPECT_EQ(first_mismatch(p, up, 2), up) << n;
    free_impl(a);
    free_impl(p);
    free_impl(b);
  }
}

TEST(Semantics, UsableSizeOfLargeBlocksCoversTheRequestAndIsWritable) {
  std::vector<void*> live;
  for (size_t n : {kPoolMax + 1, size_t{300}, size_t{1000}, size_t{1023}, size_t{4096},
                   size_t{65537}, size_t{200000}, size_t{1} << 21}) {
    void* p = malloc_impl(n);
    ASSERT_NE(p, nullptr);
    size_t u = usable_size_impl(p);
    EXPECT_GE(u, n);
    // Not absurdly larger than asked: the header is bookkeeping, not usable space.
    EXPECT_LT(u, n + 4096 + 64) << n;
    fill(p, u, n);
    live.push_back(p);
  }
  size_t i = 0;
  for (size_t n : {kPoolMax + 1, size_t{300}, size_t{1000}, size_t{1023}, size_t{4096},
                   size_t{65537}, size_t{200000}, size_t{1} << 21}) {
    void* p = live[i++];
    size_t u = usable_size_impl(p);
    EXPECT_EQ(first_mismatch(p, u, n), u) << n;
    free_impl(p);
  }
}

TEST(Semantics, LargeStatisticsStayExactOnEveryPath) {
  // The large path's statistics (counts and live usable bytes) through the plain path (malloc,
  // calloc, realloc), its general fallbacks every 64 operations (the trim check), over-aligned
  // blocks, mmapped chunks (glibc's threshold is 128 KiB) and a thread whose first large operation
  // is a free.
  Snapshot before = snap();
  std::vector<void*> blocks;
  uint64_t usable = 0;
  for (size_t i = 0; i < 300; ++i) {
    size_t n = i % 50 == 0 ? 200000 + i : kPoolMax + 1 + i * 37;
    void* p = nullptr;
    if (i % 7 == 0) {
      ASSERT_EQ(posix_memalign_impl(&p, 512, n), 0) << n;
    } else if (i % 3 == 0) {
      p = calloc_impl(1, n);
      ASSERT_NE(p, nullptr) << n;
      const unsigned char* c = static_cast<const unsigned char*>(p);
      EXPECT_EQ(c[0] | c[n / 2] | c[n - 1], 0) << n;
    } else {
      p = malloc_impl(n);
    }
    ASSERT_NE(p, nullptr) << n;
    usable += usable_size_impl(p);
    blocks.push_back(p);
  }
  Snapshot mid = snap();
  EXPECT_EQ(mid.large_allocs - before.large_allocs, 300u);
  // Over-aligned blocks count their request, which is also what usable_size says of them.
  EXPECT_EQ(mid.large_live_bytes - before.large_live_bytes, usable);
  // Every block resized by realloc (the plain path: glibc resizes it in place or moves it; an
  // over-aligned block moves through the general path), some across glibc's mmap threshold.
  usable = 0;
  for (size_t i = 0; i < blocks.size(); ++i) {
    size_t n = i % 11 == 0 ? 150000 + i : kPoolMax + 1 + i * 53;
    const auto mark = static_cast<unsigned char>(i);
    static_cast<unsigned char*>(blocks[i])[0] = mark;
    void* q = realloc_impl(blocks[i], n);
    ASSERT_NE(q, nullptr) << n;
    EXPECT_EQ(static_cast<unsigned char*>(q)[0], mark) << n;
    blocks[i] = q;
    usable += usable_size_impl(q);
  }
  Snapshot resized = snap();
  EXPECT_EQ(resized.large_allocs - resized.large_frees, mid.large_allocs - mid.large_frees);
  EXPECT_EQ(resized.large_frees - mid.large_frees, (blocks.size() + 6) / 7);  // over-aligned
  EXPECT_EQ(resized.large_live_bytes - before.large_live_bytes, usable);
  // Half freed by another thread, whose first large operation this is.
  std::thread t([&blocks] {
    for (size_t i = 0; i < blocks.size(); i += 2) free_impl(blocks[i]);
  });
  t.join();
  for (size_t i = 1; i < blocks.size(); i += 2) free_impl(blocks[i]);
  Snapshot after = snap();
  // The over-aligned blocks that realloc moved count one more allocation and free each.
  EXPECT_EQ(after.large_frees - before.large_frees, 300u + (resized.large_frees - mid.large_frees));
  EXPECT_EQ(after.large_allocs, resized.large_allocs);
  EXPECT_EQ(after.large_live_bytes, before.large_live_bytes);
}

TEST(Semantics, ErrnoUntouchedOnSuccess) {
  errno = 1234;
  void* p = malloc_impl(32);
  void* q = malloc_impl(5000);
  void* r = calloc_impl(4, 4);
  void* s = realloc_impl(p, 64);
  EXPECT_EQ(errno, 1234);
  free_impl(q);
  free_impl(r);
  free_impl(s);
  EXPECT_EQ(errno, 1234);
}

TEST(Semantics, ForeignGlibcPointersAreForwarded) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
  GTEST_SKIP() << "the sanitizer owns malloc here; __libc_free would not know its blocks";
#else
  // Blocks poolguard did not hand out go to glibc's free/realloc.
  void* g = std::malloc(100);
  ASSERT_NE(g, nullptr);
  EXPECT_FALSE(is_pool_pointer(g));
  // glibc's own usable size, read from its chunk header.
  EXPECT_GE(usable_size_impl(g), 100u);
  std::memset(g, 0x5A, 100);
  void* h = realloc_impl(g, 20000);
  ASSERT_NE(h, nullptr);
  EXPECT_TRUE(all_bytes(h, 100, 0x5A));
  free_impl(h);
  void* k = std::malloc(5000);
  Snapshot before = snap();
  free_impl(k);
  Snapshot after = snap();
  // A plain large block is glibc's chunk untouched, so a foreign block is freed (and counted)
  // exactly like one; it is not an invalid free.
  EXPECT_EQ(after.large_frees, before.large_frees + 1);
  EXPECT_EQ(after.invalid_frees, before.invalid_frees);
#endif
}

}  // namespace
}  // namespace pg::test
