// api_fuzzer: libFuzzer target that drives the core's malloc family (pg::malloc_impl & co, linked
// from pgcore_fuzz, no LD_PRELOAD) with sequences of operations decoded from the input, and checks
// every result against a model of the C contracts kept here:
//   - every live block keeps the pattern written into it (derived from its id), over its whole
//     usable size: checked before every free and realloc, and after realloc over what it must keep;
//   - alignment (16 always, and what memalign & co asked for), usable_size >= requested and stable,
//     calloc's zeroes, the whole usable size writable;
//   - no two live blocks overlap (an ordered map of the live ranges, shared by the threads);
//   - errors: NULL + ENOMEM for impossible sizes and overflowing products, EINVAL with *memptr and
//     errno untouched for posix_memalign's bad alignments, EINVAL for aligned_alloc's, free keeps
//     errno, a failed realloc leaves the old block as it was.
// An input may run its operations on up to four threads (libFuzzer's and three workers), which
// hand blocks to each other so that some frees and reallocs are cross-thread; the input ends when
// every worker is done (and joined, when the input makes them exit), and everything is freed
// before it ends, so nothing accumulates from one input to the next. A mismatch prints one line and
// aborts (libFuzzer keeps the input as a crash).
//
// Input layout (decoded by api_input.h, which make_seeds.cpp also writes seeds with): one
// configuration byte (bits 0-1: worker threads; bit 2: workers free their own blocks when done
// instead of leaving them to the main thread; bit 3: workers then detach their heaps, as a thread
// exit would; bits 4 and 5 both set: workers then exit for real), then operations, each an opcode
// byte (bits 0-5: the operation, weighted by kWeights; bits 6-7: the thread, modulo the thread
// count), a slot byte and the operation's arguments (sizes, counts, alignments: the pick_*
// functions). Missing bytes read as zero, so every input is valid. PG_FUZZ_TRACE=1 prints the
// operations as they run.
//
// The core runs with its defaults (POOLGUARD_ON_ERROR=abort), so an error it detects itself (a
// corrupt free list, a double free) also ends the run as a crash.
#include <errno.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <iterator>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "front/alloc.h"
#include "front/introspect.h"
#include "guard/guard.h"
#include "pool/config.h"
#include "tests/fuzz/api_input.h"
#include "track/tracker.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the pattern's bytes are read as words");

extern "C" void* __libc_malloc(size_t);  // glibc's own malloc (ASan does not intercept it)

namespace {

using namespace pg_fuzz;  // the input format (api_input.h)

constexpr size_t kMaxBulk = 4096;  // blocks a thread holds on its bulk list (kBurst)
// Alignments up to here must succeed; above, glibc may be refused the address space (1 TiB at
// 2^40), so NULL with ENOMEM is an accepted answer too.
constexpr size_t kMustSucceedAlign = size_t{1} << 24;
constexpr size_t kLiveBudget = size_t{32} << 20;  // usable bytes all threads may hold at once
constexpr int kErrnoSentinel = 4242;              // no real errno value
void* const kPoisonPtr = reinterpret_cast<void*>(uintptr_t{0x5a5a5a5a5a5a5a50});

// ---- The model ---------------------------------------------------------------------------------

struct Block {
  uint8_t* p = nullptr;
  size_t req = 0;     // bytes asked for
  size_t usable = 0;  // usable_size_impl at allocation; must not change while it lives
  uint64_t id = 0;    // unique; seeds the block's pattern
};

struct Range {
  uintptr_t end;
  uint64_t id;
};

// What the threads of one input share. Lives for the whole process (never destroyed: libFuzzer
// may exit from any thread).
struct Shared {
  std::mutex mu;
  std::map<uintptr_t, Range> live;  // start -> end of every live block, all threads
  std::deque<Block> mailbox[kMaxThreads];
  std::vector<Block> leftovers;  // workers' blocks left for the main thread to free
  std::atomic<uint64_t> next_id{1};
  std::atomic<size_t> live_bytes{0};
};
Shared& shared() {
  static Shared* s = new Shared;
  return *s;
}

size_t g_page = 4096;
bool g_trace = false;  // PG_FUZZ_TRACE=1: print every operation as it runs (reading reproducers)
#if defined(PG_FUZZ_SAMPLED)
constexpr bool g_sampled = true;
#else
constexpr bool g_sampled = false;
#endif

// Where a mismatch happened, for its report.
struct Where {
  size_t thread = 0;
  size_t index = 0;
  const Op* op = nullptr;
};
thread_local Where t_where;

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const Op* op = t_where.op;
  if (op == nullptr) {
    fprintf(stderr, "api_fuzzer: MODEL MISMATCH: thread %zu, after its operations: %s\n",
            t_where.thread, msg);
  } else {
    fprintf(stderr,
            "api_fuzzer: MODEL MISMATCH: thread %zu, operation %zu (%s slot=%u size=%zu "
            "count=%zu align=%zu): %s\n",
            t_where.thread, t_where.index, kKindNames[static_cast<int>(op->kind)], op->slot,
            op->size, op->count, op->align, msg);
  }
  abort();
}

