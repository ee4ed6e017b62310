// Threads: cross-thread frees, thread exit with live blocks, heap turnover and concurrent use.
// These are the tests the TSan binary runs (suite names start with "Threads").
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace pg::test {
namespace {

// Large blocks come from glibc's malloc, whose internal locks TSan does not see: a large block
// freed by one thread and handed to another by glibc would be reported as a race. Under TSan the
// threaded tests therefore stay in the pools, whose synchronisation TSan does see.
#if defined(__SANITIZE_THREAD__)
constexpr bool kLargeInThreads = false;
#else
constexpr bool kLargeInThreads = true;
#endif

struct Block {
  void* p;
  size_t size;
  uint64_t seed;
};

Block make_block(size_t size, uint64_t seed) {
  Block b{malloc_impl(size), size, seed};
  if (b.p) fill(b.p, size, seed);
  return b;
}

// Verifies and frees; returns false (and records a failure) if the contents changed.
bool check_and_free(const Block& b) {
  size_t bad = first_mismatch(b.p, b.size, b.seed);
  EXPECT_EQ(bad, b.size) << "block " << b.p << " of " << b.size << " bytes (seed " << b.seed
                         << ") changed at offset " << bad;
  free_impl(b.p);
  return bad == b.size;
}

// A snapshot after the calling thread has collected its cross-thread frees and empty pools.
Snapshot settled_snap() {
  thread_collect();
  return snap();
}

// Makes sure the calling thread has a heap before a baseline is taken, so that creating it
// does not show up in the deltas.
void warm_up() {
  free_impl(malloc_impl(16));
}

// A bounded multi-producer queue of blocks, for handing blocks to another thread to free.
class Mailbox {
 public:
  explicit Mailbox(size_t cap) : cap_(cap) {}
  void push(const Block& b) {
    std::unique_lock<std::mutex> lock(mu_);
    not_full_.wait(lock, [&] { return q_.size() < cap_; });
    q_.push_back(b);
    not_empty_.notify_one();
  }
  // Blocks until a block or close(); false when closed and empty.
  bool pop(Block* out) {
    std::unique_lock<std::mutex> lock(mu_);
    not_empty_.wait(lock, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return false;
    *out = q_.front();
    q_.pop_front();
    not_full_.notify_one();
    return true;
  }
  bool try_push(const Block& b) {
    std::lock_guard<std::mutex> lock(mu_);
    if (q_.size() >= cap_) return false;
    q_.push_back(b);
    not_empty_.notify_one();
    return true;
  }
  bool try_pop(Block* out) {
    std::lock_guard<std::mutex> lock(mu_);
    if (q_.empty()) return false;
    *out = q_.front();
    q_.pop_front();
    not_full_.notify_one();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable not_empty_, not_full_;
  std::deque<Block> q_;
  size_t cap_;
  bool closed_ = false;
};

TEST(Threads, CrossThreadFreeBalancesCounters) {
  warm_up();
  Snapshot before = settled_snap();
  constexpr size_t kN = 20000;
  std::vector<Block> blocks;
  for (size_t i = 0; i < kN; ++i) {
    blocks.push_back(make_block(i % (kPoolMax + 1), i + 1));
    ASSERT_NE(blocks.back().p, nullptr);
  }
  std::thread freer([&] {
    for (const Block& b : blocks) check_and_free(b);
  });
  freer.join();
  Snapshot after = settled_snap();
  EXPECT_EQ(after.small_allocs - before.small_allocs, kN);
  EXPECT_EQ(after.small_frees - before.small_frees, kN);
  for (size_t cls = 0; cls < kNumClasses; ++cls) {
    EXPECT_EQ(after.classes[cls].live_blocks, before.classes[cls].live_blocks) << cls;
  }
  EXPECT_LE(after.pools_in_use, before.pools_in_use + kNumClasses);
  EXPECT_EQ(after.double_frees, before.double_frees);
  EXPECT_EQ(after.invalid_frees, before.invalid_frees);
}

// A one-shot signal between two threads.
class Signal {
 public:
  void set() {
    std::lock_guard<std::mutex> lock(mu_);
    set_ = true;
    cv_.notify_all();
  }
  void wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return set_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool set_ = false;
};

// A thread keeps the blocks of other threads' pools that it frees (Heap::foreign): they count as
// freed at once, its next allocations of their class get them back warm, and they return to their
// pool when it exits.
TEST(Threads, ForeignBlocksAreReusedByTheirFreerAndReturnAtItsExit) {
  warm_up();
  constexpr size_t kSize = 2560;  // a medium class no other test of this binary uses
  constexpr size_t kN = 10;
  const size_t cls = class_of(kSize);
  Snapshot before = settled_snap();
  std::vector<Block> blocks;
  std::set<void*> freed_set;
  for (size_t i = 0; i < kN; ++i) {
    blocks.push_back(make_block(kSize, i + 7));
    freed_set.insert(blocks.back().p);
  }
  Signal freed, go_on;
  bool reused = false;
  std::thread freer([&] {
    for (const Block& b : blocks) check_and_free(b);
    void* p = malloc_impl(kSize);
    reused = freed_set.count(p) == 1;
    free_impl(p);
    freed.set();
    go_on.wait();
  });
  freed.wait();
  Snapshot held = settled_snap();
  EXPECT_TRUE(reused) << "the freeing thread did not get a block it freed back";
  EXPECT_EQ(held.classes[cls].live_blocks, before.classes[cls].live_blocks);
  EXPECT_GT(held.pools_in_use, before.pools_in_use) << "the freer's blocks keep their pool";
  go_on.set();
  freer.join();
  Snapshot after = settled_snap();
  EXPECT_EQ(after.classes[cls].live_blocks, before.classes[cls].live_blocks);
  EXPECT_EQ(after.pools_in_use, before.pools_in_use) << "the blocks did not return at exit";
  EXPECT_EQ(after.double_frees, before.double_frees);
  EXPECT_EQ(after.corruptions, before.corruptions);
}

// More than a cache holds: the surplus goes back to the owner while the freer still runs.
TEST(Threads, AFullForeignCacheSendsItsBlocksBack) {
  warm_up();
  constexpr size_t kSize = 3072;  // 5 blocks per pool, cache of foreign_cap(...) blocks
  const size_t cls = class_of(kSize);
  const size_t n = 4 * foreign_cap(cls);
  Snapshot before = settled_snap();
  std::vector<Block> blocks;
  for (size_t i = 0; i < n; ++i) blocks.push_back(make_block(kSize, i + 11));
  Snapshot made = settled_snap();
  Signal freed, go_on;
  std::thread freer([&] {
    for (const Block& b : blocks) check_and_free(b);
    freed.set();
    go_on.wait();
  });
  freed.wait();
  Snapshot held = settled_snap();
  EXPECT_EQ(held.classes[cls].live_blocks, before.classes[cls].live_blocks);
  // At most a cache's worth, plus one run per chain of a send-back, is still away from its pools.
  size_t away_pools = (foreign_cap(cls) + kRemoteChains * kRemoteBatch) / 5 + 2;
  EXPECT_LE(held.pools_in_use, before.pools_in_use + away_pools)
      << "made " << made.pools_in_use - before.pools_in_use << " pools";
  go_on.set();
  freer.join();
  Snapshot after = settled_snap();
  EXPECT_EQ(after.pools_in_use, before.pools_in_use);
  EXPECT_EQ(after.classes[cls].live_blocks, before.classes[cls].live_blocks);
}

// A block kept by another thread (its foreign cache) is free: freeing it again is a double free,
// even though no list of its pool holds it.
TEST(Threads, DoubleFreeOfABlockHeldInAnotherThreadsBatchIsReported) {
  ScopedErrorMode mode(ErrorMode::kReport);
  warm_up();
  Snapshot before = settled_snap();
  void* p = malloc_impl(96);
  ASSERT_NE(p, nullptr);
  Signal freed, go_on;
  std::thread freer([&] {
    free_impl(p);  // kept by this thread
    freed.set();
    go_on.wait();
  });
  freed.wait();
  ::testing::internal::CaptureStderr();
  free_impl(p);  // by the owner: the second free
  std::string err = ::testing::internal::GetCapturedStderr();
  go_on.set();
  freer.join();
  Snapshot after = settled_snap();
  EXPECT_EQ(after.double_frees, before.double_frees + 1) << err;
  EXPECT_NE(err.find("double-free"), std::string::npos) << err;
  // Reported and left alone: the block went back to its pool once, and is handed out again once.
  EXPECT_EQ(after.classes[class_of(96)].live_blocks, before.classes[class_of(96)].live_blocks);
  std::set<void*> got;
  for (int i = 0; i < 200; ++i) {
    void* q = malloc_impl(96);
    EXPECT_TRUE(got.insert(q).second) << "block " << q << " handed out twice";
  }
  for (void* q : got) free_impl(q);
}

// The owner of a pool exits while another thread still holds blocks of it in a batch: the pool is
// abandoned with those blocks counted live, and the batch, pushed later, frees them into it.
TEST(Threads, PoolAbandonedWhileAnotherThreadHoldsItsBlocks) {
  warm_up();
  constexpr size_t kSize = 1000;  // a medium class
  const size_t cls = class_of(kSize);
  Snapshot before = settled_snap();
  std::vector<Block> blocks;
  Signal made, freed, owner_gone;
  std::thread owner([&] {
    for (size_t i = 0; i < 5; ++i) blocks.push_back(make_block(kSize, i + 21));
    made.set();
    freed.wait();
  });
  std::thread freer([&] {
    made.wait();
    for (const Block& b : blocks) check_and_free(b);
    freed.set();
    owner_gone.wait();
  });
  made.wait();
  freed.wait();
  owner.join();
  owner_gone.set();
  freer.join();
  Snapshot after = settled_snap();
  EXPECT_EQ(after.classes[cls].live_blocks, before.classes[cls].live_blocks);
  EXPECT_EQ(after.double_frees, before.double_frees);
  EXPECT_EQ(after.corruptions, before.corruptions);
  EXPECT_LE(after.pools_in_use, before.pools_in_use + kNumClasses);
}

TEST(Threads, OwnerStillRunningReusesBlocksFreedByOthers) {
  warm_up();
  Snapshot before = settled_snap();
  // The producer allocates 200k blocks; a consumer frees them with at most 1000 in flight. If
  // the producer never took back the cross-thread frees it would need ~800 pools of 64 bytes.
  constexpr size_t kTotal = 200000;
  Mailbox box(1000);
  std::atomic<uint64_t> peak_pools{0};
  std::thread consumer([&] {
    Block b;
    while (box.pop(&b)) check_and_free(b);
  });
  std::thread producer([&] {
    for (size_t i = 0; i < kTotal; ++i) {
      Block b = make_block(64, i + 1);
      if (!b.p) {
        ADD_FAILURE() << "malloc failed";
        break;
      }
      box.push(b);
      if (i % 20000 == 0) {
        Snapshot s = snap();
        if (s.pools_in_use > peak_pools.load()) peak_pools.store(s.pools_in_use);
      }
    }
    Snapshot s = snap();
    if (s.pools_in_use > peak_pools.load()) peak_pools.store(s.pools_in_use);
    box.close();
  });
  producer.join();
  consumer.join();
  EXPECT_LE(peak_pools.load(), before.pools_in_use + 100)
      << "cross-thread frees are not reused by a live owner";
  Snapshot after = settled_snap();
  EXPECT_EQ(after.classes[class_of(64)].live_blocks, before.classes[class_of(64)].live_blocks);
  EXPECT_LE(after.pools_in_use, before.pools_in_use + kNumClasses);
}

TEST(Threads, BlocksOutliveTheirThreadAndAreReclaimed) {
  warm_up();
  Snapshot before = settled_snap();
  std::set<void*> first_round;
  size_t reused = 0;
  constexpr int kRounds = 20;
  constexpr size_t kPerRound = 5000;
  for (int round = 0; round < kRounds; ++round) {
    std::vector<Block> blocks;
    std::thread owner([&] {
      for (size_t i = 0; i < kPerRound; ++i) {
        blocks.push_back(make_block((i * 37) % (kPoolMax + 1), round * kPerRound + i + 1));
      }
    });
    owner.join();  // the heap that handed out the blocks is gone now
    for (const Block& b : blocks) {
      ASSERT_NE(b.p, nullptr);
      if (round == 0) {
        first_round.insert(b.p);
      } else {
        reused += first_round.count(b.p);
      }
      check_and_free(b);
    }
    thread_collect();
  }
  Snapshot after = settled_snap();
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.small_allocs - before.small_allocs, kRounds * kPerRound);
  EXPECT_EQ(after.small_frees - before.small_frees, kRounds * kPerRound);
  // One round needs about 5000 * 136 / 16 KiB ~ 45 pools; a leak would keep ~900.
  EXPECT_LE(after.pools_in_use, before.pools_in_use + 2 * kNumClasses);
  EXPECT_LE(after.arenas_in_use, before.arenas_in_use + 2);
  EXPECT_GT(reused, 0u) << "memory of exited threads is never handed out again";
  EXPECT_EQ(after.heaps_created - before.heaps_created,
            after.heaps_abandoned - before.heaps_abandoned);
}

TEST(Threads, BlocksOfAnExitedThreadFreedByAnotherThread) {
  warm_up();
  Snapshot before = settled_snap();
  std::vector<Block> blocks;
  std::thread owner([&] {
    for (size_t i = 0; i < 3000; ++i) blocks.push_back(make_block(i % 200, i + 1));
  });
  owner.join();
  std::thread freer([&] {
    for (const Block& b : blocks) check_and_free(b);
  });
  freer.join();
  Snapshot after = settled_snap();
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_LE(after.pools_in_use, before.pools_in_use + 2 * kNumClasses);
}

TEST(Threads, DetachBuildsANewHeapAndOldBlocksStayValid) {
  warm_up();
  Snapshot before = settled_snap();
  std::thread t([] {
    std::vector<Block> old_blocks;
    for (size_t i = 0; i < 2000; ++i) old_blocks.push_back(make_block(i % 128, i + 1));
    thread_detach();
    std::vector<Block> new_blocks;
    for (size_t i = 0; i < 2000; ++i) new_blocks.push_back(make_block(i % 128, i + 100001));
    for (const Block& b : old_blocks) check_and_free(b);
    for (const Block& b : new_blocks) check_and_free(b);
  });
  t.join();
  Snapshot after = settled_snap();
  EXPECT_EQ(live_small(after), live_small(before));
  // The detach and the thread's exit each abandon a heap.
  EXPECT_GE(after.heaps_abandoned - before.heaps_abandoned, 2u);
  EXPECT_EQ(after.heaps_created - before.heaps_created,
            after.heaps_abandoned - before.heaps_abandoned);
  EXPECT_LE(after.pools_in_use, before.pools_in_use + 2 * kNumClasses);
}

TEST(Threads, ManyShortLivedThreads) {
  warm_up();
  Snapshot before = settled_snap();
  constexpr int kBatches = 32;
  constexpr int kPerBatch = 8;
  std::vector<Block> leftovers;
  std::mutex mu;
  for (int batch = 0; batch < kBatches; ++batch) {
    std::vector<std::thread> threads;
    for (int t = 0; t < kPerBatch; ++t) {
      threads.emplace_back([&, id = batch * kPerBatch + t] {
        std::vector<Block> mine;
        for (int i = 0; i < 100; ++i) {
          mine.push_back(make_block((i * 13 + id) % (kPoolMax + 1), id * 1000 + i + 1));
        }
        // Free most here; leave a few alive for the main thread after this thread is gone.
        for (size_t i = 0; i < mine.size(); ++i) {
          if (i % 10 == 0) {
            std::lock_guard<std::mutex> lock(mu);
            leftovers.push_back(mine[i]);
          } else {
            check_and_free(mine[i]);
          }
        }
      });
    }
    for (std::thread& t : threads) t.join();
  }
  for (const Block& b : leftovers) check_and_free(b);
  Snapshot after = settled_snap();
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.heaps_created - before.heaps_created,
            after.heaps_abandoned - before.heaps_abandoned);
  EXPECT_LE(after.pools_in_use, before.pools_in_use + 2 * kNumClasses);
  EXPECT_LE(after.arenas_in_use, before.arenas_in_use + 2);
}

TEST(Threads, ConcurrentAllocFreeWithPatternChecks) {
  warm_up();
  Snapshot before = settled_snap();
  constexpr int kThreads = 4;
  constexpr int kOps = 60000;
  std::vector<std::unique_ptr<Mailbox>> boxes;
  for (int i = 0; i < kThreads; ++i) boxes.push_back(std::make_unique<Mailbox>(4096));
  std::atomic<int> done{0};
  std::atomic<uint64_t> errors{0};
  auto worker = [&](int id) {
    std::mt19937_64 rng(1000 + id);
    std::vector<Block> mine;
    uint64_t seq = 0;
    auto drain = [&] {
      Block b;
      while (boxes[id]->try_pop(&b)) errors += !check_and_free(b);
    };
    for (int op = 0; op < kOps; ++op) {
      uint64_t r = rng() % 100;
      if (r < 50 || mine.empty()) {
        size_t n =
            kLargeInThreads && rng() % 8 == 0 ? kPoolMax + rng() % 2000 : rng() % (kPoolMax + 1);
        Block b = make_block(n, (uint64_t{static_cast<uint32_t>(id)} << 40) | ++seq);
        if (!b.p) {
          ++errors;
          continue;
        }
        mine.push_back(b);
      } else {
        size_t i = rng() % mine.size();
        Block b = mine[i];
        mine[i] = mine.back();
        mine.pop_back();
        if (r < 75) {
          errors += !check_and_free(b);
        } else {
          // Another thread frees it (after checking it).
          size_t first = first_mismatch(b.p, b.size, b.seed);
          errors += first != b.size;
          int to = static_cast<int>((id + 1 + rng() % (kThreads - 1)) % kThreads);
          // Never block on a full mailbox: keep emptying ours meanwhile, so no cycle can wait.
          while (!boxes[to]->try_push(b)) {
            drain();
            std::this_thread::yield();
          }
        }
      }
      if (mine.size() > 2000) {
        errors += !check_and_free(mine.back());
        mine.pop_back();
      }
      if (op % 64 == 0) drain();
    }
    for (const Block& b : mine) errors += !check_and_free(b);
    ++done;
    // Keep draining until every thread has stopped sending.
    while (done.load() < kThreads) {
      drain();
      std::this_thread::yield();
    }
    drain();
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) threads.emplace_back(worker, i);
  // Snapshots while the workers run: must be safe at any time.
  while (done.load() < kThreads) {
    Snapshot s = snap();
    (void)s;
    std::this_thread::yield();
  }
  for (std::thread& t : threads) t.join();
  // Anything left in a mailbox (pushed after its owner's last drain) is freed here.
  for (auto& box : boxes) {
    Block b;
    while (box->try_pop(&b)) errors += !check_and_free(b);
  }
  EXPECT_EQ(errors.load(), 0u);
  Snapshot after = settled_snap();
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.small_allocs - before.small_allocs, after.small_frees - before.small_frees);
  EXPECT_EQ(after.large_live_bytes, before.large_live_bytes);
  EXPECT_LE(after.pools_in_use, before.pools_in_use + 2 * kNumClasses);
  EXPECT_EQ(after.double_frees, before.double_frees);
  EXPECT_EQ(after.invalid_frees, before.invalid_frees);
  EXPECT_EQ(after.corruptions, before.corruptions);
}

TEST(Threads, ConcurrentCrossThreadFreesToOneOwner) {
  // Several threads free blocks of one owner at the same time, while the owner allocates.
  warm_up();
  Snapshot before = settled_snap();
  constexpr int kFreers = 3;
  constexpr size_t kN = 30000;
  std::vector<std::unique_ptr<Mailbox>> boxes;
  for (int i = 0; i < kFreers; ++i) boxes.push_back(std::make_unique<Mailbox>(512));
  std::vector<std::thread> freers;
  for (int i = 0; i < kFreers; ++i) {
    freers.emplace_back([&, i] {
      Block b;
      while (boxes[i]->pop(&b)) check_and_free(b);
    });
  }
  std::thread owner([&] {
    for (size_t i = 0; i < kN; ++i) {
      Block b = make_block((i * 7) % (kPoolMax + 1), i + 1);
      if (!b.p) {
        ADD_FAILURE() << "malloc failed";
        break;
      }
      boxes[i % kFreers]->push(b);
    }
    for (auto& box : boxes) box->close();
  });
  owner.join();
  for (std::thread& t : freers) t.join();
  Snapshot after = settled_snap();
  EXPECT_EQ(live_small(after), live_small(before));
  EXPECT_EQ(after.small_frees - before.small_frees, kN);
  EXPECT_LE(after.pools_in_use, before.pools_in_use + 2 * kNumClasses);
}

}  // namespace
}  // namespace pg::test
