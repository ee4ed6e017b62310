// pg_bench: micro-benchmarks of the malloc family, for comparing allocators.
//
// This binary never links poolguard: an allocator is chosen by preloading it
// (LD_PRELOAD=.../libpoolguard.so ./pg_bench), so every allocator runs the very same machine code.
// It is compiled with -fno-builtin-malloc and friends, so every call below goes through the PLT to
// whatever malloc the dynamic linker bound, and benchmark::DoNotOptimize keeps each pointer alive
// in the compiler's eyes.
//
// Units: every benchmark reports items_per_second, where one item is one malloc (or calloc,
// realloc, posix_memalign) together with its free, so 1e9 / items_per_second is "ns per pair".
// Multi-threaded benchmarks use real time, so their items_per_second is the throughput of all
// threads together.
//
// What each one stresses:
//   Pair, PairThreads, Calloc, PosixMemalign   one call and its free, the fast paths alone
//   BatchLIFO/FIFO/Random, MixedBatch          many blocks live at once, freed in a given order
//   ReallocGrow, ReallocAcross                 realloc in place and across size tiers
//   ProducerConsumer                           every block freed by another thread (2 threads)
//   Churn                                      100 000 live small blocks, a random one replaced
//                                              per item, on each of 1, 2, 4 threads
//   MediumChurn                                the same with 4096 live blocks of 257 B..32 KiB
//   Server                                     whole slot arrays of live blocks change hands
//                                              between threads every 1000 operations
//   CrossThread                                batches of 16 B..16 KiB passed round a ring of
//                                              threads, freed by the next thread
//   Handoff                                    objects kept a while in a FIFO, the oldest handed
//                                              along a chain of threads and freed there
// The cross-thread ones (Server, CrossThread, Handoff) never wait for another thread: mailboxes
// are swapped with one atomic exchange, or are bounded queues where a send that finds no room
// (even after one sched_yield) fails and the sender frees the blocks itself, so threads that run
// at different speeds cannot deadlock. CrossThread and Handoff report the share of blocks that
// really were freed by another thread as the counter "remote". Google Benchmark starts no
// thread's loop before every thread has reached it and lets none leave before all have finished,
// so state set up before the loop is visible to all, and queues drained after it are complete.
#include <benchmark/benchmark.h>
#include <sched.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace {

// Small, fast, deterministic generator (xorshift64*): the benchmarks must not spend their time in
// <random>, and each run must draw the same sequence.
struct Rng {
  uint64_t s;
  explicit Rng(uint64_t seed) : s(seed * 0x9E3779B97F4A7C15ull + 1) {}
  uint64_t next() {
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Dull;
  }
  // Uniform in [0, n) (slightly biased for huge n, irrelevant here).
  uint32_t below(uint32_t n) { return static_cast<uint32_t>(((next() >> 32) * n) >> 32); }
};

// A realistic small-object size distribution, drawn once with a fixed seed: most requests under 64
// bytes, a tail up to 256, and about 1% large ones up to 4 KiB.
//   35%: 1..32   30%: 33..64   20%: 65..128   14%: 129..256   1%: 257..4096
constexpr size_t kSizeTableLen = 1 << 16;
struct SizeTable {
  uint16_t v[kSizeTableLen];
  SizeTable() {
    Rng r(42);
    for (auto& x : v) {
      uint32_t pick = r.below(100);
      if (pick < 35) {
        x = static_cast<uint16_t>(1 + r.below(32));
      } else if (pick < 65) {
        x = static_cast<uint16_t>(33 + r.below(32));
      } else if (pick < 85) {
        x = static_cast<uint16_t>(65 + r.below(64));
      } else if (pick < 99) {
        x = static_cast<uint16_t>(129 + r.below(128));
      } else {
        x = static_cast<uint16_t>(257 + r.below(4096 - 256));
      }
    }
  }
};
const SizeTable g_sizes;

inline size_t mixed_size(Rng& r) {
  return g_sizes.v[r.next() & (kSizeTableLen - 1)];
}

// Writes one byte, as a program would: a block that is never touched can hide costs (page faults,
// lazily carved pools) that real programs pay.
inline void touch(void* p) {
  static_cast<volatile char*>(p)[0] = 1;
}

// ---------------------------------------------------------------------------------------------
// Same-size malloc/free pair, one size class at a time.
void BM_Pair(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = malloc(size);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Pair)
    ->DenseRange(16, 256, 16)
    ->Arg(512)
    ->Arg(1024)
    ->Arg(2048)
    ->Arg(4096)
    ->Arg(8192)
    ->Arg(16384)
    ->Arg(32768);