// The pattern: byte i of a block is byte i % 8 of the word key ^ (i / 8) * golden, key mixed from
// the block's id, so blocks differ from each other and a block differs along itself (a shifted or
// stale copy does not match).
uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
// fill and mismatch touch every byte of every block: they are left out of the coverage
// instrumentation (a callback per comparison) and of ASan's (the blocks are the core's memory or
// glibc's, which ASan does not track anyway), which would make them most of the fuzzer's time.
#define PG_FUZZ_HOT_LOOP __attribute__((no_sanitize("coverage", "address")))

PG_FUZZ_HOT_LOOP inline __attribute__((always_inline)) uint64_t pattern_word(uint64_t key,
                                                                             size_t k) {
  return key ^ (k * 0x9E3779B97F4A7C15ull);
}
PG_FUZZ_HOT_LOOP inline __attribute__((always_inline)) uint8_t pattern_byte(uint64_t key,
                                                                            size_t i) {
  return static_cast<uint8_t>(pattern_word(key, i >> 3) >> (8 * (i & 7)));
}

PG_FUZZ_HOT_LOOP void fill(uint8_t* p, size_t from, size_t to, uint64_t id) {
  uint64_t key = mix(id);
  size_t i = from;
  for (; i < to && (i & 7) != 0; ++i) p[i] = pattern_byte(key, i);
  for (; i + 8 <= to; i += 8) {
    uint64_t w = pattern_word(key, i >> 3);
    memcpy(p + i, &w, 8);
  }
  for (; i < to; ++i) p[i] = pattern_byte(key, i);
}

// First offset in [0, to) whose byte is not the pattern's, or `to`.
PG_FUZZ_HOT_LOOP size_t mismatch(const uint8_t* p, size_t to, uint64_t id) {
  uint64_t key = mix(id);
  size_t i = 0;
  for (; i + 8 <= to; i += 8) {
    uint64_t w;
    memcpy(&w, p + i, 8);
    if (w != pattern_word(key, i >> 3)) break;
  }
  for (; i < to; ++i) {
    if (p[i] != pattern_byte(key, i)) return i;
  }
  return to;
}

void verify(const Block& b, size_t upto, const char* when) {
  size_t bad = mismatch(b.p, upto, b.id);
  if (bad != upto) {
    fail(
        "block %p (id %llu, %zu bytes asked, %zu usable) changed %s: offset %zu holds 0x%02x, "
        "not 0x%02x",
        static_cast<void*>(b.p), static_cast<unsigned long long>(b.id), b.req, b.usable, when, bad,
        b.p[bad], pattern_byte(mix(b.id), bad));
  }
}

