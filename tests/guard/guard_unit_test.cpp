// Unit tests of the guarded allocator's parts (guard/), without LD_PRELOAD: the stack depot, the
// registry's hash table and records, the quarantine, redzone and page block layouts, lookups, bad
// frees in report mode, the page-guard budget's fallback, the exit check, and page faults (death
// tests). The process runs in page mode (set up once below), with POOLGUARD_ON_ERROR=report.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "base/depot.h"
#include "base/os.h"
#include "front/introspect.h"
#include "guard/guard.h"
#include "guard/internal.h"

namespace pg::guard {
namespace {

using ::testing::internal::CaptureStderr;
using ::testing::internal::GetCapturedStderr;

constexpr uint64_t kQuarantine = 1 << 20;

class GuardEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    set_error_mode(ErrorMode::kReport);  // initialises the core first (guard off)
    GuardConfig config;
    config.mode = GuardMode::kPage;
    config.quarantine = kQuarantine;
    guard_init(config);
  }
};
::testing::Environment* const g_env = ::testing::AddGlobalTestEnvironment(new GuardEnvironment);

uintptr_t addr(const void* p) {
  return reinterpret_cast<uintptr_t>(p);
}
size_t page() {
  return os::page_size();
}

// ---- stack depot ----

TEST(Depot, SameFramesSameId) {
  uintptr_t a[] = {0x1000, 0x2000, 0x3000};
  uintptr_t b[] = {0x1000, 0x2000, 0x3001};
  uint32_t ia = depot_put(a, 3);
  uint32_t ib = depot_put(b, 3);
  EXPECT_NE(ia, 0u);
  EXPECT_NE(ib, 0u);
  EXPECT_NE(ia, ib);
  EXPECT_EQ(depot_put(a, 3), ia);
  EXPECT_NE(depot_put(a, 2), ia);  // a prefix is another stack
  uintptr_t out[8];
  ASSERT_EQ(depot_get(ia, out, 8), 3);
  EXPECT_EQ(out[0], 0x1000u);
  EXPECT_EQ(out[2], 0x3000u);
  EXPECT_EQ(depot_get(ia, out, 2), 2);  // truncated to the room given
  EXPECT_EQ(depot_put(a, 0), 0u);
  EXPECT_EQ(depot_get(0, out, 8), 0);
}

TEST(Depot, ManyDistinctStacks) {
  std::set<uint32_t> ids;
  for (uintptr_t i = 1; i <= 20000; ++i) {
    uintptr_t f[4] = {i, i * 3, 0x77, i ^ 0x5555};
    uint32_t id = depot_put(f, 4);
    ASSERT_NE(id, 0u);
    ids.insert(id);
  }
  EXPECT_EQ(ids.size(), 20000u);
  uintptr_t f[4] = {1234, 1234 * 3, 0x77, 1234 ^ 0x5555};
  uint32_t again = depot_put(f, 4);
  EXPECT_EQ(ids.count(again), 1u);
}

__attribute__((noinline)) uint32_t capture_a() {
  return depot_capture(0);
}
__attribute__((noinline)) uint32_t capture_b() {
  return depot_capture(0);
}

TEST(Depot, CaptureTellsCallSitesApart) {
  uint32_t a = capture_a();
  uint32_t b = capture_b();
  ASSERT_NE(a, 0u);
  ASSERT_NE(b, 0u);
  EXPECT_NE(a, b);
  uintptr_t out[kDepotMaxFrames];
  EXPECT_GE(depot_get(a, out, kDepotMaxFrames), 3);
}

// ---- registry ----

TEST(Registry, TableInsertFindEraseAndGrow) {
  LockGuard guard(guard_lock());
  std::vector<uintptr_t> keys;
  for (uintptr_t i = 0; i < 100000; ++i) keys.push_back(0x7f0000001000 + i * 48);
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_TRUE(table_insert(keys[i], static_cast<uint32_t>(i + 1)));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(table_find(keys[i]), i + 1) << i;
  }
  EXPECT_EQ(table_find(0x7f0000001000 + 8), 0u);
  for (size_t i = 0; i < keys.size(); i += 2) table_erase(keys[i]);
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(table_find(keys[i]), i % 2 ? i + 1 : 0) << i;
  }
  // Tombstones are reused and rebuilt away: churn far past the table's size.
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < keys.size(); i += 2) ASSERT_TRUE(table_insert(keys[i], 7));
    for (size_t i = 0; i < keys.size(); i += 2) table_erase(keys[i]);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    ASSERT_EQ(table_find(keys[i]), i % 2 ? i + 1 : 0) << i;
  }
  for (size_t i = 1; i < keys.size(); i += 2) table_erase(keys[i]);
  EXPECT_EQ(table_find(keys[1]), 0u);
}

