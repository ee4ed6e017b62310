// Bad frees and free-list corruption: detected, counted and reported in kReport mode, fatal with a
// precise message in the default kAbort mode.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace pg::test {
namespace {

using ::testing::internal::CaptureStderr;
using ::testing::internal::GetCapturedStderr;

// Errors are reported and counted instead of aborting for the duration of each test.
class ErrorsReport : public ::testing::Test {
 protected:
  ScopedErrorMode mode_{ErrorMode::kReport};
};

uintptr_t addr(const void* p) {
  return reinterpret_cast<uintptr_t>(p);
}
void* at(uintptr_t a) {
  return reinterpret_cast<void*>(a);
}
uintptr_t pool_base(const void* p) {
  return addr(p) & ~(kPoolSize - 1);
}

// Allocates `count` blocks of `size` bytes and checks that no two are the same, none is in
// `live` (blocks the test still owns) and each is writable. Frees them all.
void expect_distinct_allocations(size_t size, size_t count, const std::set<void*>& live) {
  std::vector<void*> got;
  std::set<void*> seen;
  for (size_t i = 0; i < count; ++i) {
    void* p = malloc_impl(size);
    ASSERT_NE(p, nullptr);
    EXPECT_TRUE(seen.insert(p).second)
        << "block " << p << " handed out twice (allocation " << i << ")";
    EXPECT_EQ(live.count(p), 0u) << "live block " << p << " handed out again";
    std::memset(p, 0x77, size);
    got.push_back(p);
  }
  for (void* p : got) free_impl(p);
}

TEST_F(ErrorsReport, ModeCanBeSwitched) {
  EXPECT_EQ(error_mode(), ErrorMode::kReport);
  {
    ScopedErrorMode abort_mode(ErrorMode::kAbort);
    EXPECT_EQ(error_mode(), ErrorMode::kAbort);
  }
  EXPECT_EQ(error_mode(), ErrorMode::kReport);
}

TEST_F(ErrorsReport, ImmediateDoubleFreeIsDetectedAndHarmless) {
  for (size_t size : {size_t{16}, size_t{64}, size_t{100}, kPoolMax}) {
    void* keep = malloc_impl(size);
    void* p = malloc_impl(size);
    ASSERT_NE(p, nullptr);
    Snapshot before = snap();
    free_impl(p);
    CaptureStderr();
    free_impl(p);
    std::string err = GetCapturedStderr();
    Snapshot after = snap();
    EXPECT_EQ(after.double_frees - before.double_frees, 1u) << size;
    EXPECT_EQ(after.invalid_frees, before.invalid_frees) << size;
    EXPECT_NE(err.find("poolguard: ERROR: double-free"), std::string::npos) << err;
    // The bad free must not have been counted as a free.
    EXPECT_EQ(after.small_frees - before.small_frees, 1u) << size;
    EXPECT_EQ(after.classes[class_of(size)].live_blocks + 1,
              before.classes[class_of(size)].live_blocks);
    expect_distinct_allocations(size, 3 * pool_capacity(class_of(size)), {keep});
    free_impl(keep);
  }
}

TEST_F(ErrorsReport, DoubleFreeAfterOtherFreesIsDetected) {
  // a is no longer at the head of the free list when it is freed again.
  void* a = malloc_impl(48);
  void* b = malloc_impl(48);
  void* c = malloc_impl(48);
  void* keep = malloc_impl(48);
  Snapshot before = snap();
  free_impl(a);
  free_impl(b);
  free_impl(c);
  free_impl(a);
  free_impl(c);
  Snapshot after = snap();
  EXPECT_EQ(after.double_frees - before.double_frees, 2u);
  EXPECT_EQ(after.small_frees - before.small_frees, 3u);
  expect_distinct_allocations(48, 3 * pool_capacity(class_of(48)), {keep});
  free_impl(keep);
}

TEST_F(ErrorsReport, InteriorPointersAreInvalidFrees) {
  void* p = malloc_impl(64);
  ASSERT_NE(p, nullptr);
  fill(p, 64, 64);
  Snapshot before = snap();
  CaptureStderr();
  free_impl(static_cast<char*>(p) + 8);
  free_impl(static_cast<char*>(p) + 16);
  free_impl(static_cast<char*>(p) + 63);
  std::string err = GetCapturedStderr();
  Snapshot after = snap();
  EXPECT_EQ(after.invalid_frees - before.invalid_frees, 3u);
  EXPECT_EQ(after.double_frees, before.double_frees);
  EXPECT_EQ(after.small_frees, before.small_frees);
  EXPECT_NE(err.find("poolguard: ERROR: invalid-free"), std::string::npos) << err;
  // The block is still live and intact, and frees normally.
  EXPECT_EQ(first_mismatch(p, 64, 64), 64u);
  EXPECT_EQ(usable_size_impl(p), 64u);
  free_impl(p);
  Snapshot last = snap();
  EXPECT_EQ(last.small_frees - after.small_frees, 1u);
  EXPECT_EQ(last.invalid_frees, after.invalid_frees);
  EXPECT_EQ(last.double_frees, after.double_frees);
}

TEST_F(ErrorsReport, ReallocOfInteriorPointerIsInvalid) {
  void* p = malloc_impl(64);
  ASSERT_NE(p, nullptr);
  fill(p, 64, 3);
  Snapshot before = snap();
  // Reported; whatever realloc returns then (NULL or a new block) must be a usable block, and the
  // block the pointer falls into is left alone.
  void* q = realloc_impl(static_cast<char*>(p) + 16, 200);
  Snapshot after = snap();
  EXPECT_EQ(after.invalid_frees - before.invalid_frees, 1u);
  EXPECT_EQ(first_mismatch(p, 64, 3), 64u);
  EXPECT_EQ(usable_size_impl(p), 64u);
  if (q != nullptr) {
    EXPECT_GE(usable_size_impl(q), 200u);
    std::memset(q, 0, 200);
    free_impl(q);
  }
  free_impl(p);
  EXPECT_EQ(snap().invalid_frees, after.invalid_frees);
}

// Frees address a, which is no block poolguard handed out (or one already free): one report, and
// nothing freed in class cls, which keeps `live` blocks.
void expect_one_report(uintptr_t a, const char* what, size_t cls, uint64_t live) {
  Snapshot s0 = snap();
  free_impl(at(a));
  Snapshot s1 = snap();
  EXPECT_EQ((s1.invalid_frees - s0.invalid_frees) + (s1.double_frees - s0.double_frees), 1u)
      << what;
  EXPECT_EQ(s1.small_frees, s0.small_frees) << what;
  EXPECT_EQ(s1.classes[cls].live_blocks, live) << what;
}

TEST_F(ErrorsReport, PoolAddressesNeverHandedOut) {
  // A class no other test keeps blocks of, so that every other slot of p's pool is free.
  const size_t size = 208;
  const size_t cls = class_of(size);
  const size_t cap = pool_capacity(cls);
  // Hand back this thread's empty pools, so that p comes from a fresh pool in which most slots
  // were never handed out (nor even linked into a free list yet).
  thread_collect();
  Snapshot before = snap();
  ASSERT_EQ(before.classes[cls].live_blocks, 0u) << "another test leaked blocks of this class";
  void* p = malloc_impl(size);
  ASSERT_NE(p, nullptr);
  const uintptr_t base = pool_base(p);
  const size_t index = (addr(p) - base - kPoolLead) / size;
  ASSERT_EQ(base + kPoolLead + index * size, addr(p)) << "blocks are not where config.h says";
  const uintptr_t free_slot = base + kPoolLead + ((index + 1) % cap) * size;

  struct Case {
    const char* what;
    uintptr_t a;
  };
  const Case cases[] = {
      {"free slot", free_slot},
      {"last slot", base + kPoolLead + (index == cap - 1 ? 0 : cap - 1) * size},
      {"middle slot", base + kPoolLead + ((index + cap / 2) % cap) * size},
      {"start of the pool (its lead)", base},
      {"inside the lead", base + 64},
      {"interior of a free slot", free_slot + 8},
      {"tail of the pool past the last block", base + kPoolLead + cap * size},
  };
  for (const Case& c : cases) {
    if (c.a >= base + kPoolSize) continue;  // the tail case when blocks fill the pool exactly
    expect_one_report(c.a, c.what, cls, 1);
  }
  // Nothing was corrupted: new blocks are distinct and p is never handed out while it is live.
  expect_distinct_allocations(size, 3 * cap, {p});
  free_impl(p);
}

// The same in a pool that spans units: blocks that start past the first unit are checked through
// their tail header, and every bad address, in any unit, is reported, never freed.
TEST_F(ErrorsReport, SpanAddressesNeverHandedOut) {
  const size_t size = 20480;  // 8 units, 6 blocks: most of them start past the first unit
  const size_t cls = class_of(size);
  ASSERT_EQ(class_size(cls), size);
  ASSERT_GT(class_units(cls), 1u);
  const size_t cap = pool_capacity(cls);
  thread_collect();
  Snapshot before = snap();
  ASSERT_EQ(before.classes[cls].live_blocks, 0u) << "another test leaked blocks of this class";
  // Two live blocks: the first of the pool and the third, in a later unit.
  std::vector<void*> live;
  for (int i = 0; i < 3; ++i) live.push_back(malloc_impl(size));
  free_impl(live[1]);
  live.erase(live.begin() + 1);
  const uintptr_t base = addr(live[0]) - class_lead(cls);
  ASSERT_EQ(base % (class_units(cls) * kPoolSize), 0u) << "a span is aligned to its size";
  ASSERT_EQ(addr(live[1]), base + class_lead(cls) + 2 * size) << "blocks are not in order";
  ASSERT_NE(pool_of(live[1]), pool_of(live[0])) << "the third block starts in a later unit";
  const uintptr_t first = base + class_lead(cls);
  struct Case {
    const char* what;
    uintptr_t a;
  };
  const Case cases[] = {
      {"free block in a later unit", first + size},
      {"never handed out, in a later unit", first + (cap - 1) * size},
      {"interior of a live block in a later unit", addr(live[1]) + 4096},
      {"interior of a free block", first + size + 16},
      {"the start of a later unit", base + 2 * kPoolSize},
      {"past the last block", first + cap * size},
  };
  for (const Case& c : cases) {
    expect_one_report(c.a, c.what, cls, 2);
    EXPECT_FALSE(heap_is_block(at(c.a)) && c.a != first + size) << c.what;
  }
  EXPECT_TRUE(heap_is_block(live[1]));
  EXPECT_EQ(usable_size_impl(live[1]), size);
  expect_distinct_allocations(size, 3 * cap, {live[0], live[1]});
  for (void* p : live) free_impl(p);
  EXPECT_EQ(snap().classes[cls].live_blocks, 0u);
}

TEST_F(ErrorsReport, StalePointerIntoAReleasedPool) {
  // A thread allocates and frees one block and exits: its pool goes back to the arena. Freeing
  // the block again later must be reported, not treated as a block of whatever pool is there.
  void* p = nullptr;
  std::thread t([&p] {
    p = malloc_impl(176);
    free_impl(p);
  });
  t.join();
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(is_pool_pointer(p));
  Snapshot before = snap();
  CaptureStderr();
  free_impl(p);
  std::string err = GetCapturedStderr();
  Snapshot after = snap();
  EXPECT_EQ(
      (after.invalid_frees - before.invalid_frees) + (after.double_frees - before.double_frees),
      1u);
  EXPECT_EQ(after.small_frees, before.small_frees);
  EXPECT_NE(err.find("poolguard: ERROR: "), std::string::npos) << err;
}

TEST_F(ErrorsReport, UsableSizeOfABadPointerIsZero) {
  void* p = malloc_impl(64);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(usable_size_impl(p), 64u);
  // The lead of a pool is not a block: poolguard knows no size for it.
  EXPECT_EQ(usable_size_impl(at(pool_base(p))), 0u);
  free_impl(p);
}

TEST_F(ErrorsReport, FreeIntoTheArenaHeaderPoolIsReported) {
  // An arena's first pool holds the pool headers (pool/pool.h): no address in it is a block.
  void* p = malloc_impl(48);
  ASSERT_NE(p, nullptr);
  const uintptr_t arena = addr(p) & ~(kArenaSize - 1);
  ASSERT_NE(pool_base(p), arena) << "blocks never live in the header pool";
  for (uintptr_t a : {arena, arena + kPoolLead, arena + kPoolMetaSize * 3, arena + kPoolSize / 2,
                      arena + kPoolSize - kAlign}) {
    EXPECT_EQ(usable_size_impl(at(a)), 0u) << std::hex << a - arena;
    Snapshot s0 = snap();
    free_impl(at(a));
    Snapshot s1 = snap();
    EXPECT_EQ(s1.invalid_frees - s0.invalid_frees, 1u) << std::hex << a - arena;
  }
  EXPECT_EQ(usable_size_impl(p), 48u);
  free_impl(p);
}

TEST_F(ErrorsReport, CrossThreadDoubleFreeIsDetected) {
  void* keep = malloc_impl(32);
  void* p = malloc_impl(32);
  ASSERT_NE(p, nullptr);
  Snapshot before = snap();
  std::thread t([p] {
    free_impl(p);
    free_impl(p);
  });
  t.join();
  thread_collect();  // the owner takes back the cross-thread frees
  Snapshot s = snap();
  EXPECT_EQ(s.double_frees - before.double_frees, 1u);
  EXPECT_EQ(s.classes[class_of(32)].live_blocks + 1, before.classes[class_of(32)].live_blocks);
  expect_distinct_allocations(32, 3 * pool_capacity(class_of(32)), {keep});
  free_impl(keep);
}

TEST_F(ErrorsReport, FreeListCorruptionIsCountedAndContained) {
  const size_t size = 80;
  void* keep = malloc_impl(size);
  void* p = malloc_impl(size);
  ASSERT_NE(p, nullptr);
  Snapshot before = snap();
  free_impl(p);
  const uint64_t garbage = 0x4141414141414141ull;
  std::memcpy(p, &garbage, sizeof garbage);
  CaptureStderr();
  std::vector<void*> got;
  std::set<void*> seen;
  for (size_t i = 0; i < 3 * pool_capacity(class_of(size)); ++i) {
    void* q = malloc_impl(size);
    ASSERT_NE(q, nullptr);
    EXPECT_TRUE(is_pool_pointer(q));
    EXPECT_TRUE(is_aligned(q, kAlign));
    EXPECT_TRUE(seen.insert(q).second) << q << " handed out twice";
    EXPECT_NE(q, keep);
    std::memset(q, 0, size);
    got.push_back(q);
  }
  std::string err = GetCapturedStderr();
  Snapshot after = snap();
  EXPECT_GE(after.corruptions - before.corruptions, 1u);
  EXPECT_NE(err.find("poolguard: ERROR: free-list-corruption"), std::string::npos) << err;
  for (void* q : got) free_impl(q);
  free_impl(keep);
}

// Death tests run in a re-executed child ("threadsafe"), since earlier tests made threads.
class ErrorsDeathTest : public ::testing::Test {
 protected:
  void SetUp() override { GTEST_FLAG_SET(death_test_style, "threadsafe"); }
};

TEST_F(ErrorsDeathTest, DefaultModeAbortsOnDoubleFree) {
  EXPECT_DEATH(
      {
        void* p = malloc_impl(32);
        free_impl(p);
        free_impl(p);
      },
      "poolguard: ERROR: double-free");
}

TEST_F(ErrorsDeathTest, AbortModeAbortsOnDoubleFreeOfEveryClass) {
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    EXPECT_DEATH(
        {
          set_error_mode(ErrorMode::kAbort);
          void* keep = malloc_impl(class_size(cls));
          void* p = malloc_impl(class_size(cls));
          free_impl(p);
          free_impl(p);
          free_impl(keep);
        },
        "poolguard: ERROR: double-free")
        << "class " << cls;
  }
}