// Adds a block to the live ranges; its range must not meet any other's. A block of usable size 0
// (memalign with a big alignment and size 0) still owns its address.
void track(const Block& b) {
  uintptr_t s = reinterpret_cast<uintptr_t>(b.p);
  uintptr_t e = s + std::max<size_t>(b.usable, 1);
  Shared& sh = shared();
  std::lock_guard<std::mutex> lock(sh.mu);
  auto next = sh.live.upper_bound(s);
  if (next != sh.live.end() && next->first < e) {
    fail("new block [%p, %p) overlaps live block [%p, %p) (id %llu)", b.p, (void*)e,
         (void*)next->first, (void*)next->second.end, (unsigned long long)next->second.id);
  }
  if (next != sh.live.begin()) {
    auto prev = std::prev(next);
    if (prev->second.end > s) {
      fail("new block [%p, %p) overlaps live block [%p, %p) (id %llu)", b.p, (void*)e,
           (void*)prev->first, (void*)prev->second.end, (unsigned long long)prev->second.id);
    }
  }
  sh.live.emplace(s, Range{e, b.id});
}

// Removes a block from the live ranges, before it is freed or reallocated (another thread may be
// handed its address as soon as it is).
void untrack(const Block& b) {
  Shared& sh = shared();
  std::lock_guard<std::mutex> lock(sh.mu);
  auto it = sh.live.find(reinterpret_cast<uintptr_t>(b.p));
  if (it == sh.live.end() || it->second.id != b.id) fail("harness: block %p not tracked", b.p);
  sh.live.erase(it);
}

// A request the budget cannot afford becomes a small one (the sequence goes on meaningfully).
size_t afford(size_t size) {
  if (size >= kHugeMin) return size;
  if (shared().live_bytes.load(std::memory_order_relaxed) + size > kLiveBudget) return size % 4097;
  return size;
}

bool is_pow2(size_t a) {
  return a != 0 && (a & (a - 1)) == 0;
}

// Per thread, per input.
struct Ctx {
  size_t index = 0;  // thread number: 0 is libFuzzer's
  Block slots[kSlots];
  std::vector<Block> bulk;  // kBurst's blocks
};

void release(Block& b, bool sized) {
  verify(b, b.usable, "before free");
  size_t u = pg::usable_size_impl(b.p);
  if (u != b.usable) fail("usable_size(%p) went from %zu to %zu", b.p, b.usable, u);
  untrack(b);
  errno = kErrnoSentinel;
  if (sized) {
    pg::free_sized_impl(b.p, b.req);
  } else {
    pg::free_impl(b.p);
  }
  if (errno != kErrnoSentinel) fail("free(%p) changed errno to %d", b.p, errno);
  shared().live_bytes.fetch_sub(b.usable, std::memory_order_relaxed);
  b = Block{};
}

// Checks a block just returned for a request of `req` bytes aligned to `align`, and makes it the
// slot's: tracked, calloc's zeroes checked, then the whole usable size written.
void adopt(Block& slot, void* p, size_t req, size_t align, bool zeroed, const char* what) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (a % pg::kAlign != 0) fail("%s returned %p, not %zu-byte aligned", what, p, pg::kAlign);
  if (align > 1 && a % align != 0) fail("%s returned %p, not %zu-byte aligned", what, p, align);
  size_t usable = pg::usable_size_impl(p);
  if (usable < req) fail("%s returned %p with usable size %zu < %zu", what, p, usable, req);
  Block b{static_cast<uint8_t*>(p), req, usable,
          shared().next_id.fetch_add(1, std::memory_order_relaxed)};
  track(b);
  if (zeroed) {
    for (size_t i = 0; i < req; ++i) {
      if (b.p[i] != 0) fail("%s returned %p whose byte %zu is 0x%02x", what, p, i, b.p[i]);
    }
  }
  fill(b.p, 0, usable, b.id);
  shared().live_bytes.fetch_add(usable, std::memory_order_relaxed);
  slot = b;
}

