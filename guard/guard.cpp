// The guarded allocator's entry points (guard/guard.h): which kind of block to make, frees with
// their checks, the quarantine's exits, and the check of everything at exit.
#include "guard/guard.h"

#include <cstring>

#include "base/depot.h"
#include "base/os.h"
#include "base/random.h"
#include "base/report.h"
#include "guard/internal.h"
#include "pool/shared.h"

namespace pg {

namespace guard {

namespace {
__thread int t_tid __attribute__((tls_model("initial-exec"))) = 0;
}  // namespace

int current_tid() {
  if (__builtin_expect(t_tid == 0, 0)) t_tid = os::thread_id();
  return t_tid;
}

void tid_after_fork() {
  t_tid = 0;  // the forking thread has a new id in the child
}

int64_t sample_interval(uint64_t n, uint64_t random) {
  if (n == 0) return INT64_MAX;
  if (n == 1) return 1;
  if (n > (uint64_t{1} << 40)) n = uint64_t{1} << 40;
  return static_cast<int64_t>(1 + random % (2 * n - 1));
}

uint32_t capture_here() {
  // Frames when linked into a test program: depot_capture, capture_here, guard_alloc/guard_free.
  return depot_capture(3);
}

}  // namespace guard

using namespace guard;

namespace {

GuardConfig g_config;
constexpr uint64_t kSampleQuarantine = uint64_t{2} << 20;
bool g_page_ok = false;

// Redzone blocks taken out of the quarantine (or never put in it), checked and released outside
// the lock.
struct Evicted {
  Block blocks[32];
  int n = 0;
};

// Reports redzone byte d of block b changed.
void report_redzone(const Block& b, uintptr_t d, const char* where, uint32_t now_stack) {
  Finding f{};
  f.kind = d < b.user ? ErrorKind::kUnderflow : ErrorKind::kOverflow;
  f.addr = d;
  f.block = &b;
  f.access = Access::kWrite;
  f.what = where;
  f.now_stack = now_stack;
  if (b.kind == kKindPage) {
    f.dump_lo = align_down(b.user, os::page_size());
    f.dump_hi = b.raw + b.raw_size - os::page_size();
  } else {
    f.dump_lo = b.raw;
    f.dump_hi = b.raw + b.raw_size;
  }
  report_finding(f, false);
}

// Reports byte d of freed block b changed (a write after free).
void report_use_after_free_write(const Block& b, uintptr_t d, const char* where) {
  Finding f{};
  f.kind = ErrorKind::kUseAfterFree;
  f.addr = d;
  f.block = &b;
  f.access = Access::kWrite;
  f.what = where;
  f.dump_lo = b.raw;
  f.dump_hi = b.raw + b.raw_size;
  report_finding(f, false);
}

// Reports a damaged redzone of `b` (found at `where`) and returns true, or returns false.
bool check_redzones(const Block& b, const char* where, uint32_t now_stack) {
  uintptr_t d = b.kind == kKindPage ? page_damage(b) : redzone_damage(b);
  if (d == 0) return false;
  report_redzone(b, d, where, now_stack);
  return true;
}

// Checks a redzone block leaving the quarantine; gives its memory back unless it was damaged
// (then it is reported and leaked).
void release_evicted(const Block& b) {
  bool bad = check_redzones(b, "found when the freed block left the quarantine", 0);
  if (!bad) {
    if (uintptr_t d = freed_damage(b)) {
      report_use_after_free_write(
          b, d, "a write after free, found when the freed block left the quarantine");
      bad = true;
    }
  }
  if (!bad) redzone_release(b);
}

// Takes blocks out of the quarantine while it is over its limit. Under the lock; redzone blocks
// are handed back in `out` (at most its capacity), page spans are recycled at once.
bool evict_some(Evicted* out) {
  while (out->n < 32) {
    uint32_t i = quarantine_pop_over();
    if (i == 0) return false;
    Block* b = record(i);
    if (b->state == kLeaked) continue;  // reported at exit: left alone
    if (b->kind == kKindPage) {
      page_span_recycle(i);
      continue;
    }
    out->blocks[out->n++] = *b;
    record_release(i);
  }
  return true;  // maybe more
}

void report_bad_free(ErrorKind kind, uintptr_t a, const Block* b, const char* what) {
  Finding f{};
  f.kind = kind;
  f.addr = a;
  f.block = b;
  f.what = what;
  f.now_stack = capture_here();
  report_finding(f, false);
}

}  // namespace

void guard_init(const GuardConfig& config) {
  g_config = config;
  bool sampling = config.mode == GuardMode::kOff && config.sample > 0;
  // Sampling: a short quarantine is still a long time (at 1 in N, each sampled block is kept for
  // about 170 x N allocations), and the spans it holds are the ones a new sample must carve, which
  // costs several times a reused one.
  uint64_t quarantine = config.quarantine;
  if (sampling && quarantine > kSampleQuarantine) quarantine = kSampleQuarantine;
  quarantine_set_limit(quarantine);
  g_config.quarantine = quarantine;
  if (config.mode == GuardMode::kPage || sampling) {
    g_page_ok = page_init();
    if (g_page_ok) {
      guard_detail::g_region_base = g_region.base;
      guard_detail::g_region_size.store(g_region.size.load(std::memory_order_relaxed),
                                        std::memory_order_release);
      signal_install();
    } else {
      report_warning(sampling ? "no address space for page guards: POOLGUARD_GUARD_SAMPLE is off"
                              : "no address space for page guards: POOLGUARD_GUARD=page gives "
                                "every block redzones instead");
    }
  }
  uint8_t flags = 0;
  if (config.mode != GuardMode::kOff) {
    flags = guard_detail::kOn | guard_detail::kAll;
  } else if (sampling && g_page_ok) {
    flags = guard_detail::kOn;
  }
  guard_detail::g_flags.store(flags, std::memory_order_release);
}

int64_t guard_sample_interval(uint64_t random) {
  if (g_config.mode != GuardMode::kOff || !g_page_ok) return INT64_MAX;
  return sample_interval(g_config.sample, random);
}

void* guard_alloc(size_t size, size_t alignment, bool zero) {
  uint32_t stack = capture_here();
  int tid = current_tid();
  uint32_t index = 0;
  void* p = nullptr;
  if (g_config.mode != GuardMode::kRedzone && g_page_ok) {
    p = page_alloc(size, alignment, zero, stack, tid, &index);
    if (p != nullptr) {
      shared_add(shared_globals().guard_page_blocks, 1);
    } else if (g_config.mode == GuardMode::kOff) {
      return nullptr;  // sampling: the pools serve this one
    }
  }
  if (p == nullptr) {
    if (g_config.mode == GuardMode::kPage) {
      shared_add(shared_globals().guard_page_fallbacks, 1);
    }
    p = redzone_alloc(size, alignment, zero, stack, tid, &index);
    if (p == nullptr) return nullptr;
    shared_add(shared_globals().guard_redzone_blocks, 1);
  }
  shared_add(shared_globals().guard_live_blocks, 1);
  if (g_config.fill && !zero) memset(p, kFreshByte, size);
  return p;
}

namespace {

// The record of the guarded block that address a is or falls in, or 0. Under the lock.
// *known: a is the guard's (in the page region, or inside a redzone block). The hash table knows
// live redzone blocks; freed ones (quarantined, or left alone after a report) and interior
// pointers are found by a scan of the records, which only bad frees and foreign pointers pay.
uint32_t find_locked(uintptr_t a, bool* known) {
  if (in_region(a)) {
    *known = true;
    return region_record(a);
  }
  uint32_t i = table_find(a);
  if (i == 0) i = find_containing(a);
  *known = i != 0;
  return i;
}

// Only the page region can hold guarded blocks unless every block is guarded: one compare
// keeps sample mode off the lock for everything else.
bool maybe_guarded(uintptr_t a) {
  return in_region(a) || guard_all();
}

}  // namespace

GuardLookup guard_lookup(const void* p, size_t* size) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (!maybe_guarded(a)) return GuardLookup::kNotGuarded;
  LockGuard guard(guard_lock());
  bool known;
  uint32_t i = find_locked(a, &known);
  if (!known) return GuardLookup::kNotGuarded;
  if (i == 0) return GuardLookup::kBad;
  const Block* b = record(i);
  if (b->user != a) return GuardLookup::kBad;
  switch (b->state) {
    case kLive:
      *size = b->size;
      return GuardLookup::kLive;
    case kFreeing:
    case kQuarantined:
    case kSpanFree:
    case kLeaked:
      return GuardLookup::kFreed;
    default:
      return GuardLookup::kBad;
  }
}

