// memalign, posix_memalign and aligned_alloc over every power-of-two alignment up to 1 MiB.
#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <vector>

#include "test_util.h"

namespace pg::test {
namespace {

const std::vector<size_t>& sizes() {
  static const std::vector<size_t> v = {
      0,   1,   7,   8,    15,   16,   17,   31,    32,     33,
      48,  63,  64,  65,   100,  127,  128,  129,   200,    255,
      256, 257, 300, 1000, 4095, 4096, 4097, 65536, 100000, (size_t{1} << 20) + 1};
  return v;
}

std::vector<size_t> power_of_two_alignments() {
  std::vector<size_t> v;
  for (size_t a = 1; a <= (size_t{1} << 20); a <<= 1) v.push_back(a);
  return v;
}

size_t round_up_pow2(size_t a) {
  size_t r = 1;
  while (r < a) r <<= 1;
  return r;
}

// Checks one aligned block and frees it.
void check_block(void* p, size_t alignment, size_t size, const char* fn) {
  ASSERT_NE(p, nullptr) << fn << " align " << alignment << " size " << size;
  size_t want = alignment < kAlign ? kAlign : alignment;
  EXPECT_TRUE(is_aligned(p, want)) << fn << " align " << alignment << " size " << size << " " << p;
  bool small = size <= kPoolMax && alignment <= kMaxPoolAlign;
  EXPECT_EQ(is_pool_pointer(p), small) << fn << " align " << alignment << " size " << size;
  size_t usable = usable_size_impl(p);
  EXPECT_GE(usable, size) << fn << " align " << alignment << " size " << size;
  uint64_t seed = alignment * 1000003 + size;
  fill(p, usable, seed);
  EXPECT_EQ(first_mismatch(p, usable, seed), usable) << fn;
  free_impl(p);
}

TEST(Alignment, MemalignAllPowersOfTwo) {
  Snapshot before = snap();
  for (size_t a : power_of_two_alignments()) {
    for (size_t n : sizes()) check_block(memalign_impl(a, n), a, n, "memalign");
  }
  Snapshot after = snap();
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.large_live_bytes, before.large_live_bytes);
}

TEST(Alignment, MemalignRoundsOtherAlignmentsUp) {
  for (size_t a : {size_t{3}, size_t{24}, size_t{48}, size_t{100}, size_t{129}, size_t{1000},
                   size_t{3000}, size_t{5000}}) {
    for (size_t n : sizes()) {
      void* p = memalign_impl(a, n);
      ASSERT_NE(p, nullptr) << a << " " << n;
      EXPECT_TRUE(is_aligned(p, round_up_pow2(a))) << a << " " << n << " " << p;
      EXPECT_GE(usable_size_impl(p), n);
      fill(p, usable_size_impl(p), a);
      free_impl(p);
    }
  }
}

TEST(Alignment, MemalignZeroAlignmentActsLikeMalloc) {
  void* p = memalign_impl(0, 40);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(is_aligned(p, kAlign));
  EXPECT_GE(usable_size_impl(p), 40u);
  free_impl(p);
}

TEST(Alignment, PosixMemalignAllPowersOfTwo) {
  for (size_t a : power_of_two_alignments()) {
    if (a < sizeof(void*)) continue;
    for (size_t n : sizes()) {
      void* p = reinterpret_cast<void*>(uintptr_t{0x1});
      ASSERT_EQ(posix_memalign_impl(&p, a, n), 0) << a << " " << n;
      check_block(p, a, n, "posix_memalign");
    }
  }
}

TEST(Alignment, PosixMemalignRejectsBadAlignmentsAndLeavesOutUntouched) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0xdeadbeef});
  // Not a power of two, or not a multiple of sizeof(void*), or zero.
  for (size_t a : {size_t{0}, size_t{1}, size_t{2}, size_t{4}, size_t{3}, size_t{12}, size_t{24},
                   size_t{48}, size_t{100}, size_t{4097}, (size_t{1} << 20) + 8}) {
    Snapshot before = snap();
    void* p = sentinel;
    errno = 0;
    EXPECT_EQ(posix_memalign_impl(&p, a, 64), EINVAL) << a;
    EXPECT_EQ(p, sentinel) << a;
    // posix_memalign returns the error; it does not have to set errno, but must not allocate.
    Snapshot after = snap();
    EXPECT_EQ(after.small_allocs, before.small_allocs) << a;
    EXPECT_EQ(after.large_allocs, before.large_allocs) << a;
  }
}

