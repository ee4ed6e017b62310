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
BENCHMARK(BM_Pair)->DenseRange(16, 256, 16)->Arg(512)->Arg(1024)->Arg(4096)->Arg(32768);

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
BENCHMARK(BM_Calloc)->Arg(32)->Arg(256)->Arg(1024)->Arg(4096);

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
BENCHMARK(BM_PosixMemalign)->Args({32, 64})->Args({64, 64})->Args({128, 256})->Args({4096, 64});

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

}  // namespace

BENCHMARK_MAIN();
