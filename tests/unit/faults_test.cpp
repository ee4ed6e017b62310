// Memory refused at chosen points (base/fault.h, pgcore_faults): the injection plans themselves,
// then the core under them. What must hold whatever the platform refuses: no crash, no NULL where
// another path can serve the request (a small request whose pool cannot be had is glibc's),
// blocks already handed out keep their contents and free normally, free() keeps errno, and once
// the faults stop the core works again and its figures come back: pools, live blocks, large
// bytes, heaps, and metadata that does not grow with each refusal.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "base/os.h"
#include "faults_util.h"
#include "front/init.h"
#include "pool/heap.h"
#include "pool/limit.h"

namespace pg::test {
namespace {

// The largest class whose pools are one unit (16 KiB): the fewest blocks per pool, and pools that
// fill the arenas unit by unit (the spans of the larger classes would leave single units free).
constexpr size_t kBigClass = class_of(3584);
constexpr size_t kBigSize = class_size(kBigClass);
static_assert(class_units(kBigClass) == 1);

size_t page() {
  return os::page_size();
}

// ---- The plans, through the platform layer directly ----------------------------------------

TEST(FaultPlan, NthRefusesThatCallOnly) {
  FaultScope scope;
  fault::fail_nth_for_testing(Call::kMap, 3);
  void* maps[5];
  for (int i = 0; i < 5; ++i) {
    errno = 0;
    maps[i] = os::map(page());
    if (i == 2) {
      EXPECT_EQ(maps[i], nullptr);
      EXPECT_EQ(errno, ENOMEM);
    } else {
      ASSERT_NE(maps[i], nullptr) << i;
      static_cast<char*>(maps[i])[0] = 1;  // really mapped
    }
  }
  EXPECT_EQ(fault::calls_for_testing(Call::kMap), 5u);
  EXPECT_EQ(fault::refusals_for_testing(Call::kMap), 1u);
  for (void* p : maps) {
    if (p != nullptr) {
      EXPECT_TRUE(os::unmap(p, page()));
    }
  }
}

TEST(FaultPlan, AfterNRefusesEveryLaterCall) {
  FaultScope scope;
  char* r = static_cast<char*>(os::reserve_aligned(8 * page(), page()));
  ASSERT_NE(r, nullptr);
  fault::fail_after_for_testing(Call::kCommit, 2);
  for (size_t i = 0; i < 6; ++i) {
    errno = 0;
    bool ok = os::commit(r + i * page(), page());
    EXPECT_EQ(ok, i < 2) << i;
    if (ok) {
      r[i * page()] = 7;  // committed pages are writable
    } else {
      EXPECT_EQ(errno, ENOMEM) << i;
    }
  }
  EXPECT_EQ(fault::refusals_for_testing(Call::kCommit), 4u);
  fault::clear_for_testing(Call::kCommit);
  EXPECT_EQ(fault::calls_for_testing(Call::kCommit), 0u);  // cleared plans restart their counts
  EXPECT_TRUE(os::commit(r + 5 * page(), page()));
  r[5 * page()] = 1;
  EXPECT_EQ(fault::calls_for_testing(Call::kCommit), 1u);  // counted with no plan too
  EXPECT_TRUE(os::unmap(r, 8 * page()));
}

// The decisions of a random plan over `n` calls of os::map.
std::vector<bool> random_decisions(double p, uint64_t seed, int n) {
  fault::fail_randomly_for_testing(Call::kMap, p, seed);
  std::vector<bool> refused;
  for (int i = 0; i < n; ++i) {
    void* m = os::map(page());
    refused.push_back(m == nullptr);
    if (m != nullptr) os::unmap(m, page());
  }
  return refused;
}

TEST(FaultPlan, RandomIsSeededAndNearItsProbability) {
  FaultScope scope;
  constexpr int kN = 2000;
  std::vector<bool> a = random_decisions(0.3, 42, kN);
  EXPECT_EQ(fault::calls_for_testing(Call::kMap), static_cast<uint64_t>(kN));
  uint64_t refused = fault::refusals_for_testing(Call::kMap);
  EXPECT_GT(refused, kN * 0.25);
  EXPECT_LT(refused, kN * 0.35);
  EXPECT_EQ(random_decisions(0.3, 42, kN), a) << "same seed, same calls refused";
  EXPECT_NE(random_decisions(0.3, 43, kN), a);
  std::vector<bool> none = random_decisions(0, 1, 100);
  EXPECT_EQ(std::vector<bool>(100, false), none);
  std::vector<bool> all = random_decisions(1, 1, 100);
  EXPECT_EQ(std::vector<bool>(100, true), all);
}

TEST(FaultPlan, EachKindHasItsOwnPlan) {
  FaultScope scope;
  fault::fail_after_for_testing(Call::kMapAligned, 0);
  errno = 0;
  EXPECT_EQ(os::map_aligned(kArenaSize, kArenaSize), nullptr);
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(fault::calls_for_testing(Call::kMap), 0u) << "map_aligned is not a map call";
  void* m = os::map(page());  // another kind: not refused
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(os::unmap(m, page()));

  fault::fail_after_for_testing(Call::kReserve, 0);
  errno = 0;
  EXPECT_EQ(os::reserve_aligned(kArenaSize, kArenaSize), nullptr);
  EXPECT_EQ(errno, ENOMEM);
}

TEST(FaultPlan, RefusedUnmapAndDecommitLeaveTheMemoryAsItWas) {
  FaultScope scope;
  char* m = static_cast<char*>(os::map(2 * page()));
  ASSERT_NE(m, nullptr);
  fill(m, 2 * page(), 5);
  fault::fail_nth_for_testing(Call::kUnmap, 1);
  errno = 0;
  EXPECT_FALSE(os::unmap(m, 2 * page()));
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(first_mismatch(m, 2 * page(), 5), 2 * page());  // still mapped, still there

  fault::fail_nth_for_testing(Call::kDecommit, 1);
  errno = 0;
  os::decommit(m, 2 * page());
  EXPECT_EQ(errno, ENOMEM);
  EXPECT_EQ(first_mismatch(m, 2 * page(), 5), 2 * page());  // refused: pages kept
  os::decommit(m, 2 * page());
  EXPECT_TRUE(all_bytes(m, 2 * page(), 0));  // the second one went through
  EXPECT_TRUE(os::unmap(m, 2 * page()));
}

TEST(FaultPlan, ProtectNoneRefusedStepByStep) {
  FaultScope scope;
  const size_t n = 4 * page();
  char* r = static_cast<char*>(os::reserve_aligned(n, page()));
  ASSERT_NE(r, nullptr);
  ASSERT_TRUE(os::commit(r, n));

  // Without release: one mprotect, refused; the pages stay accessible with their contents.
  fill(r, n, 9);
  fault::fail_nth_for_testing(Call::kProtect, 1);
  EXPECT_FALSE(os::protect_none(r, n, false));
  EXPECT_EQ(first_mismatch(r, n, 9), n);

  // With release, the remap refused: the fallback (madvise, then mprotect) still gets there.
  fault::fail_nth_for_testing(Call::kProtect, 1);
  fault::clear_for_testing(Call::kDecommit);
  EXPECT_TRUE(os::protect_none(r, n, true));
  EXPECT_EQ(fault::calls_for_testing(Call::kProtect), 2u);
  EXPECT_EQ(fault::calls_for_testing(Call::kDecommit), 1u);
  ASSERT_TRUE(os::commit(r, n));
  EXPECT_TRUE(all_bytes(r, n, 0)) << "the fallback's madvise gave the memory back";

  // Remap and mprotect both refused: false, the pages still accessible, but given back.
  fill(r, n, 10);
  fault::fail_after_for_testing(Call::kProtect, 0);
  EXPECT_FALSE(os::protect_none(r, n, true));
  EXPECT_TRUE(all_bytes(r, n, 0));

  // The remap and the madvise refused, the mprotect not: the pages are inaccessible but not
  // given back, so false.
  fill(r, n, 12);
  fault::fail_nth_for_testing(Call::kProtect, 1);
  fault::fail_nth_for_testing(Call::kDecommit, 1);
  EXPECT_FALSE(os::protect_none(r, n, true));
  ASSERT_TRUE(os::commit(r, n));
  EXPECT_EQ(first_mismatch(r, n, 12), n);

  // Everything refused: false, and the pages hold what they held.
  fill(r, n, 11);
  fault::fail_after_for_testing(Call::kProtect, 0);
  fault::fail_after_for_testing(Call::kDecommit, 0);
  EXPECT_FALSE(os::protect_none(r, n, true));
  EXPECT_EQ(first_mismatch(r, n, 11), n);
  fault::clear_all_for_testing();
  EXPECT_TRUE(os::unmap(r, n));
}

// ---- Small requests: pools and arenas refused -------------------------------------------------

// Uses up the metadata chunk in hand (base/meta.cpp), so that the next metadata allocation (an
// arena descriptor, a thread heap) must map a new chunk: a kMap call. A request of a chunk minus
// 32 bytes either fits what is left, or gets a fresh chunk of its own; either way at most 32 bytes
// stay, less than any descriptor or heap.
void exhaust_metadata() {
  constexpr size_t kChunk = 256 * 1024;
  ASSERT_NE(meta_alloc(kChunk - 32, 32), nullptr);
}

// One kind of call under one plan.
struct Refusal {
  Call call;
  enum When { kNth, kAfter, kRandom } when;
  uint64_t n;  // kNth: the call refused; kAfter: the calls let through
  double p;    // kRandom
};

void apply(const Refusal& r, uint64_t seed) {
  switch (r.when) {
    case Refusal::kNth:
      fault::fail_nth_for_testing(r.call, r.n);
      break;
    case Refusal::kAfter:
      fault::fail_after_for_testing(r.call, r.n);
      break;
    case Refusal::kRandom:
      fault::fail_randomly_for_testing(r.call, r.p, seed);
      break;
  }
}

struct Scenario {
  const char* name;
  std::vector<Refusal> refusals;
  Call until;          // allocate until this kind of call has been made ...
  uint64_t min_calls;  // ... this many times
  bool exhaust_meta;   // make the next metadata allocation map (kMap scenarios)
  bool all_refused;    // no new pool can be had at all once `until` is reached
};

std::ostream& operator<<(std::ostream& os, const Scenario& s) {
  return os << s.name;
}

class FaultsSmall : public ::testing::TestWithParam<Scenario> {};

// Calls refused so far, of every kind.
uint64_t refusals() {
  uint64_t n = 0;
  for (Call c : kAllCalls) n += fault::refusals_for_testing(c);
  return n;
}

// Allocates a little of every size class, through every allocation function, with realloc
// chains across the small/large boundary: enough of each class to need a pool beyond the current
// one, so that every class asks its arenas while the plan is in force.
void mixed_workload(std::vector<Block>& blocks, uint64_t* seed, std::mt19937_64& rng) {
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    size_t size = class_size(cls);
    size_t n = pool_capacity(cls) + 8;
    for (size_t i = 0; i < n; ++i) {
      Op op = static_cast<Op>(rng() % 5);
      size_t align = size_t{16} << (rng() % 4);  // 16..128: the pools honour these
      if (op == Op::kAlignedAlloc || op == Op::kMemalign || op == Op::kPosixMemalign) {
        if (size % align != 0) align = kAlign;
      }
      size_t want = size - (rng() % kAlign);
      if (op == Op::kAlignedAlloc && want % align != 0) want = size;
      blocks.push_back(alloc_block(op, want, align, ++*seed));
    }
  }
  // Over-aligned small requests that the pools cannot honour, and page-aligned ones.
  for (size_t align : {size_t{256}, size_t{4096}}) {
    blocks.push_back(alloc_block(Op::kMemalign, 100, align, ++*seed));
    blocks.push_back(alloc_block(Op::kPosixMemalign, 200, align, ++*seed));
  }
  // realloc up and down across every boundary, contents kept at each step.
  for (int chain = 0; chain < 20; ++chain) {
    static constexpr size_t kSteps[] = {8, 16, 100, 255, 256, 257, 4000, 70000, 300, 200, 16, 1};
    Block b = alloc_block(Op::kMalloc, kSteps[0], kAlign, ++*seed);
    for (size_t k = 1; k < std::size(kSteps) && b.p != nullptr; ++k) {
      size_t keep = b.size < kSteps[k] ? b.size : kSteps[k];
      void* q = realloc_impl(b.p, kSteps[k]);
      EXPECT_NE(q, nullptr) << "realloc to " << kSteps[k];
      if (q == nullptr) break;
      EXPECT_EQ(first_mismatch(q, keep, b.seed), keep) << "realloc to " << kSteps[k];
      EXPECT_GE(usable_size_impl(q), kSteps[k]);
      b.p = q;
      b.size = kSteps[k];
      b.seed = ++*seed;
      fill(q, b.size, b.seed);
    }
    blocks.push_back(b);
  }
}

TEST_P(FaultsSmall, RefusedPoolsAreServedAndTheCoreRecovers) {
  const Scenario& sc = GetParam();
  FaultScope scope;
  free_impl(malloc_impl(16));  // this thread's heap exists before the baseline
  if (sc.exhaust_meta) exhaust_metadata();
  Baseline before = baseline();
  std::vector<Block> blocks;
  uint64_t seed = 1000;
  std::mt19937_64 rng(7);

  for (const Refusal& r : sc.refusals) apply(r, 99);
  // 256-byte blocks until the arenas have been asked as often as the scenario needs: first the
  // room left in the arenas in use and in the released ones is taken, then new arenas are asked.
  constexpr size_t kMaxBlocks = 400000;  // 100 MiB: a bound, never reached
  size_t outside = 0;
  size_t n = 0;
  while (fault::calls_for_testing(sc.until) < sc.min_calls && !(sc.all_refused && refusals() > 0) &&
         n < kMaxBlocks) {
    Block b = alloc_block(n % 3 == 0 ? Op::kCalloc : Op::kMalloc, kBigSize, kAlign, ++seed);
    ASSERT_NE(b.p, nullptr);
    outside += !is_pool_pointer(b.p);
    blocks.push_back(b);
    ++n;
  }
  ASSERT_LT(n, kMaxBlocks) << "the plan's calls were never reached";
  // Then more of them, and every other kind of request, with the plan still in force.
  for (size_t i = 0; i < 2000; ++i) {
    Block b = alloc_block(Op::kMalloc, kBigSize - i % 16, kAlign, ++seed);
    ASSERT_NE(b.p, nullptr);
    outside += !is_pool_pointer(b.p);
    blocks.push_back(b);
  }
  size_t before_mixed = blocks.size();
  mixed_workload(blocks, &seed, rng);
  uint64_t refused = refusals();
  if (sc.all_refused) {
    EXPECT_GE(outside, 1000u) << "with every arena refused, small requests go to glibc";
    size_t mixed_outside = 0;
    for (size_t i = before_mixed; i < blocks.size(); ++i) {
      mixed_outside += blocks[i].p != nullptr && !is_pool_pointer(blocks[i].p);
    }
    EXPECT_GT(mixed_outside, kNumClasses) << "every class needed a pool it could not have";
  }
  Snapshot mid = snap();
  expect_invariants(mid);
  fault::clear_all_for_testing();

  // Every block handed out under the plan is intact, and the pools work again.
  for (const Block& b : blocks) ASSERT_TRUE(intact(b)) << b.p;
  for (size_t i = 0; i < 2 * pool_capacity(kBigClass); ++i) {
    Block b = alloc_block(Op::kMalloc, kBigSize, kAlign, ++seed);
    ASSERT_NE(b.p, nullptr);
    blocks.push_back(b);
  }
  EXPECT_TRUE(is_pool_pointer(blocks.back().p)) << "the pools serve again once faults stop";
  std::shuffle(blocks.begin(), blocks.end(), rng);
  check_and_free_all(blocks);
  expect_back_to(before);
  RecordProperty("refused", static_cast<int>(refused));
  RecordProperty("outside", static_cast<int>(outside));
}

// Arenas come from the reservation by commit (mprotect); when that is refused, map_aligned maps
// one outside it (a fallback arena); only when both are refused, or the descriptor's metadata
// (map) is, does the pool fail, and the request is glibc's.
const Scenario kScenarios[] = {
    {"commit_first", {{Call::kCommit, Refusal::kNth, 1, 0}}, Call::kCommit, 2, false, false},
    {"commit_third", {{Call::kCommit, Refusal::kNth, 3, 0}}, Call::kCommit, 4, false, false},
    {"commit_after_1", {{Call::kCommit, Refusal::kAfter, 1, 0}}, Call::kCommit, 4, false, false},
    {"commit_random", {{Call::kCommit, Refusal::kRandom, 0, 0.5}}, Call::kCommit, 6, false, false},
    {"arena_first",
     {{Call::kCommit, Refusal::kNth, 1, 0}, {Call::kMapAligned, Refusal::kNth, 1, 0}},
     Call::kCommit,
     2,
     false,
     false},
    {"arena_second",
     {{Call::kCommit, Refusal::kNth, 2, 0}, {Call::kMapAligned, Refusal::kNth, 1, 0}},
     Call::kCommit,
     3,
     false,
     false},
    {"arena_all",
     {{Call::kCommit, Refusal::kAfter, 0, 0}, {Call::kMapAligned, Refusal::kAfter, 0, 0}},
     Call::kCommit,
     1,
     false,
     true},
    {"arena_after_2",
     {{Call::kCommit, Refusal::kAfter, 2, 0}, {Call::kMapAligned, Refusal::kAfter, 0, 0}},
     Call::kCommit,
     3,
     false,
     true},
    {"arena_random",
     {{Call::kCommit, Refusal::kRandom, 0, 0.6}, {Call::kMapAligned, Refusal::kRandom, 0, 0.6}},
     Call::kCommit,
     8,
     false,
     false},
    {"meta_first", {{Call::kMap, Refusal::kNth, 1, 0}}, Call::kMap, 1, true, false},
    {"meta_all", {{Call::kMap, Refusal::kAfter, 0, 0}}, Call::kMap, 1, true, true},
    {"meta_random", {{Call::kMap, Refusal::kRandom, 0, 0.5}}, Call::kMap, 1, true, false},
    {"everything_all",
     {{Call::kMap, Refusal::kAfter, 0, 0},
      {Call::kMapAligned, Refusal::kAfter, 0, 0},
      {Call::kReserve, Refusal::kAfter, 0, 0},
      {Call::kCommit, Refusal::kAfter, 0, 0},
      {Call::kUnmap, Refusal::kAfter, 0, 0},
      {Call::kDecommit, Refusal::kAfter, 0, 0},
      {Call::kProtect, Refusal::kAfter, 0, 0}},
     Call::kCommit,
     1,
     false,
     true},
    {"everything_random",
     {{Call::kMap, Refusal::kRandom, 0, 0.3},
      {Call::kMapAligned, Refusal::kRandom, 0, 0.3},
      {Call::kCommit, Refusal::kRandom, 0, 0.3},
      {Call::kUnmap, Refusal::kRandom, 0, 0.3},
      {Call::kDecommit, Refusal::kRandom, 0, 0.3}},
     Call::kCommit,
     8,
     false,
     false},
};

INSTANTIATE_TEST_SUITE_P(Plans, FaultsSmall, ::testing::ValuesIn(kScenarios),
                         [](const ::testing::TestParamInfo<Scenario>& info) {
                           return std::string(info.param.name);
                         });

// An arena that cannot be had must not cost anything that stays: a program refused memory over
// and over (each small request retries its arena) must not see poolguard's metadata grow.
TEST(FaultsSmallLeak, RepeatedArenaRefusalsKeepMetadataBounded) {
  FaultScope scope;
  free_impl(malloc_impl(16));
  Baseline before = baseline();
  std::vector<Block> blocks;
  uint64_t seed = 5000;
  fault::fail_after_for_testing(Call::kCommit, 0);
  fault::fail_after_for_testing(Call::kMapAligned, 0);
  while (fault::calls_for_testing(Call::kCommit) == 0 && blocks.size() < 400000) {
    blocks.push_back(alloc_block(Op::kMalloc, kBigSize, kAlign, ++seed));
  }
  ASSERT_GT(fault::calls_for_testing(Call::kCommit), 0u);
  for (int i = 0; i < 20000; ++i) {
    blocks.push_back(alloc_block(Op::kMalloc, kBigSize, kAlign, ++seed));
    ASSERT_FALSE(is_pool_pointer(blocks.back().p));
  }
  EXPECT_GE(fault::refusals_for_testing(Call::kCommit), 20000u);
  size_t grown = meta_mapped() - before.meta;
  EXPECT_LE(grown, kMetaSlack) << "metadata mapped grew by " << grown << " bytes over "
                               << fault::refusals_for_testing(Call::kCommit) << " refusals";
  fault::clear_all_for_testing();
  check_and_free_all(blocks);
  expect_back_to(before);
}

// ---- Thread heaps refused ---------------------------------------------------------------------

// Threads that start while metadata is refused get no heap: their small requests are glibc's,
// and they get a heap once it is allowed again.
TEST(FaultsThreads, HeapsRefusedAtCreation) {
  FaultScope scope;
  free_impl(malloc_impl(16));
  Baseline before = baseline();
  exhaust_metadata();
  before.meta = meta_mapped();
  fault::fail_after_for_testing(Call::kMap, 0);

  // Threads stay alive until all are done, so that none can take a heap another one left: the
  // recycled heaps run out, and the next thread needs a new one.
  std::atomic<bool> release{false};
  std::atomic<int> pooled{0}, outside{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 128 && fault::calls_for_testing(Call::kMap) == 0; ++t) {
    std::atomic<bool> done{false};
    threads.emplace_back([&, t] {
      std::vector<Block> mine;
      for (int i = 0; i < 200; ++i) {
        mine.push_back(alloc_block(i % 2 ? Op::kCalloc : Op::kMalloc, 16 + i % 200, kAlign,
                                   uint64_t(t) * 1000 + i));
      }
      (is_pool_pointer(mine[0].p) ? pooled : outside).fetch_add(1);
      for (const Block& b : mine) bad += !intact(b);
      done = true;
      while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      check_and_free_all(mine);
    });
    while (!done.load()) std::this_thread::yield();
  }
  EXPECT_GT(fault::refusals_for_testing(Call::kMap), 0u) << "no thread needed a new heap";
  EXPECT_GE(outside.load(), 1) << "a thread without a heap is served by glibc";
  EXPECT_EQ(bad.load(), 0);
  release = true;
  for (std::thread& t : threads) t.join();

  // Allowed again: a new thread gets a heap of its own (new metadata).
  fault::clear_all_for_testing();
  std::vector<std::thread> more;
  std::atomic<int> pooled_after{0};
  for (int t = 0; t < 4; ++t) {
    more.emplace_back([&] {
      void* p = malloc_impl(48);
      pooled_after += is_pool_pointer(p);
      free_impl(p);
    });
  }
  for (std::thread& t : more) t.join();
  EXPECT_EQ(pooled_after.load(), 4);
  expect_back_to(before);
}

// Many threads, cross-thread frees and thread exits, with every kind of call refused at random:
// nothing crashes, nothing is corrupted, and the figures come back.
TEST(FaultsThreads, ManyThreadsUnderRandomRefusals) {
  FaultScope scope;
  free_impl(malloc_impl(16));
  Baseline before = baseline();
  constexpr int kThreads = 6;
  constexpr int kOps = 30000;
  fault::fail_randomly_for_testing(Call::kMap, 0.3, 1);
  fault::fail_randomly_for_testing(Call::kMapAligned, 0.5, 2);
  fault::fail_randomly_for_testing(Call::kCommit, 0.5, 3);
  fault::fail_randomly_for_testing(Call::kUnmap, 0.5, 4);
  fault::fail_randomly_for_testing(Call::kDecommit, 0.5, 5);

  std::mutex mail_lock;
  std::vector<Block> mailbox;  // blocks handed from one thread to another, freed remotely
  std::atomic<int> bad{0}, nulls{0};
  auto worker = [&](int t) {
    std::mt19937_64 rng(static_cast<uint64_t>(t) * 7919);
    std::vector<Block> live;
    uint64_t seed = static_cast<uint64_t>(t) << 40;
    for (int i = 0; i < kOps; ++i) {
      int what = static_cast<int>(rng() % 100);
      if (what < 45 || live.empty()) {
        // Most within one-unit pools; a quarter across the spans' classes and the large threshold.
        size_t size = rng() % 4 == 0 ? 257 + rng() % (kPoolMax + 4000) : rng() % (kBigSize + 1);
        Block b{calloc_impl(1, size), size, ++seed};
        if (b.p == nullptr) {
          ++nulls;
          continue;
        }
        bad += !all_bytes(b.p, size, 0);
        fill(b.p, size, b.seed);
        live.push_back(b);
      } else if (what < 85) {
        size_t k = rng() % live.size();
        bad += !intact(live[k]);
        errno = kErrnoSentinel;
        free_impl(live[k].p);
        bad += errno != kErrnoSentinel;
        live[k] = live.back();
        live.pop_back();
      } else if (what < 95) {
        size_t k = rng() % live.size();
        size_t size = rng() % 600;
        if (size == 0) size = 1;
        void* q = realloc_impl(live[k].p, size);
        if (q == nullptr) {
          ++nulls;
          continue;
        }
        size_t keep = live[k].size < size ? live[k].size : size;
        bad += first_mismatch(q, keep, live[k].seed) != keep;
        live[k] = Block{q, size, ++seed};
        fill(q, size, live[k].seed);
      } else {
        size_t k = rng() % live.size();
        std::lock_guard<std::mutex> g(mail_lock);
        mailbox.push_back(live[k]);
        live[k] = live.back();
        live.pop_back();
        if (mailbox.size() > 64) {  // take someone else's (or our own) oldest
          Block b = mailbox.front();
          mailbox.erase(mailbox.begin());
          bad += !intact(b);
          free_impl(b.p);
        }
      }
      // Now and then a burst of full pools and back, so that arenas come and go under the plan.
      if (i % 5000 == 4999) {
        std::vector<Block> burst;
        for (size_t k = 0; k < 4 * kDataPoolsPerArena * pool_capacity(kBigClass) / kThreads; ++k) {
          Block b{malloc_impl(kBigSize), kBigSize, ++seed};
          if (b.p == nullptr) {
            ++nulls;
            continue;
          }
          fill(b.p, b.size, b.seed);
          burst.push_back(b);
        }
        for (const Block& b : burst) {
          bad += !intact(b);
          free_impl(b.p);
        }
        thread_collect();
      }
    }
    for (const Block& b : live) {
      bad += !intact(b);
      free_impl(b.p);
    }
    // Thread exit abandons the heap under the plan too.
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (std::thread& t : threads) t.join();
  EXPECT_GT(refusals(), 0u) << "the plan refused nothing";
  fault::clear_all_for_testing();
  for (const Block& b : mailbox) {
    bad += !intact(b);
    free_impl(b.p);
  }
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(nulls.load(), 0) << "glibc serves what the pools cannot";
  expect_back_to(before);
}

// ---- Large requests: glibc's path, never the platform's ---------------------------------------

TEST(FaultsLarge, LargePathMakesNoPlatformCall) {
  FaultScope scope;
  // The thread's large statistics are registered on its first large block: before the baseline.
  free_impl(malloc_impl(100000));
  Baseline before = baseline();
  for (Call c : kAllCalls) fault::fail_after_for_testing(c, 0);
  std::vector<Block> blocks;
  uint64_t seed = 77;
  for (size_t size :
       {kPoolMax + 1, size_t{50000}, size_t{65536}, size_t{300000}, size_t{4} << 20}) {
    blocks.push_back(alloc_block(Op::kMalloc, size, kAlign, ++seed));
    blocks.push_back(alloc_block(Op::kCalloc, size, kAlign, ++seed));
    blocks.push_back(alloc_block(Op::kMemalign, size, 4096, ++seed));
    blocks.push_back(alloc_block(Op::kPosixMemalign, size, 256, ++seed));
    blocks.push_back(alloc_block(Op::kAlignedAlloc, size, 64, ++seed));
    Block r = alloc_block(Op::kMalloc, size, kAlign, ++seed);
    void* q = realloc_impl(r.p, 3 * size);
    ASSERT_NE(q, nullptr);
    EXPECT_EQ(first_mismatch(q, size, r.seed), size);
    blocks.push_back(Block{q, size, r.seed});
  }
  for (Block& b : blocks) ASSERT_FALSE(is_pool_pointer(b.p));
  check_and_free_all(blocks);
  for (Call c : kAllCalls) {
    EXPECT_EQ(fault::calls_for_testing(c), 0u) << fault::call_name_for_testing(c);
  }
  fault::clear_all_for_testing();
  expect_back_to(before);
}

// ---- Free paths: decommit (madvise) refused -------------------------------------------------

// Frees that give pools and arenas back (madvise), local, remote and into abandoned pools, with
// every platform call refused: no crash, errno kept, and the memory given back "in name" (its
// madvise refused) is sound to reuse, calloc's zeroes included.
TEST(FaultsFree, FreesWithEveryCallRefused) {
  FaultScope scope;
  free_impl(malloc_impl(16));
  Baseline before = baseline();
  uint64_t seed = 9000;
  // Enough 256-byte blocks for several new arenas, so that freeing them releases arenas.
  const size_t cap = pool_capacity(kBigClass);
  const size_t n =
      before.s.classes[kBigClass].free_blocks + (before.s.arenas_in_use * kDataPoolsPerArena -
                                                 before.s.pools_in_use + 4 * kDataPoolsPerArena) *
                                                    cap;
  std::vector<Block> mine;
  for (size_t i = 0; i < n; ++i) mine.push_back(alloc_block(Op::kMalloc, kBigSize, kAlign, ++seed));

  // A thread that has exited (its pools abandoned) and one still running (remote frees).
  std::vector<Block> orphans, remote;
  std::thread([&] {
    for (size_t i = 0; i < 3 * cap; ++i) {
      orphans.push_back(alloc_block(Op::kMalloc, 100 + i % 100, kAlign, ++seed));
    }
  }).join();
  std::atomic<bool> filled{false}, release{false};
  std::thread owner([&] {
    for (size_t i = 0; i < 3 * cap; ++i) {
      remote.push_back(alloc_block(Op::kMalloc, 64, kAlign, 1u << 30 | i));
    }
    filled = true;
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    thread_collect();
  });
  while (!filled.load()) std::this_thread::yield();

  for (Call c : kAllCalls) fault::fail_after_for_testing(c, 0);
  std::mt19937_64 rng(3);
  std::shuffle(mine.begin(), mine.end(), rng);
  check_and_free_all(mine);
  check_and_free_all(orphans);
  check_and_free_all(remote);
  thread_collect();  // purges the free pools: more madvise, refused
  EXPECT_GT(fault::refusals_for_testing(Call::kDecommit), 0u) << "no madvise was refused";
  release = true;
  owner.join();
  fault::clear_all_for_testing();
  expect_back_to(before);

  // The arenas released without their madvise are used again: what calloc hands out is zero, and
  // malloc'ed blocks hold what is written into them.
  for (size_t i = 0; i < n; ++i) {
    mine.push_back(alloc_block(i % 2 ? Op::kCalloc : Op::kMalloc, kBigSize, kAlign, ++seed));
  }
  check_and_free_all(mine);
  expect_back_to(before);
}

TEST(FaultsFree, DecommitRefusedAtRandom) {
  FaultScope scope;
  free_impl(malloc_impl(16));
  Baseline before = baseline();
  uint64_t seed = 12000;
  std::mt19937_64 rng(11);
  const size_t n = 6 * kDataPoolsPerArena * pool_capacity(kBigClass);
  fault::fail_randomly_for_testing(Call::kDecommit, 0.5, 17);
  for (int round = 0; round < 3; ++round) {
    std::vector<Block> blocks;
    for (size_t i = 0; i < n; ++i) {
      blocks.push_back(
          alloc_block(i % 3 ? Op::kMalloc : Op::kCalloc, kBigSize - i % 32, kAlign, ++seed));
    }
    std::shuffle(blocks.begin(), blocks.end(), rng);
    check_and_free_all(blocks);
    thread_collect();
  }
  EXPECT_GT(fault::refusals_for_testing(Call::kDecommit), 0u);
  fault::clear_all_for_testing();
  expect_back_to(before);
}

// ---- With a heap limit: what a refusal charged is given back ----------------------------------

// Registered a second time with POOLGUARD_LIMIT set (the limit is read once, at initialisation):
// a pool charged to the limit and then refused by the arenas is released again.
TEST(FaultsLimit, RefusedPoolsAreNotCharged) {
  ASSERT_TRUE(ensure_init());  // the limit is read there
  if (!limit_enabled()) GTEST_SKIP() << "needs POOLGUARD_LIMIT";
  FaultScope scope;
  free_impl(malloc_impl(16));
  Baseline before = baseline();
  LimitCounters l0;
  limit_counters(&l0);
  fault::fail_after_for_testing(Call::kCommit, 0);
  fault::fail_after_for_testing(Call::kMapAligned, 0);
  std::vector<Block> blocks;
  uint64_t seed = 31;
  while (fault::calls_for_testing(Call::kCommit) == 0 && blocks.size() < 400000) {
    blocks.push_back(alloc_block(Op::kMalloc, kBigSize, kAlign, ++seed));
  }
  for (int i = 0; i < 1000; ++i) blocks.push_back(alloc_block(Op::kMalloc, 48, kAlign, ++seed));
  fault::clear_all_for_testing();
  check_and_free_all(blocks);
  thread_collect();
  LimitCounters l1;
  limit_counters(&l1);
  EXPECT_EQ(l1.in_use, l0.in_use) << "charges left behind by refused pools";
  expect_back_to(before);
}

}  // namespace
}  // namespace pg::test