TEST_F(ErrorsDeathTest, AbortModeAbortsOnInteriorPointer) {
  EXPECT_DEATH(
      {
        set_error_mode(ErrorMode::kAbort);
        void* p = malloc_impl(64);
        free_impl(static_cast<char*>(p) + 8);
      },
      "poolguard: ERROR: invalid-free");
  EXPECT_DEATH(
      {
        set_error_mode(ErrorMode::kAbort);
        void* p = malloc_impl(64);
        free_impl(at(pool_base(p)));
      },
      "poolguard: ERROR: invalid-free");
}

// Frees a block of `size` bytes, overwrites its link with `link`, then allocates from the class
// until the allocator has to follow the link.
void corrupt_and_allocate(size_t size, uint64_t link) {
  set_error_mode(ErrorMode::kAbort);
  void* keep = malloc_impl(size);  // keeps the pool in use
  void* p = malloc_impl(size);
  free_impl(p);
  std::memcpy(p, &link, sizeof link);
  for (size_t i = 0; i < 4 * pool_capacity(class_of(size)); ++i) {
    void* q = malloc_impl(size);
    if (q == keep) break;  // handed out a live block: no death, the test fails
    std::memset(q, 0, size);
  }
}

TEST_F(ErrorsDeathTest, GarbageLinkAborts) {
  EXPECT_DEATH(corrupt_and_allocate(48, 0x4141414141414141ull),
               "poolguard: ERROR: free-list-corruption");
  EXPECT_DEATH(corrupt_and_allocate(kPoolMax, 0xffffffffffffffffull),
               "poolguard: ERROR: free-list-corruption");
  EXPECT_DEATH(corrupt_and_allocate(16, 1), "poolguard: ERROR: free-list-corruption");
}

TEST_F(ErrorsDeathTest, PlainPointerToALiveBlockAborts) {
  // A use-after-free that writes a real heap address over the link: an unencoded free list
  // would hand out that live block; an encoded and checked one notices.
  EXPECT_DEATH(
      {
        set_error_mode(ErrorMode::kAbort);
        void* keep = malloc_impl(64);
        void* p = malloc_impl(64);
        free_impl(p);
        uint64_t link = addr(keep);
        std::memcpy(p, &link, sizeof link);
        for (size_t i = 0; i < 4 * pool_capacity(class_of(64)); ++i) {
          void* q = malloc_impl(64);
          if (q == keep) break;
        }
      },
      "poolguard: ERROR: free-list-corruption");
}

}  // namespace
}  // namespace pg::test