// The same pair with 1, 2 and 4 threads allocating at once (each its own pairs).
void BM_PairThreads(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = malloc(size);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PairThreads)->Arg(32)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// Batches: allocate kBatch blocks, then free them in LIFO, FIFO or random order.
constexpr size_t kBatch = 1000;
enum class Order { kLifo, kFifo, kRandom };

template <Order order>
void BM_Batch(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  std::vector<void*> blocks(kBatch);
  std::vector<uint32_t> perm(kBatch);
  for (size_t i = 0; i < kBatch; ++i) perm[i] = static_cast<uint32_t>(i);
  Rng r(7);
  for (size_t i = kBatch - 1; i > 0; --i) std::swap(perm[i], perm[r.below(i + 1)]);
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      blocks[i] = malloc(size);
      touch(blocks[i]);
    }
    benchmark::DoNotOptimize(blocks.data());
    if constexpr (order == Order::kLifo) {
      for (size_t i = kBatch; i-- > 0;) free(blocks[i]);
    } else if constexpr (order == Order::kFifo) {
      for (size_t i = 0; i < kBatch; ++i) free(blocks[i]);
    } else {
      for (size_t i = 0; i < kBatch; ++i) free(blocks[perm[i]]);
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_Batch<Order::kLifo>)->Name("BM_BatchLIFO")->Arg(32)->Arg(128);
BENCHMARK(BM_Batch<Order::kFifo>)->Name("BM_BatchFIFO")->Arg(32)->Arg(128);
BENCHMARK(BM_Batch<Order::kRandom>)->Name("BM_BatchRandom")->Arg(32)->Arg(128);