TEST(Registry, RecordsAreRecycledZeroed) {
  LockGuard guard(guard_lock());
  uint32_t a = record_new();
  uint32_t b = record_new();
  ASSERT_NE(a, 0u);
  ASSERT_NE(b, 0u);
  EXPECT_NE(a, b);
  record(a)->size = 123;
  record_release(a);
  uint32_t c = record_new();
  EXPECT_EQ(c, a);
  EXPECT_EQ(record(c)->size, 0u);
  EXPECT_LE(c, record_limit());
  record_release(b);
  record_release(c);
}

// ---- quarantine ----

TEST(Quarantine, FifoBoundedByBytes) {
  LockGuard guard(guard_lock());
  // Empty it first (other tests' blocks may be waiting).
  quarantine_set_limit(0);
  while (uint32_t i = quarantine_pop_over()) {
    if (record(i)->kind == kKindPage) {
      page_span_recycle(i);
    } else {
      record_release(i);  // its glibc block leaks: harmless in a test
    }
  }
  quarantine_set_limit(1000);
  uint32_t ids[4];
  for (uint32_t& i : ids) {
    i = record_new();
    record(i)->raw_size = 400;
    quarantine_push(i);
  }
  EXPECT_EQ(quarantine_bytes(), 1600u);
  EXPECT_EQ(quarantine_pop_over(), ids[0]);
  EXPECT_EQ(quarantine_pop_over(), ids[1]);
  EXPECT_EQ(quarantine_pop_over(), 0u);  // 800 <= 1000
  EXPECT_EQ(quarantine_bytes(), 800u);
  quarantine_set_limit(0);
  EXPECT_EQ(quarantine_pop_over(), ids[2]);
  EXPECT_EQ(quarantine_pop_over(), ids[3]);
  EXPECT_EQ(quarantine_pop_over(), 0u);
  quarantine_set_limit(kQuarantine);
  for (uint32_t i : ids) record_release(i);
}

// ---- redzone blocks ----

TEST(Redzone, LayoutAlignmentAndDamage) {
  for (size_t align : {size_t{16}, size_t{64}, size_t{4096}}) {
    for (size_t size : {size_t{0}, size_t{1}, size_t{13}, size_t{16}, size_t{100}, size_t{256},
                        size_t{1000}, size_t{70000}}) {
      uint32_t i = 0;
      char* p = static_cast<char*>(redzone_alloc(size, align, false, 0, 1, &i));
      ASSERT_NE(p, nullptr);
      ASSERT_NE(i, 0u);
      EXPECT_EQ(addr(p) % align, 0u);
      Block b = *record(i);
      EXPECT_EQ(b.user, addr(p));
      EXPECT_EQ(b.size, size);
      EXPECT_GE(b.user - b.raw, 16u);
      EXPECT_GE(b.raw + b.raw_size - (b.user + size), 16u);
      EXPECT_EQ(redzone_damage(b), 0u);
      memset(p, 0x11, size);  // all of the block is usable
      EXPECT_EQ(redzone_damage(b), 0u);
      p[size] = 0x11;  // one past the end
      EXPECT_EQ(redzone_damage(b), addr(p) + size);
      p[size] = static_cast<char>(kRedzoneByte);
      p[-1] = 0x11;  // one before the start
      EXPECT_EQ(redzone_damage(b), addr(p) - 1);
      p[-1] = static_cast<char>(kRedzoneByte);
      redzone_fill_freed(b);
      EXPECT_EQ(freed_damage(b), 0u);
      if (size > 0) {
        p[size / 2] = 0;
        EXPECT_EQ(freed_damage(b), addr(p) + size / 2);
      }
      {
        LockGuard guard(guard_lock());
        EXPECT_EQ(table_find(b.user), i);
        EXPECT_EQ(find_containing(b.user + size / 2), i);
        table_erase(b.user);
        record_release(i);
      }
      redzone_release(b);
    }
  }
}