// A call that had to fail with NULL and errno `err`.
void expect_null(void* p, int err, const char* what) {
  if (p != nullptr) fail("%s succeeded (%p) where it must fail", what, p);
  if (errno != err) fail("%s failed with errno %d, not %d", what, errno, err);
}

// The result of an allocation of `req` bytes aligned to `align` that must succeed unless
// `may_fail`, in which case NULL with ENOMEM is accepted too.
void allocated(Block& slot, void* p, size_t req, size_t align, bool may_fail, bool zeroed,
               const char* what) {
  if (req >= kHugeMin) return expect_null(p, ENOMEM, what);
  if (p == nullptr) {
    if (!may_fail) fail("%s failed (errno %d) for %zu bytes", what, errno, req);
    if (errno != ENOMEM) fail("%s failed with errno %d, not ENOMEM", what, errno);
    return;
  }
  adopt(slot, p, req, align, zeroed, what);
}

// realloc and reallocarray (once the product is known not to overflow) of the slot's block to
// `size` bytes; call(p) makes the call.
template <typename Call>
void resize(Block& slot, size_t size, const char* what, Call call) {
  if (slot.p == nullptr) {
    errno = kErrnoSentinel;
    void* p = call(nullptr);  // malloc(size)
    return allocated(slot, p, size, 1, false, false, what);
  }
  verify(slot, slot.usable, "before realloc");
  untrack(slot);
  errno = kErrnoSentinel;
  void* q = call(slot.p);
  if (size == 0) {
    // glibc's rule: realloc(p, 0) frees p and returns NULL.
    if (q != nullptr) fail("%s(%p, 0) returned %p, not NULL", what, slot.p, q);
    shared().live_bytes.fetch_sub(slot.usable, std::memory_order_relaxed);
    slot = Block{};
    return;
  }
  if (q == nullptr) {
    if (size < kHugeMin) fail("%s(%p, %zu) failed (errno %d)", what, slot.p, size, errno);
    if (errno != ENOMEM) {
      fail("%s(%p, %zu) failed with errno %d, not ENOMEM", what, slot.p, size, errno);
    }
    // The old block must be as it was.
    size_t u = pg::usable_size_impl(slot.p);
    if (u != slot.usable) {
      fail("failed %s changed usable_size from %zu to %zu", what, slot.usable, u);
    }
    track(slot);
    verify(slot, slot.usable, "by a failed realloc");
    return;
  }
  if (size >= kHugeMin) fail("%s(%p, %zu) succeeded (%p)", what, slot.p, size, q);
  if (reinterpret_cast<uintptr_t>(q) % pg::kAlign != 0) fail("%s returned %p, misaligned", what, q);
  size_t usable = pg::usable_size_impl(q);
  if (usable < size) fail("%s returned %p with usable size %zu < %zu", what, q, usable, size);
  // What the block held up to the new size is kept: everything written, i.e. the whole old usable
  // size (usable_size says all of it may be used; glibc keeps that much too).
  size_t keep = std::min(slot.usable, size);
  Block b{static_cast<uint8_t*>(q), size, usable, slot.id};
  track(b);
  verify(b, keep, "by realloc (the kept part)");
  fill(b.p, keep, usable, b.id);
  shared().live_bytes.fetch_add(usable, std::memory_order_relaxed);
  shared().live_bytes.fetch_sub(slot.usable, std::memory_order_relaxed);
  slot = b;
}

// Power of two at least a (memalign's rounding); a <= 2^63.
size_t round_pow2(size_t a) {
  size_t p = 1;
  while (p < a) p <<= 1;
  return p;
}

