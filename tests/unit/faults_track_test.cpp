// Memory refused under leak tracking (pgcore_faults, POOLGUARD_LEAKS=1, which the core reads at
// its first initialisation): every request is a tracked glibc block with a record in the
// tracker's tables. A record that cannot be had (a table that cannot grow) must not fail the
// request: the block is served untracked, and frees, reallocs and sizes work for it as for any.
#include <gtest/gtest.h>

#include <cerrno>
#include <random>
#include <vector>

#include "faults_util.h"
#include "front/init.h"
#include "track/tracker.h"

namespace pg::test {
namespace {

bool tracked(const void* p) {
  size_t n;
  return tracked_may_own(p) && tracked_size(p, &n);
}

TEST(FaultsTrack, RefusedRecordsServeUntrackedBlocks) {
  ASSERT_TRUE(ensure_init());
  ASSERT_TRUE(tracking_all()) << "run with POOLGUARD_LEAKS=1";
  FaultScope scope;
  Block warm = alloc_block(Op::kMalloc, 24, kAlign, 1);  // the depot and a first table exist
  ASSERT_TRUE(tracked(warm.p));
  Baseline before = baseline();

  // Every table (one per shard of addresses) grows as its blocks do; refused, new blocks go
  // untracked.
  fault::fail_after_for_testing(Call::kMap, 0);
  std::vector<Block> blocks;
  std::mt19937_64 rng(5);
  uint64_t seed = 10;
  size_t untracked = 0;
  for (int i = 0; i < 20000; ++i) {
    size_t size = rng() % 3 == 0 ? 257 + rng() % 5000 : rng() % 257;
    blocks.push_back(alloc_block(static_cast<Op>(rng() % 5), size, 64, ++seed));
    ASSERT_NE(blocks.back().p, nullptr);
    untracked += !tracked(blocks.back().p);
  }
  EXPECT_GT(fault::refusals_for_testing(Call::kMap), 0u);
  EXPECT_GT(untracked, 0u) << "no record was refused";
  // realloc of tracked and untracked blocks alike, up and down.
  for (size_t i = 0; i < blocks.size(); i += 7) {
    Block& b = blocks[i];
    size_t size = 1 + rng() % 3000;
    void* q = realloc_impl(b.p, size);
    ASSERT_NE(q, nullptr);
    size_t keep = b.size < size ? b.size : size;
    EXPECT_EQ(first_mismatch(q, keep, b.seed), keep);
    EXPECT_GE(usable_size_impl(q), size);
    b = Block{q, size, ++seed};
    fill(q, size, b.seed);
  }
  std::shuffle(blocks.begin(), blocks.end(), rng);
  check_and_free_all(blocks);

  fault::clear_all_for_testing();
  Block again = alloc_block(Op::kMalloc, 24, kAlign, 2);
  EXPECT_TRUE(tracked(again.p)) << "tracked again once the tables may grow";
  check_and_free(again);
  expect_back_to(before);
  check_and_free(warm);
  RecordProperty("untracked", static_cast<int>(untracked));
}

}  // namespace
}  // namespace pg::test