TEST(Redzone, FindOtherByte) {
  std::vector<unsigned char> buf(300, 0xab);
  uintptr_t lo = addr(buf.data());
  for (size_t k : {size_t{0}, size_t{7}, size_t{8}, size_t{63}, size_t{299}}) {
    buf[k] = 1;
    EXPECT_EQ(find_other_byte(lo, lo + buf.size(), 0xab), lo + k);
    EXPECT_EQ(find_other_byte(lo + k + 1, lo + buf.size(), 0xab), 0u);
    buf[k] = 0xab;
  }
  EXPECT_EQ(find_other_byte(lo, lo, 0), 0u);
}

// ---- guarded blocks through the API (page mode) ----

TEST(Guard, PageBlocksAreRightAlignedAgainstTheGuardPage) {
  for (size_t size : {size_t{1}, size_t{16}, size_t{24}, size_t{4096}, size_t{5000}}) {
    for (size_t align : {size_t{16}, size_t{256}, size_t{8192}}) {
      char* p = static_cast<char*>(guard_alloc(size, align, false));
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(in_region(addr(p)));
      EXPECT_EQ(addr(p) % align, 0u);
      // Right-aligned: at most the alignment (or 16) away from the next page boundary.
      uintptr_t end = addr(p) + size;
      uintptr_t guard = (end + page() - 1) & ~(page() - 1);
      EXPECT_LT(guard - end, align < page() ? align : page()) << size << " " << align;
      size_t n = 0;
      EXPECT_EQ(guard_lookup(p, &n), GuardLookup::kLive);
      EXPECT_EQ(n, size);
      memset(p, 0x42, size);
      EXPECT_TRUE(guard_free(p));
      EXPECT_EQ(guard_lookup(p, &n), GuardLookup::kFreed);
    }
  }
}

TEST(Guard, CallocZeroesReusedPages) {
  std::vector<char*> blocks;
  for (int i = 0; i < 64; ++i) {
    char* p = static_cast<char*>(guard_alloc(100, 16, false));
    memset(p, 0x77, 100);
    blocks.push_back(p);
  }
  for (char* p : blocks) guard_free(p);
  // Push them through the quarantine, so that their spans are reused.
  for (int i = 0; i < 400; ++i) guard_free(guard_alloc(3000, 16, false));
  for (int i = 0; i < 64; ++i) {
    char* p = static_cast<char*>(guard_alloc(100, 16, true));
    for (int k = 0; k < 100; ++k) ASSERT_EQ(p[k], 0) << i << " " << k;
    guard_free(p);
  }
}

TEST(Guard, LookupsOfOtherAddresses) {
  char* p = static_cast<char*>(guard_alloc(64, 16, false));
  size_t n;
  EXPECT_EQ(guard_lookup(p + 16, &n), GuardLookup::kBad);
  int local;
  EXPECT_EQ(guard_lookup(&local, &n), GuardLookup::kNotGuarded);
  EXPECT_FALSE(guard_free(&local));  // not the guard's: the caller's other paths decide
  guard_free(p);
}

TEST(Guard, BadFreesAreReportedAndLeftAlone) {
  uint64_t before = errors_reported();
  char* p = static_cast<char*>(guard_alloc(48, 16, false));
  CaptureStderr();
  EXPECT_TRUE(guard_free(p + 16));
  std::string err = GetCapturedStderr();
  EXPECT_NE(err.find("poolguard: ERROR: invalid-free "), std::string::npos) << err;
  EXPECT_NE(err.find("16 bytes inside the 48-byte block"), std::string::npos) << err;
  EXPECT_NE(err.find("allocated by thread"), std::string::npos) << err;
  size_t n;
  EXPECT_EQ(guard_lookup(p, &n), GuardLookup::kLive);  // untouched
  EXPECT_TRUE(guard_free(p));
  CaptureStderr();
  EXPECT_TRUE(guard_free(p));
  err = GetCapturedStderr();
  EXPECT_EQ(err.rfind("poolguard: ERROR: double-free ", 0), 0u) << err;
  EXPECT_NE(err.find("freed by thread"), std::string::npos) << err;
  EXPECT_NE(err.find("continuing (POOLGUARD_ON_ERROR=report)"), std::string::npos) << err;
  EXPECT_EQ(errors_reported(), before + 2);
}

