// Guard zones: the guarded allocator behind POOLGUARD_GUARD and POOLGUARD_GUARD_SAMPLE.
//
// Modes
//   redzone  every block comes from glibc (through the large path, so POOLGUARD_LIMIT counts it)
//            with redzones before and after the bytes asked for, filled with kRedzoneByte. A freed
//            block is filled with kFreedByte and held in a FIFO quarantine (POOLGUARD_QUARANTINE
//            bytes) before glibc gets it back. Redzones are checked on free and realloc, a freed
//            block's fill when it leaves the quarantine, and everything at exit.
//   page     every block is right-aligned against an inaccessible guard page in a reserved region
//            (guard/page.cpp), with guard pages before it too; the slack between the start of its
//            first page and the block is a redzone. A freed block's pages are made inaccessible
//            and kept a while. A bad access faults at once and the SIGSEGV handler
//            (guard/signal.cpp) reports it, then the process ends. When the kernel's map count
//            (vm.max_map_count) would run out, a block falls back to a redzone block (counted).
//   sample   with POOLGUARD_GUARD=off and POOLGUARD_GUARD_SAMPLE=N, about 1 allocation in N is a
//            page-guarded block and the rest come from the pools as usual. The decision costs the
//            malloc fast path one decrement and branch (Heap::sample_left, pool/heap.h).
//
// Metadata never lives next to user memory: records of blocks are out of band (guard/registry.cpp),
// stacks are kept once each in the stack depot (base/depot.h), all in mmap'ed memory.
//
// Layering: guard/ uses base/, the large path (large/) and the limit (pool/limit.h), never the
// heaps; front/ calls it (docs/DESIGN.md). Nothing here allocates through malloc.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace pg {

enum class GuardMode : uint8_t { kOff = 0, kRedzone = 1, kPage = 2 };

struct GuardConfig {
  GuardMode mode = GuardMode::kOff;
  uint64_t sample = 0;                // 1 in N allocations page-guarded when mode is kOff; 0: never
  uint64_t quarantine = 16ull << 20;  // bytes of freed blocks held before they are reused
  bool fill = false;                  // fill new blocks (not calloc's) with kFreshByte
};

inline constexpr uint8_t kRedzoneByte = 0xfd;  // redzones and page slack
inline constexpr uint8_t kFreedByte = 0xdd;    // freed blocks in the quarantine (redzone mode)
inline constexpr uint8_t kFreshByte = 0xcd;    // new blocks, with POOLGUARD_GUARD_FILL=on

// The largest alignment the guard takes: a guarded block's alignment slack is a checked redzone
// (redzone mode) or part of its span (page mode), so an alignment of a gigabyte would cost a
// gigabyte of memory written or committed. Requests aligned more than this are served unguarded,
// in every mode (docs/GUARD.md).
inline constexpr size_t kGuardMaxAlignment = size_t{64} << 10;

namespace guard_detail {
// g_flags: kOn when some guard feature is on (frees outside the arenas must ask the guard first);
// kAll as well when every allocation is guarded (redzone or page mode).
inline constexpr uint8_t kOn = 1;
inline constexpr uint8_t kAll = 2;
inline std::atomic<uint8_t> g_flags{0};
// The page region, [g_region_base, g_region_base + g_region_size): set before g_flags; the size
// only shrinks (guard_fit_address_space).
inline uintptr_t g_region_base = 0;
inline std::atomic<uintptr_t> g_region_size{0};
}  // namespace guard_detail

// Sets the guard up from the options. Called once, from ensure_init, before any guarded block is
// made. Installs the SIGSEGV handler in page and sample modes.
void guard_init(const GuardConfig& config);

// True when a guard feature is on. One relaxed load.
inline bool guard_enabled() {
  return guard_detail::g_flags.load(std::memory_order_relaxed) != 0;
}
// True when every allocation goes to the guarded allocator (redzone and page modes).
inline bool guard_all() {
  return (guard_detail::g_flags.load(std::memory_order_relaxed) & guard_detail::kAll) != 0;
}

// False when p cannot be a guarded block: no guard feature is on, or only sampling is, and p is
// outside the page region. A few instructions, inline, so that with sampling on the frees of all
// other blocks outside the arenas do not pay a call into the guard.
inline bool guard_may_own(const void* p) {
  uint8_t flags = guard_detail::g_flags.load(std::memory_order_acquire);
  if (flags == 0) return false;
  if ((flags & guard_detail::kAll) != 0) return true;
  return reinterpret_cast<uintptr_t>(p) - guard_detail::g_region_base <
         guard_detail::g_region_size.load(std::memory_order_relaxed);
}

// An address space limit (RLIMIT_AS) of `limit` bytes is being set: gives back the part of the
// page region that no block uses beyond a quarter of it (pool/arena.h does the same for arenas).
void guard_fit_address_space(size_t limit);

// Length of the next sampling interval: random in [1, 2N-1] (mean N), or INT64_MAX when off.
int64_t guard_sample_interval(uint64_t random);

// A guarded block of `size` bytes aligned to `alignment` (a power of two >= 16), zeroed if `zero`.
// nullptr when the memory cannot be had, or in sample mode when no page guard is available right
// now (the caller then uses the pools).
void* guard_alloc(size_t size, size_t alignment, bool zero);

enum class GuardLookup : uint8_t {
  kNotGuarded,  // not a guarded block: the caller's other paths decide
  kLive,        // the start of a live guarded block
  kFreed,       // the start of a guarded block already freed (still known)
  kBad,         // inside a guarded block or the page region, but not the start of a live block
};
// What p is, for realloc and malloc_usable_size; *size gets a live block's requested size.
// Never reports.
GuardLookup guard_lookup(const void* p, size_t* size);

// Frees p if it is a guarded block (checking its redzones first) and returns true; reports a
// double free or an invalid free of a guarded address and returns true; false when p is not the
// guard's at all. Callers test guard_may_own(p) first.
bool guard_free(void* p);

// Checks every live and quarantined block (redzones, freed fill) and reports what is damaged. At
// exit, from the preload destructor.
void guard_check_all();

// fork(): the guard's locks are taken before and released after, in both processes.
void guard_lock_for_fork();
void guard_unlock_after_fork(bool child);

struct GuardCounters {
  uint64_t redzone_blocks;     // redzone blocks made
  uint64_t page_blocks;        // page-guarded blocks made
  uint64_t page_fallbacks;     // page mode: blocks made as redzone blocks for want of a mapping
  uint64_t live_blocks;        // guarded blocks live now
  uint64_t quarantined_bytes;  // bytes held in the quarantine now
  uint64_t errors;             // errors reported
};
void guard_counters(GuardCounters* out);

}  // namespace pg
