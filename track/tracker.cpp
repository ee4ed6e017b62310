// The tracker's table of live tracked blocks and its sampling decisions. See track/tracker.h.
//
// Table: kShards shards chosen by a hash of the block address. Each shard is an open-addressing
// table with linear probing over Slot {key, size, weight, stack}: key 0 is an empty slot, key 1 a
// tombstone. A shard is rebuilt (into a fresh mapping, twice as big when more than a quarter of
// it is live) once live keys and tombstones fill half of it; the old mapping is unmapped then,
// which is safe because every access is under the shard's lock. The system calls of a rebuild run
// under that lock, once per doubling.
#include "track/tracker.h"

#include <sched.h>

#include <cerrno>
#include <cmath>
#include <cstring>

#include "base/clock.h"
#include "base/depot.h"
#include "base/lock.h"
#include "base/os.h"
#include "base/random.h"
#include "large/large.h"
#include "pool/limit.h"
#include "track/profile_table.h"

namespace pg {

namespace {

using track_detail::g_filter;
using track_detail::g_flags;

constexpr size_t kShards = 16;
constexpr size_t kTrackSlack = 8;  // see tracked_alloc
constexpr size_t kMinSlots = 1024;
constexpr uintptr_t kEmpty = 0;
constexpr uintptr_t kTombstone = 1;

struct Slot {
  uintptr_t key;    // the block's address (kEmpty, kTombstone)
  uint64_t size;    // bytes asked for
  uint64_t weight;  // bytes this block stands for in the profile (>= size)
  uint32_t stack;   // allocation stack (depot id)
  uint32_t entry;   // its entry in the shared profile (track/profile_table.h)
};

struct alignas(64) Shard {
  SpinLock lock;
  Slot* slots = nullptr;
  size_t cap = 0;  // slots, a power of two (0 until the first insert)
  size_t live = 0;
  size_t tombs = 0;
};

Shard g_shards[kShards];

// How many blocks a sampled block stands for: weight / size, which is a fraction when the block
// is smaller than the sampling interval (a block of 40,000 bytes sampled with probability
// 40000/65536 stands for 1.64 blocks). Truncating it undercounted such blocks by up to half, so
// the fraction is rounded up or down at random, up with probability equal to the fraction, which
// keeps the sum unbiased. The coin is a hash of the block's address, so that the free subtracts
// the same count as the allocation added without storing it.
uint64_t estimated_blocks(const Slot& s) {
  if (s.size == 0) return 1;
  uint64_t whole = s.weight / s.size;
  uint64_t part = s.weight % s.size;
  if (part == 0) return whole;
  uint64_t h = s.key;  // the finalizer of MurmurHash3's 64-bit variant: every input bit mixed
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ull;
  h ^= h >> 33;
  return whole + (h % s.size < part ? 1 : 0);
}

uint64_t g_bytes = 0;   // POOLGUARD_PROFILE (1 in leak mode)
uint64_t g_period = 0;  // K: mean allocations between countdown events for small requests
std::atomic<uint64_t> g_tracked_total{0};

size_t hash_of(uintptr_t key, size_t cap) {
  int bits = __builtin_ctzll(cap);
  return static_cast<size_t>(((key >> 4) * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

Shard& shard_of(uintptr_t key) {
  return g_shards[((key >> 4) * 0xD6E8FEB86659FD93ull) >> 60];
}
static_assert(kShards == 16, "shard_of takes the top four bits");

void put(Slot* slots, size_t cap, const Slot& s) {
  for (size_t i = hash_of(s.key, cap);; i = (i + 1) & (cap - 1)) {
    if (slots[i].key <= kTombstone) {
      slots[i] = s;
      return;
    }
  }
}

// Rebuilds shard `sh` with `cap` slots. false when the OS refuses the memory.
bool rebuild(Shard& sh, size_t cap) {
  Slot* fresh = static_cast<Slot*>(os::map(cap * sizeof(Slot)));
  if (fresh == nullptr) return false;
  for (size_t i = 0; i < sh.cap; ++i) {
    if (sh.slots[i].key > kTombstone) put(fresh, cap, sh.slots[i]);
  }
  if (sh.slots != nullptr) os::unmap(sh.slots, sh.cap * sizeof(Slot));
  sh.slots = fresh;
  sh.cap = cap;
  sh.tombs = 0;
  return true;
}

bool insert(const Slot& s) {
  Shard& sh = shard_of(s.key);
  LockGuard guard(sh.lock);
  if ((sh.live + sh.tombs + 1) * 2 > sh.cap) {
    size_t cap = sh.cap < kMinSlots ? kMinSlots : sh.cap;
    if ((sh.live + 1) * 4 > cap) cap *= 2;
    if (!rebuild(sh, cap)) return false;
  }
  for (size_t i = hash_of(s.key, sh.cap);; i = (i + 1) & (sh.cap - 1)) {
    if (sh.slots[i].key <= kTombstone) {
      if (sh.slots[i].key == kTombstone) --sh.tombs;
      sh.slots[i] = s;
      ++sh.live;
      g_filter[track_detail::filter_index(s.key)].fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
}

// The slot of `key` in its shard (whose lock the caller holds), or nullptr.
Slot* find(Shard& sh, uintptr_t key) {
  if (sh.cap == 0 || key <= kTombstone) return nullptr;
  for (size_t i = hash_of(key, sh.cap);; i = (i + 1) & (sh.cap - 1)) {
    if (sh.slots[i].key == key) return &sh.slots[i];
    if (sh.slots[i].key == kEmpty) return nullptr;
  }
}

void erase(Shard& sh, Slot* s) {
  size_t i = static_cast<size_t>(s - sh.slots);
  g_filter[track_detail::filter_index(s->key)].fetch_sub(1, std::memory_order_relaxed);
  // A slot followed by an empty one can go straight back to empty; otherwise a tombstone keeps
  // the later keys of its probe run reachable.
  if (sh.slots[(i + 1) & (sh.cap - 1)].key == kEmpty) {
    s->key = kEmpty;
  } else {
    s->key = kTombstone;
    ++sh.tombs;
  }
  --sh.live;
}

// True with probability num / den (num <= den), from 64 random bits.
bool chance(uint64_t num, uint64_t den, uint64_t random) {
  if (num >= den) return true;
  // random / 2^64 < num / den, in 128-bit arithmetic.
  return static_cast<unsigned __int128>(random) * den < static_cast<unsigned __int128>(num) << 64;
}

__thread bool t_in_tracker __attribute__((tls_model("initial-exec"))) = false;

}  // namespace

void tracker_init(const TrackConfig& config) {
  uint8_t flags = 0;
  if (config.leaks) {
    g_bytes = 1;
    flags = track_detail::kOn | track_detail::kAll;
  } else if (config.profile_bytes != 0) {
    g_bytes = config.profile_bytes;
    flags = track_detail::kOn;
  }
  g_period = g_bytes >= kSmallMax ? g_bytes / kSmallMax : 1;
  if (flags != 0) profile_table_init(config.publish, g_bytes);
  g_flags.store(flags, std::memory_order_release);
}

uint64_t track_sample_bytes() {
  return g_bytes;
}

uint64_t track_small_period() {
  return (g_flags.load(std::memory_order_relaxed) & track_detail::kOn) != 0 ? g_period : 0;
}

int64_t track_interval(uint64_t random) {
  // Geometric with mean K, so that every allocation is the next event with the same probability
  // 1/K: 1 + floor(log(u) / log(1 - 1/K)) for u uniform in (0, 1].
  if (g_period <= 1) return 1;
  double u = static_cast<double>((random >> 11) + 1) * 0x1.0p-53;
  double n = 1 + std::floor(std::log(u) / std::log1p(-1.0 / static_cast<double>(g_period)));
  if (n > 9.0e18) return INT64_MAX;
  return static_cast<int64_t>(n);
}

bool track_keep_small(size_t size, uint64_t random) {
  return size != 0 && chance(uint64_t{size} * g_period, g_bytes, random);
}

bool track_keep_large(size_t size, uint64_t random) {
  return size != 0 && chance(size, g_bytes, random);
}

void* tracked_alloc(size_t size, size_t alignment, bool zero, bool* refused) {
  *refused = false;
  if (t_in_tracker) return nullptr;  // libunwind's first use may allocate: serve it as usual
  if (size > SIZE_MAX - kTrackSlack) return nullptr;  // the large path refuses it anyway
  t_in_tracker = true;
  uint32_t stack = depot_capture(2);
  // 8 bytes more than asked for: glibc's usable size overlaps the next chunk's header by 8 bytes,
  // and its bins and `top` point at chunk headers. With the slack, no such pointer can fall inside
  // the bytes asked for, which is what the leak scan matches pointers against.
  limit_take_refusal();  // forget an earlier one of this thread
  void* p = large_alloc(size + kTrackSlack, alignment, zero, size);
  if (p == nullptr) *refused = limit_take_refusal();
  if (p != nullptr) {
    Slot s{};
    s.key = reinterpret_cast<uintptr_t>(p);
    s.size = size;
    s.weight = size >= g_bytes ? size : g_bytes;
    s.stack = stack;
    s.entry = profile_table_add(stack, s.weight, estimated_blocks(s));
    // Without memory for the record the block is served untracked: it is freed as a plain large
    // block and never reported.
    if (insert(s)) {
      g_tracked_total.fetch_add(1, std::memory_order_relaxed);
    } else {
      profile_table_remove(s.entry, s.weight, estimated_blocks(s));
    }
  }
  t_in_tracker = false;
  return p;
}

bool tracked_free(void* p) {
  uintptr_t key = reinterpret_cast<uintptr_t>(p);
  Shard& sh = shard_of(key);
  {
    LockGuard guard(sh.lock);
    Slot* s = find(sh, key);
    if (s == nullptr) return false;
    profile_table_remove(s->entry, s->weight, estimated_blocks(*s));
    erase(sh, s);
  }
  large_free(p);
  return true;
}

bool tracked_size(const void* p, size_t* size) {
  uintptr_t key = reinterpret_cast<uintptr_t>(p);
  Shard& sh = shard_of(key);
  LockGuard guard(sh.lock);
  Slot* s = find(sh, key);
  if (s == nullptr) return false;
  *size = s->size;
  return true;
}

size_t tracker_profile(TrackedStack* out, size_t max, TrackTotals* totals) {
  memset(totals, 0, sizeof *totals);
  totals->tracked_total = g_tracked_total.load(std::memory_order_relaxed);
  // Sum by stack into an open-addressing map sized for every stack the depot holds (an upper
  // bound on the stacks of live blocks, and far fewer than the blocks in leak mode), then keep the
  // `max` largest.
  size_t depot_bytes, stacks;
  depot_usage(&depot_bytes, &stacks);
  size_t cap = 64;
  while (cap < stacks * 2 + 64) cap *= 2;
  size_t bytes = cap * sizeof(TrackedStack);
  TrackedStack* map = static_cast<TrackedStack*>(os::map(bytes));
  if (map == nullptr) return 0;
  bool* used = static_cast<bool*>(os::map(cap));
  if (used == nullptr) {
    os::unmap(map, bytes);
    return 0;
  }
  size_t distinct = 0;
  for (Shard& sh : g_shards) {
    LockGuard guard(sh.lock);
    for (size_t i = 0; i < sh.cap; ++i) {
      const Slot& s = sh.slots[i];
      if (s.key <= kTombstone) continue;
      if (distinct * 2 >= cap) break;  // new stacks since counted: they wait for the next call
      size_t h = (s.stack * 0x9E3779B1u) & (cap - 1);
      while (used[h] && map[h].stack != s.stack) h = (h + 1) & (cap - 1);
      if (!used[h]) {
        used[h] = true;
        map[h] = TrackedStack{s.stack, 0, 0, 0};
        ++distinct;
      }
      uint64_t blocks = estimated_blocks(s);
      map[h].bytes += s.weight;
      map[h].blocks += blocks;
      map[h].samples += 1;
      totals->samples += 1;
      totals->bytes += s.weight;
      totals->blocks += blocks;
    }
  }
  totals->stacks = distinct;
  // Selection of the largest: compact, then a partial selection sort for small `max`, else a heap
  // would do; the profile keeps thousands at most, and this runs off the malloc paths.
  size_t n = 0;
  for (size_t i = 0; i < cap; ++i) {
    if (used[i]) map[n++] = map[i];
  }
  size_t k = n < max ? n : max;
  // Heap-select the top k by bytes: build a max-heap over map[0..n) and pop k times.
  auto less = [](const TrackedStack& a, const TrackedStack& b) {
    return a.bytes < b.bytes || (a.bytes == b.bytes && a.stack > b.stack);
  };
  auto sift = [&](size_t i, size_t len) {
    for (;;) {
      size_t l = 2 * i + 1, r = l + 1, m = i;
      if (l < len && less(map[m], map[l])) m = l;
      if (r < len && less(map[m], map[r])) m = r;
      if (m == i) return;
      TrackedStack t = map[i];
      map[i] = map[m];
      map[m] = t;
      i = m;
    }
  };
  for (size_t i = n / 2; i-- > 0;) sift(i, n);
  for (size_t j = 0; j < k; ++j) {
    out[j] = map[0];
    size_t len = n - j;
    map[0] = map[len - 1];
    sift(0, len - 1);
  }
  os::unmap(used, cap);
  os::unmap(map, bytes);
  return k;
}

bool tracker_lock_all() {
  int64_t start = 0;  // when the first wait began; 0 before any
  for (size_t i = 0; i < kShards; ++i) {
    while (!g_shards[i].lock.try_lock()) {
      int64_t now = monotonic_ns();
      if (start == 0) start = now;
      if (now - start > 1000000000ll) {
        while (i-- > 0) g_shards[i].lock.unlock_raw();
        return false;
      }
      sched_yield();
    }
  }
  return true;
}

void tracker_unlock_all() {
  for (Shard& sh : g_shards) sh.lock.unlock_raw();
}

void tracker_for_each_locked(void (*fn)(void* ctx, uintptr_t p, uint64_t size, uint32_t stack),
                             void* ctx) {
  for (Shard& sh : g_shards) {
    for (size_t i = 0; i < sh.cap; ++i) {
      const Slot& s = sh.slots[i];
      if (s.key > kTombstone) fn(ctx, s.key, s.size, s.stack);
    }
  }
}

size_t tracker_own_ranges(uintptr_t (*out)[2], size_t max) {
  size_t n = 0;
  for (Shard& sh : g_shards) {
    if (sh.slots == nullptr || n == max) continue;
    out[n][0] = reinterpret_cast<uintptr_t>(sh.slots);
    out[n][1] = out[n][0] + sh.cap * sizeof(Slot);
    ++n;
  }
  return n;
}

void tracker_lock_for_fork() {
  for (Shard& sh : g_shards) sh.lock.lock_for_fork();
}

void tracker_unlock_after_fork() {
  for (Shard& sh : g_shards) sh.lock.unlock_after_fork();
}

}  // namespace pg