TEST(Guard, SlackDamageIsFoundByFree) {
  // 24 bytes: 8 bytes of slack between the block and its guard page.
  char* p = static_cast<char*>(guard_alloc(24, 16, false));
  p[24] = 1;
  CaptureStderr();
  EXPECT_TRUE(guard_free(p));
  std::string err = GetCapturedStderr();
  EXPECT_EQ(err.rfind("poolguard: ERROR: heap-buffer-overflow ", 0), 0u) << err;
  EXPECT_NE(err.find("0 bytes after the 24-byte block"), std::string::npos) << err;
  EXPECT_NE(err.find("=> "), std::string::npos) << err;  // the hex dump marks the damaged row
  size_t n;
  EXPECT_EQ(guard_lookup(p, &n), GuardLookup::kFreed);  // leaked: a second free is a double free
}

TEST(Guard, BudgetRunsOutIntoRedzoneBlocks) {
  GuardCounters c0;
  guard_counters(&c0);
  std::vector<void*> blocks;
  GuardCounters c;
  for (int i = 0; i < 200000; ++i) {
    blocks.push_back(guard_alloc(32, 16, false));
    ASSERT_NE(blocks.back(), nullptr);
    guard_counters(&c);
    if (c.page_fallbacks > c0.page_fallbacks) break;
  }
  ASSERT_GT(c.page_fallbacks, c0.page_fallbacks) << "no fallback after " << blocks.size();
  void* last = blocks.back();
  EXPECT_FALSE(in_region(addr(last)));  // a redzone block
  size_t n = 0;
  EXPECT_EQ(guard_lookup(last, &n), GuardLookup::kLive);
  EXPECT_EQ(n, 32u);
  for (void* p : blocks) ASSERT_TRUE(guard_free(p));
  // Room again: page blocks.
  void* p = guard_alloc(32, 16, false);
  EXPECT_TRUE(in_region(addr(p)));
  guard_free(p);
}

TEST(Guard, ExitCheckFindsDamagedRedzones) {
  uint32_t i = 0;
  char* p = static_cast<char*>(redzone_alloc(40, 16, false, 0, 1, &i));
  ASSERT_NE(p, nullptr);
  p[41] = 'x';
  CaptureStderr();
  guard_check_all();
  std::string err = GetCapturedStderr();
  EXPECT_NE(err.find("poolguard: ERROR: heap-buffer-overflow"), std::string::npos) << err;
  EXPECT_NE(err.find("found at exit"), std::string::npos) << err;
  // Reported once: the block is left alone from then on.
  CaptureStderr();
  guard_check_all();
  err = GetCapturedStderr();
  EXPECT_EQ(err.find("poolguard: ERROR"), std::string::npos) << err;
}

TEST(Guard, SampleIntervals) {
  EXPECT_EQ(sample_interval(0, 12345), INT64_MAX);
  EXPECT_EQ(sample_interval(1, 12345), 1);
  uint64_t x = 88172645463325252ull;
  double sum = 0;
  for (int k = 0; k < 100000; ++k) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    int64_t v = sample_interval(1000, x);
    ASSERT_GE(v, 1);
    ASSERT_LE(v, 1999);
    sum += static_cast<double>(v);
  }
  EXPECT_NEAR(sum / 100000, 1000, 20);
}

// ---- threads ----