void run_op(Ctx& c, const Op& op) {
  Block& slot = c.slots[op.slot];
  // Every allocation goes into the slot: whatever it held is freed first.
  switch (op.kind) {
    case Kind::kMalloc:
    case Kind::kCalloc:
    case Kind::kMemalign:
    case Kind::kPosixMemalign:
    case Kind::kAlignedAlloc:
    case Kind::kValloc:
    case Kind::kPvalloc:
    case Kind::kForeign:
      if (slot.p != nullptr) release(slot, false);
      break;
    default:
      break;
  }
  switch (op.kind) {
    case Kind::kMalloc: {
      size_t n = afford(op.size);
      errno = kErrnoSentinel;
      void* p = pg::malloc_impl(n);
      return allocated(slot, p, n, 1, false, false, "malloc");
    }
    case Kind::kCalloc: {
      size_t count = op.count, total;
      bool overflow = __builtin_mul_overflow(count, op.size, &total);
      if (!overflow && total < kHugeMin && afford(total) != total) {
        count = 0;  // more than the budget (up to 2^62) would be real memory: not that
        total = 0;
      }
      errno = kErrnoSentinel;
      void* p = pg::calloc_impl(count, op.size);
      if (overflow) return expect_null(p, ENOMEM, "calloc (overflowing product)");
      return allocated(slot, p, total, 1, false, true, "calloc");
    }
    case Kind::kRealloc: {
      size_t n = afford(op.size);
      return resize(slot, n, "realloc", [n](void* p) { return pg::realloc_impl(p, n); });
    }
    case Kind::kReallocArray: {
      size_t count = op.count, elem = op.size, total;
      if (__builtin_mul_overflow(count, elem, &total)) {
        // Fails before anything happens to the block.
        if (slot.p != nullptr) verify(slot, slot.usable, "before reallocarray");
        errno = kErrnoSentinel;
        void* q = pg::reallocarray_impl(slot.p, count, elem);
        expect_null(q, ENOMEM, "reallocarray (overflowing product)");
        if (slot.p != nullptr) verify(slot, slot.usable, "by a failed reallocarray");
        return;
      }
      if (total < kHugeMin && afford(total) != total) {
        count = 1;  // more than the budget (up to 2^62) would be real memory: not that
        elem %= 4097;
        total = elem;
      }
      return resize(slot, total, "reallocarray",
                    [count, elem](void* p) { return pg::reallocarray_impl(p, count, elem); });
    }
    case Kind::kMemalign: {
      size_t n = afford(op.size), align = op.align;
      errno = kErrnoSentinel;
      void* p = pg::memalign_impl(align, n);
      if (align > (SIZE_MAX >> 1) + 1) return expect_null(p, EINVAL, "memalign (alignment)");
      size_t a = round_pow2(align);
      return allocated(slot, p, n, a, a > kMustSucceedAlign, false, "memalign");
    }
    case Kind::kPosixMemalign: {
      size_t n = afford(op.size), align = op.align;
      void* out = kPoisonPtr;
      errno = kErrnoSentinel;
      int rc = pg::posix_memalign_impl(&out, align, n);
      // posix_memalign reports errors by its result alone: on failure, errno and *memptr stay as
      // they were. (After a success errno is unspecified, as for any call that does not say
      // otherwise; with the tracker on it was seen to hold EAGAIN after one.)
      if (rc != 0 && errno != kErrnoSentinel) {
        fail("failed posix_memalign changed errno to %d (rc %d)", errno, rc);
      }
      if (rc != 0 && out != kPoisonPtr) fail("failed posix_memalign wrote %p into *memptr", out);
      if (!is_pow2(align) || align % sizeof(void*) != 0) {
        if (rc != EINVAL) fail("posix_memalign returned %d, not EINVAL (%p)", rc, out);
        return;
      }
      if (rc == 0 && n >= kHugeMin) fail("posix_memalign succeeded (%p) where it must fail", out);
      if (rc != 0) {
        if (rc != ENOMEM) fail("posix_memalign returned %d, not ENOMEM", rc);
        if (n < kHugeMin && align <= kMustSucceedAlign) fail("posix_memalign failed");
        return;
      }
      return adopt(slot, out, n, align, false, "posix_memalign");
    }
    case Kind::kAlignedAlloc: {
      size_t n = afford(op.size), align = op.align;
      errno = kErrnoSentinel;
      void* p = pg::aligned_alloc_impl(align, n);
      if (!is_pow2(align)) return expect_null(p, EINVAL, "aligned_alloc (alignment)");
      return allocated(slot, p, n, align, align > kMustSucceedAlign, false, "aligned_alloc");
    }
    case Kind::kValloc: {
      size_t n = afford(op.size);
      errno = kErrnoSentinel;
      void* p = pg::valloc_impl(n);
      return allocated(slot, p, n, g_page, false, false, "valloc");
    }
    case Kind::kPvalloc: {
      size_t n = afford(op.size);
      errno = kErrnoSentinel;
      void* p = pg::pvalloc_impl(n);
      // The size is rounded up to whole pages (0 to one page); rounding SIZE_MAX overflows.
      size_t rounded = (n + g_page - 1) & ~(g_page - 1);
      if (rounded < n || rounded >= kHugeMin) return expect_null(p, ENOMEM, "pvalloc");
      if (rounded == 0) rounded = g_page;
      return allocated(slot, p, rounded, g_page, false, false, "pvalloc");
    }
    case Kind::kForeign: {
      // glibc's own block, as one allocated before poolguard was loaded: the core must pass it to
      // glibc (usable size, realloc, free) wherever it goes.
      size_t n = afford(op.size);
      if (n >= kHugeMin) return;
      void* p = __libc_malloc(n);
      if (p == nullptr) fail("harness: __libc_malloc(%zu) failed", n);
      return adopt(slot, p, n, 1, false, "__libc_malloc");
    }
    case Kind::kBurst: {
      // Bursts are for filling pools and arenas: sizes of up to 16 KiB.
      size_t n = op.size % 16385;
      for (size_t i = 0; i < op.count && c.bulk.size() < kMaxBulk; ++i) {
        size_t m = afford(n);
        errno = kErrnoSentinel;
        Block b;
        allocated(b, pg::malloc_impl(m), m, 1, false, false, "malloc (burst)");
        c.bulk.push_back(b);
      }
      return;
    }
    case Kind::kBurstFree:
    case Kind::kBurstGive: {
      std::vector<Block> picked;
      size_t n = c.bulk.size();
      for (size_t k = 0; k < n; ++k) {
        size_t i = op.reverse ? n - 1 - k : k;
        if (i % op.stride != op.offset) continue;
        picked.push_back(c.bulk[i]);
        c.bulk[i].p = nullptr;
      }
      c.bulk.erase(std::remove_if(c.bulk.begin(), c.bulk.end(),
                                  [](const Block& b) { return b.p == nullptr; }),
                   c.bulk.end());
      if (op.kind == Kind::kBurstFree) {
        for (Block& b : picked) release(b, false);
        return;
      }
      Shared& sh = shared();
      std::lock_guard<std::mutex> lock(sh.mu);
      std::deque<Block>& box = sh.mailbox[op.target];
      box.insert(box.end(), picked.begin(), picked.end());
      return;
    }
    case Kind::kDrain: {
      std::deque<Block> box;
      {
        Shared& sh = shared();
        std::lock_guard<std::mutex> lock(sh.mu);
        box.swap(sh.mailbox[c.index]);
      }
      for (Block& b : box) release(b, false);
      return;
    }
    case Kind::kFree:
    case Kind::kFreeSized:
      if (slot.p != nullptr) return release(slot, op.kind == Kind::kFreeSized);
      errno = kErrnoSentinel;
      pg::free_impl(nullptr);
      if (errno != kErrnoSentinel) fail("free(NULL) changed errno to %d", errno);
      return;
    case Kind::kUsableSize: {
      size_t u = pg::usable_size_impl(slot.p);
      if (u != slot.usable) fail("usable_size(%p) is %zu, was %zu", slot.p, u, slot.usable);
      return;
    }
    case Kind::kGive: {
      if (slot.p == nullptr) return;
      Shared& sh = shared();
      std::lock_guard<std::mutex> lock(sh.mu);
      sh.mailbox[op.target].push_back(slot);
      slot = Block{};
      return;
    }
    case Kind::kTake: {
      Block b;
      {
        Shared& sh = shared();
        std::lock_guard<std::mutex> lock(sh.mu);
        std::deque<Block>& box = sh.mailbox[c.index];
        if (box.empty()) return;
        b = box.front();
        box.pop_front();
      }
      if (slot.p != nullptr) release(slot, false);
      verify(b, b.usable, "while handed between threads");
      slot = b;
      return;
    }
    case Kind::kCollect:
      pg::thread_collect();
      return;
    case Kind::kDetach:
      pg::thread_detach();
      return;
    case Kind::kNumKinds:
      return;
  }
}