bool guard_free(void* p) {
  uintptr_t a = reinterpret_cast<uintptr_t>(p);
  if (!maybe_guarded(a)) return false;
  Block copy{};
  uint32_t i;
  GuardLookup what;
  {
    LockGuard guard(guard_lock());
    bool known;
    i = find_locked(a, &known);
    if (!known) return false;  // glibc's, or a large block
    if (i == 0) {
      what = GuardLookup::kBad;
    } else {
      Block* b = record(i);
      copy = *b;
      if (b->user != a || b->state == kUnused) {
        what = GuardLookup::kBad;
      } else if (b->state != kLive) {
        what = GuardLookup::kFreed;
      } else {
        what = GuardLookup::kLive;
        __atomic_store_n(&b->state, static_cast<uint8_t>(kFreeing), __ATOMIC_RELAXED);
        // The table holds live redzone blocks only: its slot for `a` is in the cache now, and a
        // later free of a freed block is still found (by the scan of find_containing).
        if (b->kind == kKindRedzone) table_erase(a);
      }
    }
  }
  if (what == GuardLookup::kBad) {
    bool in_block = i != 0 && copy.state != kUnused;
    report_bad_free(ErrorKind::kInvalidFree, a, in_block ? &copy : nullptr,
                    in_block ? "free() of a pointer that is not the start of its block"
                             : "free() of an address in the guard region that is no block");
    return true;
  }
  if (what == GuardLookup::kFreed) {
    report_bad_free(ErrorKind::kDoubleFree, a, &copy, "free() of a block that is already free");
    return true;
  }
  shared_sub(shared_globals().guard_live_blocks, 1);
  copy.free_stack = capture_here();
  copy.free_tid = current_tid();
  if (check_redzones(copy, "found by free()", copy.free_stack)) {
    LockGuard guard(guard_lock());
    Block* b = record(i);
    b->free_stack = copy.free_stack;
    b->free_tid = copy.free_tid;
    __atomic_store_n(&b->state, static_cast<uint8_t>(kLeaked), __ATOMIC_RELAXED);
    return true;  // POOLGUARD_ON_ERROR=report: the damaged block is left alone
  }
  bool keep = copy.raw_size <= g_config.quarantine;
  if (copy.kind == kKindPage) {
    page_protect_freed(i, copy);
  } else if (keep) {
    redzone_fill_freed(copy);
  }
  Evicted evicted;
  bool more;
  {
    LockGuard guard(guard_lock());
    Block* b = record(i);
    b->free_stack = copy.free_stack;
    b->free_tid = copy.free_tid;
    if (keep) {
      __atomic_store_n(&b->state, static_cast<uint8_t>(kQuarantined), __ATOMIC_RELAXED);
      quarantine_push(i);
    } else if (copy.kind == kKindPage) {
      page_span_recycle(i);
    } else {
      record_release(i);
    }
    more = evict_some(&evicted);
  }
  if (!keep && copy.kind == kKindRedzone) redzone_release(copy);
  for (;;) {
    for (int k = 0; k < evicted.n; ++k) release_evicted(evicted.blocks[k]);
    if (!more) break;
    evicted.n = 0;
    LockGuard guard(guard_lock());
    more = evict_some(&evicted);
  }
  return true;
}

