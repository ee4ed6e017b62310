// Memory refused while the core initialises (pgcore_faults): every address-space reservation is
// refused, so there is no arena reservation (and, with POOLGUARD_GUARD=page, no page-guard region:
// the binary runs once without and once with it). Arenas are then mapped one at a time anywhere
// (fallback arenas), and page mode gives every block redzones instead.
#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "faults_util.h"
#include "front/init.h"
#include "guard/guard.h"

namespace pg::test {
namespace {

constexpr size_t kBigClass = kNumClasses - 1;

uint64_t g_reserve_calls = 0;

class RefusedInitEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    fault::clear_all_for_testing();
    fault::fail_after_for_testing(Call::kReserve, 0);
    ASSERT_TRUE(ensure_init());
    g_reserve_calls = fault::calls_for_testing(Call::kReserve);
    fault::clear_all_for_testing();
  }
};
::testing::Environment* const g_env =
    ::testing::AddGlobalTestEnvironment(new RefusedInitEnvironment);

bool page_mode() {
  const char* m = std::getenv("POOLGUARD_GUARD");
  return m != nullptr && std::strcmp(m, "page") == 0;
}

TEST(FaultsInit, ReservationRefusedAndRetriedSmaller) {
  // Halved from POOLGUARD_RESERVE (64 GiB) down to 64 MiB: 11 tries, and as many for the page
  // region in page mode.
  EXPECT_GE(g_reserve_calls, page_mode() ? 22u : 11u);
  EXPECT_EQ(snap().reserved_bytes, 0u);
}

// No reservation: the pools live in fallback arenas, found through the address map, and work as
// usual: blocks are written and freed, arenas are released and used again.
TEST(FaultsInit, FallbackArenasServeThePools) {
  if (page_mode()) GTEST_SKIP() << "no pools in page mode";
  FaultScope scope;
  free_impl(malloc_impl(16));
  Baseline before = baseline();
  std::vector<Block> blocks;
  uint64_t seed = 1;
  const size_t n = 3 * kDataPoolsPerArena * pool_capacity(kBigClass);
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < n; ++i) {
      blocks.push_back(alloc_block(i % 2 ? Op::kCalloc : Op::kMalloc, kPoolMax, kAlign, ++seed));
      ASSERT_TRUE(is_pool_pointer(blocks.back().p));
    }
    for (size_t i = 0; i < 100; ++i) {
      blocks.push_back(alloc_block(Op::kMemalign, 64 + i, 64, ++seed));
      blocks.push_back(alloc_block(Op::kMalloc, 300 + i, kAlign, ++seed));  // large: glibc
    }
    Snapshot mid = snap();
    EXPECT_GE(mid.fallback_arenas, 3u);
    EXPECT_EQ(mid.reserved_bytes, 0u);
    std::shuffle(blocks.begin(), blocks.end(), std::mt19937_64(round));
    check_and_free_all(blocks);
  }
  expect_back_to(before);
}

// Fallback arenas refused too (map_aligned): small requests go to glibc; allowed again, the
// pools take over.
TEST(FaultsInit, FallbackArenasRefused) {
  if (page_mode()) GTEST_SKIP() << "no pools in page mode";
  FaultScope scope;
  free_impl(malloc_impl(16));
  Baseline before = baseline();
  std::vector<Block> blocks;
  uint64_t seed = 1000;
  fault::fail_after_for_testing(Call::kMapAligned, 0);
  size_t outside = 0;
  for (size_t i = 0; i < 400000 && outside < 1000; ++i) {
    blocks.push_back(alloc_block(Op::kMalloc, kPoolMax, kAlign, ++seed));
    outside += !is_pool_pointer(blocks.back().p);
  }
  EXPECT_EQ(outside, 1000u);
  EXPECT_GT(fault::refusals_for_testing(Call::kMapAligned), 0u);
  fault::clear_all_for_testing();
  blocks.push_back(alloc_block(Op::kMalloc, kPoolMax, kAlign, ++seed));
  EXPECT_TRUE(is_pool_pointer(blocks.back().p));
  check_and_free_all(blocks);
  expect_back_to(before);
}

// Page mode without a page region: every block gets redzones instead.
TEST(FaultsInit, PageModeWithoutRegionUsesRedzones) {
  if (!page_mode()) GTEST_SKIP() << "page mode only";
  GuardCounters g0;
  guard_counters(&g0);
  std::vector<Block> blocks;
  for (size_t i = 0; i < 100; ++i) {
    blocks.push_back(alloc_block(static_cast<Op>(i % 5), 10 + 37 * i, 64, i));
  }
  GuardCounters g1;
  guard_counters(&g1);
  EXPECT_EQ(g1.page_blocks, g0.page_blocks);
  EXPECT_EQ(g1.redzone_blocks, g0.redzone_blocks + 100);
  check_and_free_all(blocks);
}

}  // namespace
}  // namespace pg::test