void release_all(Block* blocks, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (blocks[i].p != nullptr) release(blocks[i], false);
  }
}

void trace(size_t thread, size_t i, const Op& op) {
  fprintf(stderr,
          "api_fuzzer: thread %zu op %zu: %s slot=%u size=%zu count=%zu align=%zu target=%u "
          "stride=%u offset=%u reverse=%d\n",
          thread, i, kKindNames[static_cast<int>(op.kind)], op.slot, op.size, op.count, op.align,
          op.target, op.stride, op.offset, op.reverse);
}

// A thread's share of an input, and what a worker does when its operations are done.
struct Job {
  const std::vector<Op>* ops = nullptr;
  Ctx* ctx = nullptr;
  bool free_own = false;  // free its blocks itself, else leave them to the main thread
  bool detach = false;    // then drop its heap, as a thread exit does (pg::thread_detach)
  bool exit = false;      // then really exit (the next input that needs it starts a new thread)
};

// The worker threads outlive the inputs: starting and ending threads for every input cost far
// more than the inputs' work (ASan maps and unmaps their stacks and shadow), so most inputs stand
// in for an exit with pg::thread_detach, and only some end their workers for real.
class Crew {
 public:
  // Runs jobs[1..n) on workers 1..n-1 and jobs[0] on the calling thread, and returns when all are
  // done (and the workers told to exit are joined).
  void run(Job* jobs, size_t n) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (size_t t = 1; t < kMaxThreads; ++t) jobs_[t] = t < n ? jobs[t] : Job{};
      pending_ = n - 1;
      ++generation_;
      // A thread started here waits for the lock, then finds its job in this generation.
      for (size_t t = 1; t < n; ++t) {
        if (!threads_[t].joinable()) threads_[t] = std::thread(&Crew::work, this, t);
      }
    }
    go_.notify_all();
    run_job(jobs[0], 0);
    {
      std::unique_lock<std::mutex> lock(mu_);
      done_.wait(lock, [this] { return pending_ == 0; });
    }
    for (size_t t = 1; t < n; ++t) {
      if (jobs[t].exit) threads_[t].join();
    }
  }

 private:
  static void run_job(const Job& job, size_t index) {
    const std::vector<Op>& ops = *job.ops;
    t_where = Where{index, 0, nullptr};
    for (size_t i = 0; i < ops.size(); ++i) {
      t_where.index = i;
      t_where.op = &ops[i];
      if (g_trace) trace(index, i, ops[i]);
      run_op(*job.ctx, ops[i]);
    }
    t_where.op = nullptr;
    if (index == 0) return;  // the main thread's blocks are freed after the others'
    Ctx& c = *job.ctx;
    if (job.free_own) {
      release_all(c.slots, kSlots);
      release_all(c.bulk.data(), c.bulk.size());
    } else {
      // Left to the main thread, which frees them after this heap is gone if it is detached or
      // exits: frees into an abandoned heap's pools.
      Shared& sh = shared();
      std::lock_guard<std::mutex> lock(sh.mu);
      for (Block& b : c.slots) {
        if (b.p != nullptr) sh.leftovers.push_back(b);
        b = Block{};
      }
      sh.leftovers.insert(sh.leftovers.end(), c.bulk.begin(), c.bulk.end());
    }
    c.bulk.clear();
    if (job.detach) pg::thread_detach();
  }

  void work(size_t index) {
    uint64_t seen = 0;
    for (;;) {
      Job job;
      {
        std::unique_lock<std::mutex> lock(mu_);
        go_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        job = jobs_[index];
      }
      if (job.ops == nullptr) continue;  // not in this input
      run_job(job, index);
      std::lock_guard<std::mutex> lock(mu_);
      if (--pending_ == 0) done_.notify_one();
      if (job.exit) return;  // joined by run()
    }
  }

  std::mutex mu_;
  std::condition_variable go_, done_;
  std::thread threads_[kMaxThreads];  // [0] unused: thread 0 is the caller
  uint64_t generation_ = 0;
  size_t pending_ = 0;
  Job jobs_[kMaxThreads];
};