void guard_check_all() {
  if (!guard_enabled()) return;
  // Damaged blocks are collected under the lock and reported after it (a report names frames
  // with dladdr, which takes the loader's lock: never wait for it while holding ours). A damaged
  // block is marked left alone first, so nothing frees it while it is reported.
  struct Found {
    Block block;
    uintptr_t at;
    bool freed;  // a write after free, not a redzone
  };
  uint32_t next = 1;
  for (;;) {
    Found found[8];
    int n = 0;
    {
      LockGuard guard(guard_lock());
      uint32_t last = record_limit();
      for (; next <= last && n < 8; ++next) {
        Block* b = record(next);
        uint8_t state = b->state;
        if (state != kLive && state != kQuarantined) continue;
        if (b->kind == kKindPage && state != kLive) continue;  // inaccessible: nothing to check
        uintptr_t d = b->kind == kKindPage ? page_damage(*b) : redzone_damage(*b);
        bool freed = false;
        if (d == 0 && state == kQuarantined) {
          d = freed_damage(*b);
          freed = true;
        }
        if (d == 0) continue;
        found[n++] = Found{*b, d, freed};
        __atomic_store_n(&b->state, static_cast<uint8_t>(kLeaked), __ATOMIC_RELAXED);
      }
    }
    if (n == 0) return;
    for (int k = 0; k < n; ++k) {
      const Block& b = found[k].block;
      if (found[k].freed) {
        report_use_after_free_write(b, found[k].at, "a write after free, found at exit");
      } else {
        report_redzone(b, found[k].at, "found at exit", 0);
      }
    }
  }
}

void guard_lock_for_fork() {
  if (!guard_enabled()) return;
  guard_lock().lock_for_fork();
}

void guard_unlock_after_fork(bool child) {
  if (!guard_enabled()) return;
  guard_lock().unlock_after_fork();
  if (child) tid_after_fork();
}

void guard_fit_address_space(size_t limit) {
  if (!g_page_ok) return;
  LockGuard guard(guard_lock());
  page_fit_region(limit);
  guard_detail::g_region_size.store(g_region.size.load(std::memory_order_relaxed),
                                    std::memory_order_release);
}

void guard_counters(GuardCounters* out) {
  const stats::SegmentGlobals& g = shared_globals();
  out->redzone_blocks = __atomic_load_n(&g.guard_redzone_blocks, __ATOMIC_RELAXED);
  out->page_blocks = __atomic_load_n(&g.guard_page_blocks, __ATOMIC_RELAXED);
  out->page_fallbacks = __atomic_load_n(&g.guard_page_fallbacks, __ATOMIC_RELAXED);
  out->live_blocks = __atomic_load_n(&g.guard_live_blocks, __ATOMIC_RELAXED);
  {
    LockGuard guard(guard_lock());
    out->quarantined_bytes = quarantine_bytes();
  }
  out->errors = errors_reported();
}

}  // namespace pg