// Threads allocate, check and free guarded blocks of many sizes, handing some to each other, while
// the page budget runs out and comes back (page and redzone blocks mixed). Also run under TSan.
TEST(Threads, ConcurrentGuardedBlocks) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 3000;
  std::vector<std::thread> threads;
  std::atomic<void*> mailbox[kThreads];
  for (auto& m : mailbox) m.store(nullptr);
  std::atomic<int> errors{0};
  uint64_t before = errors_reported();
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &mailbox, &errors] {
      uint64_t x = 0x9E3779B97F4A7C15ull * (t + 1);
      std::vector<std::pair<unsigned char*, size_t>> mine;
      for (int r = 0; r < kRounds; ++r) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t size = 1 + x % (r % 50 == 0 ? 20000 : 300);
        auto* p = static_cast<unsigned char*>(guard_alloc(size, 16, false));
        if (p == nullptr) {
          errors.fetch_add(1);
          continue;
        }
        memset(p, t + 1, size);
        mine.emplace_back(p, size);
        if (mine.size() > 64 || x % 3 == 0) {
          auto [q, n] = mine.front();
          mine.erase(mine.begin());
          for (size_t k = 0; k < n; ++k) {
            if (q[k] != t + 1) {
              errors.fetch_add(1);
              break;
            }
          }
          // Every other block is freed by the next thread.
          if (x % 2 == 0) {
            if (void* old = mailbox[(t + 1) % kThreads].exchange(q)) guard_free(old);
          } else {
            guard_free(q);
          }
        }
      }
      for (auto [q, n] : mine) guard_free(q);
    });
  }
  for (auto& th : threads) th.join();
  for (auto& m : mailbox) {
    if (void* p = m.exchange(nullptr)) guard_free(p);
  }
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(errors_reported(), before);  // no false alarm
}

// Stacks put from several threads at once: one id per distinct stack, lock-free lookups.
TEST(Threads, DepotFromManyThreads) {
  constexpr int kThreads = 4;
  std::vector<std::vector<uint32_t>> ids(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &ids] {
      for (uintptr_t i = 0; i < 5000; ++i) {
        uintptr_t f[3] = {0xabc000 + i, 0xdef000 + i % 97, 0x42};
        ids[t].push_back(depot_put(f, 3));
        uintptr_t out[3];
        if (depot_get(ids[t].back(), out, 3) != 3 || out[0] != f[0]) ids[t].back() = 0;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 1; t < kThreads; ++t) EXPECT_EQ(ids[t], ids[0]);
  for (uint32_t id : ids[0]) ASSERT_NE(id, 0u);
}

// ---- faults (death tests: the report, then abort, whatever POOLGUARD_ON_ERROR says) ----

__attribute__((noinline)) void touch(volatile char* p) {
  *p = 'x';
}
__attribute__((noinline)) char peek(const volatile char* p) {
  return *p;
}

TEST(GuardDeathTest, OverflowFaults) {
  char* p = static_cast<char*>(guard_alloc(64, 16, false));
  EXPECT_DEATH(touch(p + 64),
               "poolguard: ERROR: heap-buffer-overflow .*WRITE at .*0 bytes after the 64-byte "
               "block(.|\n)*the access by thread(.|\n)*aborting");
  guard_free(p);
}

TEST(GuardDeathTest, UnderflowFaults) {
  char* p = static_cast<char*>(guard_alloc(4096, 16, false));
  EXPECT_DEATH(touch(p - 1), "poolguard: ERROR: heap-buffer-underflow .*1 byte before");
  guard_free(p);
}

TEST(GuardDeathTest, UseAfterFreeFaults) {
  char* p = static_cast<char*>(guard_alloc(200, 16, false));
  guard_free(p);
  EXPECT_DEATH(peek(p + 100),
               "poolguard: ERROR: use-after-free .*READ at .*100 bytes inside the 200-byte "
               "block(.|\n)*freed by thread");
}

TEST(GuardDeathTest, OtherFaultsAreNotOurs) {
  // A fault outside the region goes to the handler installed before ours (ASan's, in the ASan
  // build) or to the default action: the process dies of SIGSEGV, with no report.
#if defined(__SANITIZE_ADDRESS__)
  EXPECT_DEATH(touch(reinterpret_cast<volatile char*>(16)), "AddressSanitizer: SEGV");
#else
  EXPECT_EXIT(touch(reinterpret_cast<volatile char*>(16)), ::testing::KilledBySignal(SIGSEGV),
              "^$");
#endif
}

}  // namespace
}  // namespace pg::guard