Crew& crew() {
  static Crew* c = new Crew;  // never destroyed: its threads run until the process exits
  return *c;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  const char* trace = getenv("PG_FUZZ_TRACE");
  g_trace = trace != nullptr && strcmp(trace, "1") == 0;
  if (g_sampled) {
    // Before the core's first call, which reads the options: about 1 allocation in 16 goes to a
    // page-guarded block (guard/), and about one per 64 KiB allocated becomes a tracked block
    // (track/). An environment that sets them already wins.
    setenv("POOLGUARD_GUARD_SAMPLE", "16", 0);
    setenv("POOLGUARD_PROFILE", "64K", 0);
  }
  // The core initialises at its first call, reading POOLGUARD_* (the model asks the guard and the
  // tracker whether they are on, which they say only once it has).
  pg::free_impl(pg::malloc_impl(1));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Reader r(data, size);
  uint8_t config = r.u8();
  size_t threads = 1 + (config & 3);
  // Kept from one input to the next with their capacity (ASan maps and unmaps big buffers).
  static std::vector<Op>* ops = new std::vector<Op>[kMaxThreads];
  static Ctx* ctxs = new Ctx[kMaxThreads];
  for (size_t t = 0; t < kMaxThreads; ++t) ops[t].clear();
  while (!r.empty()) {
    size_t t;
    Op op = decode(r, threads, &t);
    ops[t].push_back(op);
  }

  Job jobs[kMaxThreads];
  for (size_t t = 0; t < threads; ++t) {
    ctxs[t].index = t;
    jobs[t] = Job{&ops[t], &ctxs[t], (config & 4) != 0, (config & 8) != 0, (config & 0x30) == 0x30};
  }
  crew().run(jobs, threads);

  // Everything still live is freed here: the main thread's blocks, the workers' leftovers and
  // what is still in the mailboxes.
  t_where = Where{0, ops[0].size(), nullptr};
  release_all(ctxs[0].slots, kSlots);
  release_all(ctxs[0].bulk.data(), ctxs[0].bulk.size());
  ctxs[0].bulk.clear();
  Shared& sh = shared();
  std::vector<Block> rest;
  {
    std::lock_guard<std::mutex> lock(sh.mu);
    rest.swap(sh.leftovers);
    for (std::deque<Block>& box : sh.mailbox) {
      rest.insert(rest.end(), box.begin(), box.end());
      box.clear();
    }
  }
  release_all(rest.data(), rest.size());
  if (!sh.live.empty()) fail("harness: %zu blocks still tracked at the end", sh.live.size());
  if (size_t n = sh.live_bytes.load(); n != 0)
    fail("harness: %zu live bytes counted at the end", n);
  return 0;
}