TEST(Alignment, PosixMemalignHugeSizeIsENOMEMAndLeavesOutUntouched) {
  void* const sentinel = reinterpret_cast<void*>(uintptr_t{0xdeadbeef});
  for (size_t n : {SIZE_MAX, SIZE_MAX - 4096, SIZE_MAX / 2 + 1}) {
    void* p = sentinel;
    EXPECT_EQ(posix_memalign_impl(&p, 4096, n), ENOMEM) << n;
    EXPECT_EQ(p, sentinel);
  }
}

TEST(Alignment, AlignedAllocAllPowersOfTwo) {
  for (size_t a : power_of_two_alignments()) {
    for (size_t n : sizes()) check_block(aligned_alloc_impl(a, n), a, n, "aligned_alloc");
  }
}

TEST(Alignment, AlignedAllocRejectsNonPowerOfTwo) {
  for (size_t a : {size_t{3}, size_t{12}, size_t{24}, size_t{48}, size_t{100}, size_t{1000},
                   size_t{4097}, size_t{3} << 20}) {
    Snapshot before = snap();
    errno = 0;
    EXPECT_EQ(aligned_alloc_impl(a, 64), nullptr) << a;
    EXPECT_EQ(errno, EINVAL) << a;
    Snapshot after = snap();
    EXPECT_EQ(after.small_allocs, before.small_allocs) << a;
    EXPECT_EQ(after.large_allocs, before.large_allocs) << a;
  }
}

TEST(Alignment, HugeAlignedRequestsFailCleanly) {
  // size + alignment + header overflows: must be NULL + ENOMEM, not a tiny block.
  for (size_t a : {size_t{16}, size_t{256}, size_t{4096}, size_t{1} << 20}) {
    for (size_t n : {SIZE_MAX, SIZE_MAX - a, SIZE_MAX - a - 16, SIZE_MAX / 2 + 1}) {
      errno = 0;
      EXPECT_EQ(memalign_impl(a, n), nullptr) << a << " " << n;
      EXPECT_EQ(errno, ENOMEM) << a << " " << n;
      errno = 0;
      EXPECT_EQ(aligned_alloc_impl(a, n), nullptr) << a << " " << n;
      EXPECT_EQ(errno, ENOMEM) << a << " " << n;
    }
  }
  // An alignment so large it cannot be honoured.
  errno = 0;
  EXPECT_EQ(memalign_impl(size_t{1} << 63, 16), nullptr);
  EXPECT_TRUE(errno == ENOMEM || errno == EINVAL) << errno;
}

TEST(Alignment, SmallAlignedBlocksStayInPoolsAndAreDistinct) {
  // Many live blocks for each (alignment <= kMaxPoolAlign, size <= kPoolMax) pair, so that
  // several pools of each class are used and the alignment holds for blocks deep in a pool.
  for (size_t a = 1; a <= kMaxPoolAlign; a <<= 1) {
    for (size_t n : {size_t{1}, size_t{16}, size_t{24}, size_t{100}, size_t{200}, kPoolMax}) {
      std::vector<void*> v;
      for (int i = 0; i < 300; ++i) {
        void* p = memalign_impl(a, n);
        ASSERT_NE(p, nullptr);
        EXPECT_TRUE(is_aligned(p, a < kAlign ? kAlign : a)) << a << " " << n << " " << p;
        EXPECT_TRUE(is_pool_pointer(p)) << a << " " << n;
        EXPECT_GE(usable_size_impl(p), n);
        fill(p, n, v.size());
        v.push_back(p);
      }
      for (size_t i = 0; i < v.size(); ++i) {
        EXPECT_EQ(first_mismatch(v[i], n, i), n) << a << " " << n << " block " << i;
        free_impl(v[i]);
      }
    }
  }
}

TEST(Alignment, ReallocOfAlignedBlockPreservesContents) {
  for (size_t a : {size_t{64}, size_t{4096}, size_t{1} << 16}) {
    void* p = memalign_impl(a, 200);
    ASSERT_NE(p, nullptr);
    fill(p, 200, a);
    void* q = realloc_impl(p, 5000);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(first_mismatch(q, 200, a), 200u);
    void* r = realloc_impl(q, 100);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(first_mismatch(r, 100, a), 100u);
    free_impl(r);
  }
}

}  // namespace
}  // namespace pg::test
