// Helpers shared by the fault-injection tests (they link pgcore_faults): plans that end with their
// scope, blocks whose contents are checked before they are freed, and the figures of the core
// that must come back once the faults stop.
#pragma once

#include <gtest/gtest.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/fault.h"
#include "base/meta.h"
#include "front/alloc.h"
#include "test_util.h"

namespace pg::test {

using fault::Call;

inline constexpr Call kAllCalls[] = {Call::kMap,   Call::kMapAligned, Call::kReserve, Call::kCommit,
                                     Call::kUnmap, Call::kDecommit,   Call::kProtect};

// Every plan is cleared when this goes out of scope, also when an assertion leaves the test
// early, so that no test starts with memory refused.
class FaultScope {
 public:
  FaultScope() { fault::clear_all_for_testing(); }
  ~FaultScope() { fault::clear_all_for_testing(); }
  FaultScope(const FaultScope&) = delete;
  FaultScope& operator=(const FaultScope&) = delete;
};

// errno as free() and posix_memalign must leave it: a value no system call sets.
inline constexpr int kErrnoSentinel = EILSEQ;

enum class Op { kMalloc, kCalloc, kMemalign, kPosixMemalign, kAlignedAlloc };

struct Block {
  void* p = nullptr;
  size_t size = 0;
  uint64_t seed = 0;
};

// Allocates `size` bytes through `op` (aligned ops use `align`), checks what the malloc family
// promises of a success (alignment, usable size, calloc's zeroes), and fills the block with its
// pattern. p stays nullptr, with a test failure, when the allocation fails.
inline Block alloc_block(Op op, size_t size, size_t align, uint64_t seed) {
  Block b{nullptr, size, seed};
  size_t want_align = kAlign;
  switch (op) {
    case Op::kMalloc:
      b.p = malloc_impl(size);
      break;
    case Op::kCalloc:
      b.p = calloc_impl(1, size);
      if (b.p != nullptr) {
        EXPECT_TRUE(all_bytes(b.p, size, 0)) << "calloc(" << size << ") dirty";
      }
      break;
    case Op::kMemalign:
      b.p = memalign_impl(align, size);
      want_align = align;
      break;
    case Op::kPosixMemalign: {
      errno = kErrnoSentinel;
      void* out = nullptr;
      int rc = posix_memalign_impl(&out, align, size);
      EXPECT_EQ(rc, 0) << "posix_memalign(" << align << ", " << size << ")";
      EXPECT_EQ(errno, kErrnoSentinel) << "posix_memalign changed errno";
      b.p = rc == 0 ? out : nullptr;
      want_align = align;
      break;
    }
    case Op::kAlignedAlloc:
      b.p = aligned_alloc_impl(align, size);
      want_align = align;
      break;
  }
  EXPECT_NE(b.p, nullptr) << "op " << static_cast<int>(op) << " size " << size;
  if (b.p == nullptr) return b;
  EXPECT_TRUE(is_aligned(b.p, want_align < kAlign ? kAlign : want_align)) << b.p;
  EXPECT_GE(usable_size_impl(b.p), size) << b.p;
  fill(b.p, size, seed);
  return b;
}

inline bool intact(const Block& b) {
  return b.p == nullptr || first_mismatch(b.p, b.size, b.seed) == b.size;
}

// Checks the block's contents, frees it, and checks that free() kept errno.
inline void check_and_free(const Block& b) {
  if (b.p == nullptr) return;
  size_t bad = first_mismatch(b.p, b.size, b.seed);
  EXPECT_EQ(bad, b.size) << "block " << b.p << " of " << b.size << " bytes changed at " << bad;
  errno = kErrnoSentinel;
  free_impl(b.p);
  EXPECT_EQ(errno, kErrnoSentinel) << "free(" << b.p << ") changed errno";
}

inline void check_and_free_all(std::vector<Block>& blocks) {
  for (const Block& b : blocks) check_and_free(b);
  blocks.clear();
}

// A snapshot after the calling thread has handed back its empty pools and collected the
// abandoned ones.
inline Snapshot settled_snap() {
  thread_collect();
  return snap();
}

// The core's own figures at rest, taken before a test and compared after it.
struct Baseline {
  Snapshot s;
  size_t meta;
};

inline Baseline baseline() {
  Baseline b;
  b.s = settled_snap();
  b.meta = meta_mapped();
  return b;
}

// Metadata is never given back, so a test that creates arenas or heaps may map some: up to one
// chunk (base/meta.cpp maps 256 KiB at a time) is that; more means state leaked with each refusal.
inline constexpr size_t kMetaSlack = 256 * 1024;

// Pools hold exactly their live and free blocks, class by class.
inline void expect_invariants(const Snapshot& s) {
  uint64_t pools = 0;
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    const ClassSnapshot& c = s.classes[cls];
    EXPECT_EQ(c.allocs - c.frees, c.live_blocks) << "class " << cls;
    EXPECT_EQ(c.pools * pool_capacity(cls), c.live_blocks + c.free_blocks) << "class " << cls;
    pools += c.pools * class_units(cls);  // pools_in_use counts units
  }
  EXPECT_EQ(pools, s.pools_in_use);
  EXPECT_LE(s.pools_in_use, s.arenas_in_use * kDataPoolsPerArena);
  EXPECT_LE(s.arenas_released, s.arenas_mapped);
}

// Everything a test allocated has been freed: the core is back where it was (pools, live blocks,
// large bytes, heaps), give or take the one empty arena kept as a spare, and metadata grew by
// no more than kMetaSlack.
inline void expect_back_to(const Baseline& before) {
  Snapshot after = settled_snap();
  expect_invariants(after);
  EXPECT_EQ(after.pools_in_use, before.s.pools_in_use);
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    EXPECT_EQ(after.classes[cls].live_blocks, before.s.classes[cls].live_blocks) << "class " << cls;
    EXPECT_EQ(after.classes[cls].pools, before.s.classes[cls].pools) << "class " << cls;
  }
  EXPECT_EQ(after.large_live_bytes, before.s.large_live_bytes);
  EXPECT_LE(after.arenas_in_use, before.s.arenas_in_use + 1);
  EXPECT_EQ(after.heaps_created - after.heaps_abandoned,
            before.s.heaps_created - before.s.heaps_abandoned);
  EXPECT_LE(meta_mapped() - before.meta, kMetaSlack) << "metadata grew";
}

}  // namespace pg::test