// Batches of mixed sizes from the realistic distribution, freed in random order. Run with 1, 2
// and 4 threads; each thread draws its own sizes.
void BM_MixedBatch(benchmark::State& state) {
  std::vector<void*> blocks(kBatch);
  std::vector<uint32_t> perm(kBatch);
  for (size_t i = 0; i < kBatch; ++i) perm[i] = static_cast<uint32_t>(i);
  Rng r(1234 + static_cast<uint64_t>(state.thread_index()));
  for (size_t i = kBatch - 1; i > 0; --i) std::swap(perm[i], perm[r.below(i + 1)]);
  for (auto _ : state) {
    for (size_t i = 0; i < kBatch; ++i) {
      blocks[i] = malloc(mixed_size(r));
      touch(blocks[i]);
    }
    benchmark::DoNotOptimize(blocks.data());
    for (size_t i = 0; i < kBatch; ++i) free(blocks[perm[i]]);
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}
BENCHMARK(BM_MixedBatch)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// realloc: grow one block 16 bytes at a time from 16 to 1024 bytes, across the small/large
// threshold (256). One item is one realloc call.
void BM_ReallocGrow(benchmark::State& state) {
  constexpr size_t kFrom = 16, kTo = 1024, kStep = 16;
  constexpr size_t kCalls = (kTo - kFrom) / kStep;
  for (auto _ : state) {
    void* p = malloc(kFrom);
    touch(p);
    for (size_t n = kFrom + kStep; n <= kTo; n += kStep) {
      p = realloc(p, n);
      static_cast<volatile char*>(p)[n - 1] = 1;
    }
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations() * kCalls);
}
BENCHMARK(BM_ReallocGrow);

// realloc straight across the threshold and back: malloc(200), realloc to 300, realloc to 100,
// free. One item is one such round.
void BM_ReallocAcross(benchmark::State& state) {
  for (auto _ : state) {
    void* p = malloc(200);
    memset(p, 1, 200);
    p = realloc(p, 300);
    benchmark::DoNotOptimize(p);
    p = realloc(p, 100);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ReallocAcross);

// ---------------------------------------------------------------------------------------------
// calloc(1, n) + free.
void BM_Calloc(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    void* p = calloc(1, size);
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Calloc)->Arg(32)->Arg(256)->Arg(1024)->Arg(2048)->Arg(4096);

// posix_memalign(alignment, size) + free.
void BM_PosixMemalign(benchmark::State& state) {
  const size_t align = static_cast<size_t>(state.range(0));
  const size_t size = static_cast<size_t>(state.range(1));
  for (auto _ : state) {
    void* p = nullptr;
    if (posix_memalign(&p, align, size) != 0) {
      state.SkipWithError("posix_memalign failed");
      break;
    }
    benchmark::DoNotOptimize(p);
    free(p);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PosixMemalign)
    ->Args({32, 64})
    ->Args({64, 64})
    ->Args({128, 256})
    ->Args({4096, 64})
    ->Args({1024, 256})
    ->Args({2048, 4096});

// ---------------------------------------------------------------------------------------------
// Producer/consumer: thread 0 allocates, thread 1 frees, through a bounded single-producer
// single-consumer ring. Both threads run the same number of iterations (Google Benchmark gives
// every thread the same count), so the ring is empty again when a run ends. One item is one block
// handed from the producer to the consumer and freed there.
constexpr size_t kRingLen = 1024;
struct alignas(64) Ring {
  alignas(64) std::atomic<uint64_t> head{0};  // written by the producer only
  alignas(64) std::atomic<uint64_t> tail{0};  // written by the consumer only
  alignas(64) void* slots[kRingLen];
};
Ring g_ring;

inline void spin_wait(unsigned& spins) {
  if (++spins < 256) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    spins = 0;
    sched_yield();  // 2 cores: the peer may need ours
  }
}

void BM_ProducerConsumer(benchmark::State& state) {
  const size_t size = static_cast<size_t>(state.range(0));
  Ring& ring = g_ring;
  if (state.thread_index() == 0) {
    uint64_t head = ring.head.load(std::memory_order_relaxed);
    for (auto _ : state) {
      void* p = malloc(size);
      touch(p);
      unsigned spins = 0;
      while (head - ring.tail.load(std::memory_order_acquire) >= kRingLen) spin_wait(spins);
      ring.slots[head % kRingLen] = p;
      ring.head.store(++head, std::memory_order_release);
    }
    state.SetItemsProcessed(state.iterations());
  } else {
    uint64_t tail = ring.tail.load(std::memory_order_relaxed);
    for (auto _ : state) {
      unsigned spins = 0;
      while (ring.head.load(std::memory_order_acquire) == tail) spin_wait(spins);
      void* p = ring.slots[tail % kRingLen];
      ring.tail.store(++tail, std::memory_order_release);
      free(p);
    }
  }
}
BENCHMARK(BM_ProducerConsumer)->Arg(32)->Arg(256)->Threads(2)->UseRealTime();

// ---------------------------------------------------------------------------------------------
// Long-running churn: each thread keeps a working set of kChurnObjects live objects of random
// small sizes and replaces one at random per item (free + malloc of a new random size). Filling
// and emptying the working set is not timed.
constexpr size_t kChurnObjects = 100000;

void BM_Churn(benchmark::State& state) {
  Rng r(99 + static_cast<uint64_t>(state.thread_index()));
  std::vector<void*> live(kChurnObjects);
  for (auto& p : live) {
    p = malloc(mixed_size(r));
    touch(p);
  }
  for (auto _ : state) {
    const uint32_t i = r.below(kChurnObjects);
    free(live[i]);
    void* p = malloc(mixed_size(r));
    touch(p);
    live[i] = p;
  }
  benchmark::DoNotOptimize(live.data());
  for (void* p : live) free(p);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Churn)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// The same churn with medium and large blocks: kMediumObjects live blocks of 257..32768 bytes
// (uniform), one freed and replaced by a block of a new random size per item. Single thread.
constexpr size_t kMediumObjects = 4096;

inline size_t medium_size(Rng& r) {
  return 257 + r.below(32768 - 256);
}

void BM_MediumChurn(benchmark::State& state) {
  Rng r(4096);
  std::vector<void*> live(kMediumObjects);
  for (auto& p : live) {
    p = malloc(medium_size(r));
    touch(p);
  }
  for (auto _ : state) {
    const uint32_t i = r.below(kMediumObjects);
    free(live[i]);
    void* p = malloc(medium_size(r));
    benchmark::DoNotOptimize(p);
    touch(p);
    live[i] = p;
  }
  for (void* p : live) free(p);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_MediumChurn);

// ---------------------------------------------------------------------------------------------
// Cross-thread traffic. The statics below are sized for kMaxThreads; a run with more threads is
// skipped with an error.
constexpr int kMaxThreads = 16;

bool too_many_threads(benchmark::State& state) {
  if (state.threads() <= kMaxThreads) return false;
  state.SkipWithError("more threads than kMaxThreads");
  return true;
}

// A bounded single-producer single-consumer queue of block pointers that never blocks: a send
// that does not fit fails (the sender then frees the blocks itself), and the receiver frees
// whatever has arrived. Slots are written before head is published (release) and read after it
// is seen (acquire); tail does the same in the other direction before a slot is reused.
template <size_t N>
struct Mailbox {
  static_assert((N & (N - 1)) == 0, "N must be a power of two");
  alignas(64) std::atomic<uint64_t> head{0};  // written by the sender only
  uint64_t tail_seen = 0;                     // the sender's last look at tail
  alignas(64) std::atomic<uint64_t> tail{0};  // written by the receiver only
  alignas(64) void* slots[N];

  // Sends blocks[0..n) as one batch, or nothing when there is no room for all of them.
  bool try_send(void* const* blocks, size_t n) {
    const uint64_t h = head.load(std::memory_order_relaxed);
    if (h + n - tail_seen > N) {
      tail_seen = tail.load(std::memory_order_acquire);
      if (h + n - tail_seen > N) return false;
    }
    for (size_t i = 0; i < n; ++i) slots[(h + i) & (N - 1)] = blocks[i];
    head.store(h + n, std::memory_order_release);
    return true;
  }

  // try_send, and when the mailbox is full, once more after giving the CPU away: with more
  // threads than cores the receiver may just be waiting for one.
  bool send_or_yield(void* const* blocks, size_t n) {
    if (try_send(blocks, n)) return true;
    sched_yield();
    return try_send(blocks, n);
  }

  // Frees every block that has arrived (none may have).
  void free_arrived() {
    const uint64_t t = tail.load(std::memory_order_relaxed);
    const uint64_t h = head.load(std::memory_order_acquire);
    for (uint64_t i = t; i != h; ++i) free(slots[i & (N - 1)]);
    tail.store(h, std::memory_order_release);
  }
};

// Reports the counter "remote": the share of blocks freed by another thread than their
// allocator's (the rest found the next thread's mailbox full, or there was one thread), averaged
// over the threads.
void set_remote_share(benchmark::State& state, int64_t sent, int64_t of) {
  state.counters["remote"] =
      benchmark::Counter(of > 0 ? static_cast<double>(sent) / static_cast<double>(of) : 0.0,
                         benchmark::Counter::kAvgThreads);
}

// Server: each thread serves requests on a slot array of kServerSlots live blocks, replacing the
// block in a random slot per item (free, then malloc of 8..1000 bytes). Every kServerSwapEvery
// items it swaps its whole array for the one in a shared mailbox, so the blocks it allocated are
// later freed by whichever thread picks the array up. There are threads + 1 arrays: thread 0
// puts a spare in the mailbox before the loop, so a swap always gets an array back (possibly its
// own) and never waits. One thread keeps its array.
constexpr size_t kServerSlots = 1000;
constexpr uint32_t kServerSwapEvery = 1000;
void* g_server_arrays[kMaxThreads + 1][kServerSlots];
std::atomic<int> g_server_mailbox{-1};  // index into g_server_arrays

inline size_t server_size(Rng& r) {
  return 8 + r.below(1000 - 7);
}

void server_fill(void** slots, Rng& r) {
  for (size_t i = 0; i < kServerSlots; ++i) {
    slots[i] = malloc(server_size(r));
    touch(slots[i]);
  }
}

void server_empty(void** slots) {
  for (size_t i = 0; i < kServerSlots; ++i) free(slots[i]);
}

void BM_Server(benchmark::State& state) {
  if (too_many_threads(state)) return;
  const int threads = state.threads();
  const int self = state.thread_index();
  const bool swap = threads > 1;
  Rng r(5000 + static_cast<uint64_t>(self));
  int mine = self;
  server_fill(g_server_arrays[mine], r);
  if (swap && self == 0) {
    server_fill(g_server_arrays[threads], r);
    g_server_mailbox.store(threads, std::memory_order_release);
  }
  void** slots = g_server_arrays[mine];
  uint32_t until_swap = kServerSwapEvery;
  for (auto _ : state) {
    const uint32_t i = r.below(kServerSlots);
    free(slots[i]);
    void* p = malloc(server_size(r));
    benchmark::DoNotOptimize(p);
    touch(p);
    slots[i] = p;
    if (--until_swap == 0) {
      until_swap = kServerSwapEvery;
      if (swap) {
        mine = g_server_mailbox.exchange(mine, std::memory_order_acq_rel);
        slots = g_server_arrays[mine];
      }
    }
  }
  // Every thread has left the loop: no more swaps. Each frees the array it holds, thread 0 also
  // the one left in the mailbox.
  server_empty(slots);
  if (swap && self == 0) server_empty(g_server_arrays[g_server_mailbox.exchange(-1)]);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Server)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// CrossThread: each item allocates a block of 16 B..16 KiB, log-uniform (an octave 2^4..2^13
// picked uniformly, then a size uniform within it), so small and large blocks are equally
// frequent per octave. Blocks go in batches of kCrossBatch to the next thread of a ring
// (thread i sends to i+1, the last to thread 0), which frees them; a batch that does not fit in
// the next thread's mailbox is freed by its sender. With one thread each batch is freed at once
// by its allocator, in allocation order. One iteration is one batch (Google Benchmark's time
// column is per batch), one item one block.
constexpr size_t kCrossBatch = 64;
constexpr size_t kMailboxLen = 4096;
Mailbox<kMailboxLen> g_cross_inbox[kMaxThreads];

inline size_t log_uniform_size(Rng& r) {
  const uint32_t octave = 4 + r.below(10);
  return (size_t{1} << octave) + r.below(1u << octave);
}

void BM_CrossThread(benchmark::State& state) {
  if (too_many_threads(state)) return;
  const int threads = state.threads();
  const int self = state.thread_index();
  const bool ring = threads > 1;
  Rng r(6000 + static_cast<uint64_t>(self));
  auto& inbox = g_cross_inbox[self];
  auto& next = g_cross_inbox[(self + 1) % threads];
  void* batch[kCrossBatch];
  int64_t sent = 0;
  for (auto _ : state) {
    for (auto& slot : batch) {
      void* p = malloc(log_uniform_size(r));
      benchmark::DoNotOptimize(p);
      touch(p);
      slot = p;
    }
    if (ring && next.send_or_yield(batch, kCrossBatch)) {
      ++sent;
    } else {
      for (void* p : batch) free(p);
    }
    if (ring) inbox.free_arrived();
  }
  // Every sender has left the loop: what is in the inbox now is all it will ever get.
  if (ring) inbox.free_arrived();
  state.SetItemsProcessed(state.iterations() * static_cast<int64_t>(kCrossBatch));
  set_remote_share(state, sent, state.iterations());
}
BENCHMARK(BM_CrossThread)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

// Handoff: each item allocates one object of 16..2048 bytes (uniform) and appends it to the
// thread's FIFO. Objects stay there for kHandoffKeep allocations; then the oldest kHandoffGroup
// at a time are handed to the next thread of the chain (thread i to i+1, the last to thread 0),
// which frees them when it next hands on its own. A group that does not fit in the next thread's
// mailbox is freed by its sender; with one thread the oldest are freed by their allocator.
constexpr size_t kHandoffKeep = 256;
constexpr size_t kHandoffGroup = 32;
constexpr size_t kHandoffFifoLen = 512;  // a power of two, a multiple of kHandoffGroup
static_assert(kHandoffFifoLen >= kHandoffKeep + kHandoffGroup &&
              kHandoffFifoLen % kHandoffGroup == 0);
Mailbox<kMailboxLen> g_handoff_inbox[kMaxThreads];

void BM_Handoff(benchmark::State& state) {
  if (too_many_threads(state)) return;
  const int threads = state.threads();
  const int self = state.thread_index();
  const bool chain = threads > 1;
  Rng r(7000 + static_cast<uint64_t>(self));
  auto& inbox = g_handoff_inbox[self];
  auto& next = g_handoff_inbox[(self + 1) % threads];
  std::vector<void*> fifo(kHandoffFifoLen);
  uint64_t head = 0, tail = 0;  // tail is always a multiple of kHandoffGroup
  int64_t sent = 0;
  for (auto _ : state) {
    void* p = malloc(16 + r.below(2048 - 15));
    benchmark::DoNotOptimize(p);
    touch(p);
    fifo[head++ % kHandoffFifoLen] = p;
    if (head - tail == kHandoffKeep + kHandoffGroup) {
      void** oldest = &fifo[tail % kHandoffFifoLen];  // contiguous: the FIFO's length and tail
      tail += kHandoffGroup;                          // are multiples of the group
      if (chain && next.send_or_yield(oldest, kHandoffGroup)) {
        sent += kHandoffGroup;
      } else {
        for (size_t i = 0; i < kHandoffGroup; ++i) free(oldest[i]);
      }
      if (chain) inbox.free_arrived();
    }
  }
  // Every sender has left the loop: free what this thread still keeps and what it was sent.
  for (; tail != head; ++tail) free(fifo[tail % kHandoffFifoLen]);
  if (chain) inbox.free_arrived();
  state.SetItemsProcessed(state.iterations());
  set_remote_share(state, sent, state.iterations());
}
BENCHMARK(BM_Handoff)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
