// Internals of the guarded allocator shared by the files of guard/ (and its unit tests).
//
// Glossary
//   record      the out-of-band description of one guarded block (struct Block), found by index.
//               Records live in mmap'ed chunks that are never unmapped, so the signal handler
//               can read any record without a lock.
//   redzone     bytes around a block, filled with kRedzoneByte, that a correct program never
//               touches. Redzone blocks have one on each side; page blocks have the slack between
//               the start of their first data page and the block.
//   span        a run of pages of the page region: [leading guard pages][data pages][one trailing
//               guard page]. A span keeps the same record for life: the record is the span's
//               descriptor, and the page map (page -> record) never changes once the span exists.
//   quarantine  a FIFO of freed blocks, bounded in bytes, that delays their reuse, so that a
//               use after free hits a block nobody else owns.
//
// Locking: one spin lock (guard_lock) guards the records' states, the hash table, the quarantine
// and the span allocator. No system call and no glibc call is made under it, except in the
// fork handlers.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/align.h"
#include "base/lock.h"
#include "guard/guard.h"

namespace pg::guard {

enum Kind : uint8_t { kKindNone = 0, kKindRedzone = 1, kKindPage = 2 };

enum State : uint8_t {
  kUnused = 0,       // free record (redzone) or a span never used
  kLive = 1,         // handed out
  kFreeing = 2,      // being freed (checks and the page release run outside the lock)
  kQuarantined = 3,  // freed, held in the quarantine
  kSpanFree = 4,     // page span out of the quarantine, waiting for reuse (still inaccessible)
  kLeaked = 5,       // reported bad and left alone (POOLGUARD_ON_ERROR=report)
};

// One guarded block. Invariants:
//   redzone: [raw, user) and [user + size, raw + raw_size) hold kRedzoneByte while live;
//            [user, user + size) holds kFreedByte while quarantined.
//   page:    raw is the span's first page, raw_size its bytes; the last page is the trailing
//            guard and user + round_up(size, 16) <= raw + raw_size - page, right-aligned;
//            the (up to 256) bytes before user on its page, and [user + size, the guard page),
//            hold kRedzoneByte while live; every page but the data pages is PROT_NONE always, and
//            the data pages are PROT_NONE unless live.
struct Block {
  uintptr_t user;        // the address handed out
  uintptr_t raw;         // redzone: what large_alloc returned; page: the span's first page
  uint64_t size;         // bytes requested
  uint64_t raw_size;     // redzone: bytes taken from large_alloc; page: the span's bytes
  uint32_t alloc_stack;  // stack depot id of the allocation (0: unknown)
  uint32_t free_stack;   // stack depot id of the free (0: not freed or unknown)
  int32_t alloc_tid;     // kernel thread ids
  int32_t free_tid;
  uint32_t next;  // link (record index) in the quarantine, the free records or a span bin
  uint8_t kind;   // Kind
  uint8_t state;  // State (read by the signal handler without the lock)
  uint8_t align_log2;
  uint8_t dirty;  // page: the data pages may still hold an earlier block's bytes
  uint8_t pad[8];
};
static_assert(sizeof(Block) == 64, "one record per cache line");

SpinLock& guard_lock();

// ---- records and the hash table (guard/registry.cpp) ----

// The record with index i (1-based; never 0). Lock-free: chunks are never unmapped.
Block* record(uint32_t i);
// A zeroed record, or 0 when metadata memory is refused. Under the lock.
uint32_t record_new();
// Returns a record to the free list. Under the lock.
void record_release(uint32_t i);
// Highest record index handed out so far (records 1..record_limit() may be in use).
uint32_t record_limit();

// user address -> record index, for live redzone blocks (page blocks are found by address).
// All under the lock.
bool table_insert(uintptr_t user, uint32_t i);
uint32_t table_find(uintptr_t user);
void table_erase(uintptr_t user);
// The redzone block whose underlying memory contains `addr` (a slow scan: for pointers that are
// not a block start), or 0.
uint32_t find_containing(uintptr_t addr);

// ---- the quarantine (guard/quarantine.cpp), under the lock ----

void quarantine_set_limit(uint64_t bytes);
// Appends record i, which holds `bytes` (Block::raw_size).
void quarantine_push(uint32_t i);
// The oldest record once the quarantine holds more than its limit, taken off the FIFO; else 0.
uint32_t quarantine_pop_over();
uint64_t quarantine_bytes();

// ---- redzone blocks (guard/redzone.cpp) ----

// A redzone block; *index gets its record. nullptr when glibc or the metadata fail.
void* redzone_alloc(size_t size, size_t alignment, bool zero, uint32_t stack, int tid,
                    uint32_t* index);
// First damaged redzone byte of a live or quarantined block (kRedzoneByte expected), or 0.
uintptr_t redzone_damage(const Block& b);
// First byte of a quarantined block's user bytes that is no longer kFreedByte, or 0.
uintptr_t freed_damage(const Block& b);
// Fills the user bytes with kFreedByte (on free).
void redzone_fill_freed(const Block& b);
// Gives the memory back to glibc (after the quarantine).
void redzone_release(const Block& b);
// Address of the first byte of [lo, hi) that is not v, or 0 (compares 8 bytes at a time).
uintptr_t find_other_byte(uintptr_t lo, uintptr_t hi, unsigned char v);

// ---- the page region (guard/page.cpp) ----

// `size` only shrinks (page_fit_region), and is lowered before the tail is unmapped, so that an
// address the kernel hands to someone else afterwards is never taken for the region's.
struct PageRegion {
  uintptr_t base = 0;
  std::atomic<uintptr_t> size{0};
  uint32_t* map = nullptr;  // page index -> record index of the span holding it (0: none)
};
extern PageRegion g_region;

inline bool in_region(uintptr_t a) {
  return a - g_region.base < g_region.size.load(std::memory_order_acquire);
}
// Record of the span holding address a of the region (0: no span there). Lock-free.
uint32_t region_record(uintptr_t a);

// Gives back the part of the region not carved into spans beyond what a quarter of `limit` (an
// address space limit, RLIMIT_AS) allows. Under the lock.
void page_fit_region(size_t limit);
// Reserves the region and reads the map-count budget. false when no region could be reserved.
bool page_init();
// A page-guarded block, or nullptr when no span or mapping is available (budget, region full).
void* page_alloc(size_t size, size_t alignment, bool zero, uint32_t stack, int tid,
                 uint32_t* index);
// First damaged slack byte of a live page block, or 0.
uintptr_t page_damage(const Block& b);
// Makes the data pages of block i (being freed; b is its record) inaccessible. Small blocks keep
// their memory for the span's next block, big ones give it back to the OS.
void page_protect_freed(uint32_t i, const Block& b);
// Files the span of record i (out of the quarantine) for reuse. Under the lock.
void page_span_recycle(uint32_t i);

// ---- stacks and thread ids ----

// Captures the caller's stack into the depot (poolguard's own frames dropped). 0 when the
// stack cannot be had (re-entered from inside the capture, or the depot is full).
uint32_t capture_here();
// The caller's kernel thread id, cached per thread.
int current_tid();
void tid_after_fork();

// ---- reports (guard/report.cpp) ----

enum class ErrorKind : uint8_t {
  kOverflow,
  kUnderflow,
  kUseAfterFree,
  kDoubleFree,
  kInvalidFree,
};
const char* error_kind_name(ErrorKind k);

enum class Access : uint8_t { kUnknown, kRead, kWrite };

// Everything a report says. `block` may be null (an address not in any block known).
struct Finding {
  ErrorKind kind;
  uintptr_t addr;      // the bad address: first damaged byte, faulting address, pointer freed
  const Block* block;  // a copy taken by the caller, so it cannot change under the report
  Access access;
  const char* what;    // what happened, e.g. "free() found the redzone after the block changed"
  uint32_t now_stack;  // depot id of the stack where it was found (0: none)
  const void* fault_context;  // ucontext of the fault (signal handler): the stack is walked from it
  uintptr_t dump_lo, dump_hi;  // readable range around addr to show in hex (empty: none)
};

// Writes the report (write(2) only) and counts it. Returns when POOLGUARD_ON_ERROR=report and
// `fatal` is false; otherwise aborts.
void report_finding(const Finding& f, bool fatal);
uint64_t errors_reported();

// ---- signal handling (guard/signal.cpp) ----

void signal_install();

// ---- sampling (guard/guard.cpp) ----

// A sampling interval for 1 in n: uniform in [1, 2n-1] (mean n; always 1 for n = 1), INT64_MAX for
// n = 0. Random lengths keep a program's periodic allocation pattern from hiding a site.
int64_t sample_interval(uint64_t n, uint64_t random);

// ---- counters (guard/guard.cpp) ----

// The guard's figures live in the stats segment (pool/shared.h): guard_redzone_blocks,
// guard_page_blocks, guard_page_fallbacks, guard_live_blocks and guard_errors of SegmentGlobals.

}  // namespace pg::guard
