// The large path of large/large.h: glibc's chunks for blocks above the pools, their statistics,
// and the checked header of over-aligned blocks.
#include "large/large.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "base/align.h"
#include "base/clock.h"
#include "base/compiler.h"
#include "base/counter.h"
#include "base/lock.h"
#include "base/os.h"
#include "pool/arena.h"
#include "pool/limit.h"
#include "pool/shared.h"

namespace pg {

namespace {

constexpr size_t kHeader = 16;
constexpr int kAlignShift = 56;
constexpr uint64_t kSizeMask = (uint64_t{1} << kAlignShift) - 1;

// ---- Statistics, per thread -------------------------------------------------------------------
//
// The large path must cost about what glibc costs, so it updates no counter another thread
// writes: each thread counts in its own slot of the stats segment (pool/shared.h; single writer,
// read by others and by readers in other processes), claimed on the thread's first large block
// and given back when the thread exits, its counts kept: summed over every slot ever used, the
// slots are totals since the start. The adds are base/counter.h's single-writer ones.

// Live large bytes are summed (for the trim decision below) every kTrimCheckEvery large
// operations of a thread, not on each.
constexpr int32_t kTrimCheckEvery = 64;

// A thread's statistics go through three states. kNew: nothing counted yet (the direct path sends
// the first block to the general one, which registers). kRegistered: counting in its slot.
// kShared: counting into the shared totals of SegmentGlobals (large_gone_*) with atomic adds,
// because the thread is past its exit hook or found no free slot. A thread past its exit hook may
// still allocate and free (later pthread key destructors, and glibc itself, which frees the
// thread's second-level key arrays after every destructor has run): it must never register again,
// since its TLS, where LargeStats lives, goes away with it and its slot may already be another's.
enum class ThreadState : uint8_t { kNew, kRegistered, kShared };

struct LargeStats {
  stats::SegmentLargeSlot* slot = nullptr;  // while kRegistered
  // Large operations left before the next trim check (trim_check below); 0 unless registered, so
  // that the direct path hands every block of an unregistered thread to the general one.
  int32_t budget = 0;
  ThreadState state = ThreadState::kNew;
};

__thread LargeStats t_stats __attribute__((tls_model("initial-exec")));

// Slots: [0, used) have been claimed at some time; the free ones are stacked in g_free. The owner
// of each claimed slot, for the fork child (whose other threads are gone). Under g_stats_lock.
SpinLock g_stats_lock;
size_t g_slots_used = 0;
uint32_t g_free[kMaxHeaps];
size_t g_free_count = 0;
pthread_t g_slot_owner[kMaxHeaps];
int g_slot_tid[kMaxHeaps];  // kernel thread id of each owner, to tell a dead owner (see below)
// The key whose destructor gives a thread's slot back. Made once by large_init, before any second
// thread can reach the large path: made lazily, a thread that found it claimed but not yet made
// would set the value of key 0 (another module's) to its LargeStats.
pthread_key_t g_key;
std::atomic<bool> g_key_made{false};

size_t slot_index(const stats::SegmentLargeSlot* slot) {
  return static_cast<size_t>(slot - shared_large_slots());
}

// Gives s's slot back (its counts stay in it). Under g_stats_lock.
void release_slot_locked(LargeStats* s, ThreadState next_state) {
  size_t i = slot_index(s->slot);
  g_slot_owner[i] = 0;
  g_slot_tid[i] = 0;
  g_free[g_free_count++] = static_cast<uint32_t>(i);
  s->slot = nullptr;
  s->state = next_state;
  s->budget = 0;
}

void on_thread_exit(void* arg) {
  LockGuard guard(g_stats_lock);
  LargeStats* s = static_cast<LargeStats*>(arg);
  if (s->state == ThreadState::kRegistered) release_slot_locked(s, ThreadState::kShared);
}

}  // namespace

void large_init() {
  // Any call that reaches glibc's set-up does; free(nullptr) does not.
  __libc_free(__libc_malloc(1));
  if (pthread_key_create(&g_key, on_thread_exit) == 0) {
    g_key_made.store(true, std::memory_order_release);
  }
}

void large_lock_for_fork() {
  g_stats_lock.lock_for_fork();
}
void large_unlock_after_fork_parent() {
  g_stats_lock.unlock_after_fork();
}
// In a forked child only the forking thread exists: the slots of the others are free again.
void large_after_fork_child() {
  g_stats_lock.unlock_after_fork();
  LockGuard guard(g_stats_lock);
  pthread_t self = pthread_self();
  bool mine = t_stats.state == ThreadState::kRegistered;
  g_free_count = 0;
  for (size_t i = g_slots_used; i-- > 0;) {
    if (mine && i == slot_index(t_stats.slot)) {
      g_slot_owner[i] = self;
      g_slot_tid[i] = os::thread_id();  // a new id in the child
    } else {
      g_slot_owner[i] = 0;
      g_slot_tid[i] = 0;
      g_free[g_free_count++] = static_cast<uint32_t>(i);
    }
  }
}

namespace {

// A thread may register after its exit hook has run without being marked as past it: glibc frees
// other cached stacks' TLS blocks on an exiting thread after its key destructors (a thread that
// never used the large path has no exit hook to mark it). Its slot is never given back. When no
// slot is left, the slots whose owner no longer exists are taken back. Under g_stats_lock.
void reclaim_dead_owners_locked() {
  int pid = os::process_id();
  for (size_t i = 0; i < g_slots_used; ++i) {
    if (g_slot_owner[i] == 0 || g_slot_tid[i] == 0) continue;
    if (syscall(SYS_tgkill, pid, g_slot_tid[i], 0) == 0 || errno != ESRCH) continue;
    g_slot_owner[i] = 0;
    g_slot_tid[i] = 0;
    g_free[g_free_count++] = static_cast<uint32_t>(i);
  }
}

[[gnu::noinline]] void register_thread() {
  LargeStats* s = &t_stats;
  // Before large_init the slot could not be given back at exit: this block counts into the shared
  // totals, and the thread registers on a later one.
  if (!g_key_made.load(std::memory_order_acquire)) return;
  s->state = ThreadState::kShared;  // first: the calls below may allocate and come back here
  stats::SegmentLargeSlot* slots = shared_large_slots();
  {
    LockGuard guard(g_stats_lock);
    size_t i;
    if (g_free_count == 0 && slots != nullptr && g_slots_used == shared_large_capacity()) {
      os::SavedErrno keep;
      reclaim_dead_owners_locked();
    }
    if (g_free_count > 0) {
      i = g_free[--g_free_count];
    } else if (slots != nullptr && g_slots_used < shared_large_capacity()) {
      i = g_slots_used++;
      shared_set(shared_globals().large_slots, g_slots_used);
    } else {
      return;  // no slot: this thread counts into the shared totals
    }
    g_slot_owner[i] = pthread_self();
    g_slot_tid[i] = os::thread_id();
    s->slot = &slots[i];
    s->state = ThreadState::kRegistered;
    s->budget = kTrimCheckEvery;
  }
  pthread_setspecific(g_key, s);
}

// The calling thread's slot, registering it first if need be; nullptr for a thread that counts
// into the shared totals.
inline stats::SegmentLargeSlot* stats_slot() {
  LargeStats* s = &t_stats;
  if (PG_UNLIKELY(s->state == ThreadState::kNew)) register_thread();
  return s->state == ThreadState::kRegistered ? s->slot : nullptr;
}

// Sums of every slot and the shared totals: allocs, frees, bytes_in, bytes_out.
void large_totals(uint64_t v[4]) {
  const stats::SegmentGlobals& g = shared_globals();
  v[0] = counter_get(g.large_gone_allocs);
  v[1] = counter_get(g.large_gone_frees);
  v[2] = counter_get(g.large_gone_bytes_in);
  v[3] = counter_get(g.large_gone_bytes_out);
  const stats::SegmentLargeSlot* slots = shared_large_slots();
  size_t used = __atomic_load_n(&g.large_slots, __ATOMIC_ACQUIRE);
  for (size_t i = 0; i < used; ++i) {
    v[0] += counter_get(slots[i].allocs);
    v[1] += counter_get(slots[i].frees);
    v[2] += counter_get(slots[i].bytes_in);
    v[3] += counter_get(slots[i].bytes_out);
  }
}

// Sum of live large bytes.
bool live_bytes_now(uint64_t* live) {
  uint64_t v[4];
  large_totals(v);
  *live = v[2] >= v[3] ? v[2] - v[3] : 0;
  return true;
}

// ---- Giving memory back -------------------------------------------------------------------------
//
// glibc returns the free memory at the top of its heap by itself, but not free pages in the
// middle of a fragmented heap: after a program frees most of its large blocks, RSS would stay at
// the high-water mark. So when live large bytes have fallen to under half of what they were at
// the last trim (or their peak since), ask glibc to give those pages back (malloc_trim(0)
// madvises every free page of every glibc arena). Rare by construction: the live total must halve
// between two trims, so a program that frees everything trims log2(peak / kTrimFloor) times; and
// unless it falls to an eighth, trims are a second apart at least (trim_check says why).
// Live bytes are summed every kTrimCheckEvery large operations of a thread, not on each.
constexpr uint64_t kTrimFloor = 4u << 20;
std::atomic<uint64_t> g_trim_mark{0};  // live large bytes at the last trim, or their peak since
constexpr int64_t kTrimSpacingNs = 1000000000;
std::atomic<int64_t> g_last_trim_ns{INT64_MIN / 2};  // monotonic_ns() of the last trim

[[gnu::noinline]] void trim_check() {
  uint64_t live;
  if (!live_bytes_now(&live)) return;
  limit_note_large(live);
  uint64_t mark = g_trim_mark.load(std::memory_order_relaxed);
  while (live > mark && !g_trim_mark.compare_exchange_weak(mark, live, std::memory_order_relaxed)) {
  }
  if (live >= mark / 2 || mark < kTrimFloor) return;
  // A fall to under an eighth of the mark is a program giving its memory back: trim now. A
  // smaller one may be a server's buffers ebbing before they flow again, and every trim makes the
  // pages it gives back fault in again when they are reused: at most one such trim per
  // kTrimSpacingNs.
  int64_t now = monotonic_ns();
  if (live >= mark / 8 && now - g_last_trim_ns.load(std::memory_order_relaxed) < kTrimSpacingNs) {
    return;
  }
  if (!g_trim_mark.compare_exchange_strong(mark, live, std::memory_order_relaxed)) return;
  g_last_trim_ns.store(now, std::memory_order_relaxed);
  malloc_trim(0);
}

// Counts one block in (alloc) or out (free) on the calling thread, and every kTrimCheckEvery
// operations looks whether glibc should give memory back.
inline void count(bool alloc, size_t usable) {
  stats::SegmentLargeSlot* slot = stats_slot();
  if (slot == nullptr) {
    stats::SegmentGlobals& g = shared_globals();
    shared_add(alloc ? g.large_gone_allocs : g.large_gone_frees, 1);
    shared_add(alloc ? g.large_gone_bytes_in : g.large_gone_bytes_out, usable);
    return;
  }
  counter_inc(alloc ? slot->allocs : slot->frees);
  counter_add(alloc ? slot->bytes_in : slot->bytes_out, usable);
  LargeStats& s = t_stats;
  if (--s.budget <= 0) {
    s.budget = kTrimCheckEvery;
    trim_check();
  }
}

// Usable bytes of a glibc chunk, from its size word (the word before the block): the chunk size
// with the flag bits (low 3) cleared, less 8 bytes of header, or 16 for an mmapped chunk (bit 1,
// IS_MMAPPED). Every real chunk has at least 32 bytes; foreign_usable_size() adds a guard
// against smaller (garbage) values, which the direct path, seeing only real chunks, does without.
inline uint64_t chunk_usable_from(uint64_t size_word) {
  return (size_word & ~uint64_t{7}) - 8 - ((size_word & 2) << 2);
}
inline uint64_t chunk_usable(const void* p) {
  return chunk_usable_from(reinterpret_cast<const uint64_t*>(p)[-1]);
}

// ---- Over-aligned blocks ------------------------------------------------------------------------

struct Header {
  uint64_t word;   // size | log2(alignment) << 56
  uint64_t check;  // see large.h
};

Header* header_of(const void* p) {
  return reinterpret_cast<Header*>(reinterpret_cast<uintptr_t>(p) - kHeader);
}

// The check value always has its top bit set; glibc's chunk size field, which sits in the same
// place before a plain block, never has (sizes are far below 2^63). One load and a sign test
// tell a plain block from an over-aligned one; the full check then guards against forgery.
uint64_t check_for(const void* p, uint64_t word) {
  uint64_t x = os::secret() ^ reinterpret_cast<uintptr_t>(p) ^ (word * 0x9E3779B97F4A7C15ull);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return (x ^ (x >> 29)) | (uint64_t{1} << 63);
}

// True for an over-aligned block. For a plain glibc block the 16 bytes read here are glibc's
// chunk header (prev_size, size), which never carries our check value.
inline bool is_aligned_block(const void* p) {
  const Header* h = header_of(p);
  if (PG_LIKELY(static_cast<int64_t>(h->check) >= 0)) return false;
  return (reinterpret_cast<uintptr_t>(p) & 15) == 0 && (h->word >> kAlignShift) > 4 &&
         h->check == check_for(p, h->word);
}

char* aligned_raw(const void* p) {
  return const_cast<char*>(static_cast<const char*>(p)) -
         reinterpret_cast<const uint64_t*>(header_of(p))[-1];
}

// ---- When glibc refuses -------------------------------------------------------------------------
//
// Under an address space limit (RLIMIT_AS), the unused part of the arena reservation may be what
// stands between glibc and the memory it needs: give it back and ask once more.
void* libc_alloc(size_t size, bool zero) {
  void* p = zero ? __libc_calloc(1, size) : __libc_malloc(size);
  if (PG_LIKELY(p != nullptr) || !arena_reclaim_address_space()) return p;
  return zero ? __libc_calloc(1, size) : __libc_malloc(size);
}

void* libc_realloc(void* p, size_t size) {
  void* q = __libc_realloc(p, size);
  if (PG_LIKELY(q != nullptr) || !arena_reclaim_address_space()) return q;
  return __libc_realloc(p, size);
}

// Aligned by hand inside a larger __libc_malloc block rather than with __libc_memalign, which the
// sanitizers intercept (their memalign and glibc's free do not mix).
void* aligned_alloc_raw(size_t size, size_t alignment, bool zero) {
  if (size > kSizeMask) return nullptr;
  size_t front = alignment + 2 * kHeader;  // header, offset word, alignment slack
  size_t total = size + front;
  if (total < size) return nullptr;
  char* raw = static_cast<char*>(libc_alloc(total, zero));
  if (raw == nullptr) return nullptr;
  uintptr_t a = reinterpret_cast<uintptr_t>(raw) + 2 * kHeader;
  char* p = reinterpret_cast<char*>(align_up(a, alignment));
  Header* h = header_of(p);
  h->word = size | (uint64_t{static_cast<uint64_t>(__builtin_ctzll(alignment))} << kAlignShift);
  h->check = check_for(p, h->word);
  reinterpret_cast<uint64_t*>(h)[-1] = static_cast<uint64_t>(p - raw);
  return p;
}

}  // namespace

// Plain large blocks are glibc's own chunks, untouched: glibc's speed, glibc's usable size.
void* large_alloc(size_t size, size_t alignment, bool zero, size_t request) {
  void* p;
  size_t usable;
  if (alignment <= kHeader) {
    p = libc_alloc(size, zero);
    if (p == nullptr) return nullptr;
    usable = foreign_usable_size(p);
  } else {
    p = aligned_alloc_raw(size, alignment, zero);
    if (p == nullptr) return nullptr;
    usable = size;
  }
  // Charged after the fact, at the block's real size: the check against the limit is still
  // atomic, and a refused block is given straight back.
  if (limit_enabled() && !limit_charge(usable, request)) {
    __libc_free(alignment <= kHeader ? p : aligned_raw(p));
    return nullptr;
  }
  count(true, usable);
  return p;
}

bool large_owns(const void* p) {
  // Every pointer that is neither in the arenas nor guarded is a glibc chunk: a plain large
  // block, an over-aligned one, or one glibc made before poolguard was there. All are handled
  // here.
  return p != nullptr;
}

size_t large_size(const void* p) {
  return is_aligned_block(p) ? header_of(p)->word & kSizeMask : foreign_usable_size(p);
}

size_t large_alignment(const void* p) {
  return is_aligned_block(p) ? size_t{1} << (header_of(p)->word >> kAlignShift) : kHeader;
}

// The general path for what the direct one does not handle; not inlined, so that the direct
// functions need no stack frame.
[[gnu::noinline]] void* large_alloc_general(size_t size, bool zero) {
  void* p = large_alloc(size, kHeader, zero);
  if (p == nullptr) errno = ENOMEM;
  return p;
}

template <bool kZero>
inline void* direct_alloc(size_t size) {
  LargeStats& s = t_stats;
  if (PG_UNLIKELY(s.budget <= 1)) return large_alloc_general(size, kZero);
  void* p = kZero ? __libc_calloc(1, size) : __libc_malloc(size);
  if (PG_UNLIKELY(p == nullptr)) return large_alloc_general(size, kZero);  // may retry
  // The slot in a register: the adds below are asm, after which TLS would be read again.
  stats::SegmentLargeSlot* slot = s.slot;
  --s.budget;
  counter_inc(slot->allocs);
  counter_add(slot->bytes_in, chunk_usable(p));
  return p;
}

void* large_malloc_direct(size_t size) {
  return direct_alloc<false>(size);
}

void* large_calloc_direct(size_t size) {
  return direct_alloc<true>(size);
}

// True when an existing block, whose chunk size word is size_word, takes the direct path now. The
// sign test is is_aligned_block()'s first step: a plain glibc chunk never has the bit set, so only
// over-aligned blocks (and forgeries) take the general path and its full check; so does every
// operation that runs the thread's budget out (the trim check).
inline bool direct_block(uint64_t size_word, const LargeStats& s) {
  return PG_LIKELY(static_cast<int64_t>(size_word) >= 0 && s.budget > 1);
}

void large_free_direct(void* p) {
  LargeStats& s = t_stats;
  uint64_t size_word = reinterpret_cast<const uint64_t*>(p)[-1];
  if (!direct_block(size_word, s)) return large_free(p);
  stats::SegmentLargeSlot* slot = s.slot;
  --s.budget;
  counter_inc(slot->frees);
  counter_add(slot->bytes_out, chunk_usable_from(size_word));
  __libc_free(p);
}

bool large_realloc_direct(void* p, size_t size, void** out) {
  LargeStats& s = t_stats;
  uint64_t size_word = reinterpret_cast<const uint64_t*>(p)[-1];
  if (!direct_block(size_word, s)) return false;
  void* q = __libc_realloc(p, size);
  if (PG_UNLIKELY(q == nullptr) && arena_reclaim_address_space()) {
    q = __libc_realloc(p, size);
  }
  *out = q;
  if (PG_UNLIKELY(q == nullptr)) return true;  // glibc set errno; p is untouched
  stats::SegmentLargeSlot* slot = s.slot;
  --s.budget;
  counter_add(slot->bytes_out, chunk_usable_from(size_word));
  counter_add(slot->bytes_in, chunk_usable(q));
  return true;
}

void large_free(void* p) {
  size_t usable;
  void* raw = p;
  if (PG_UNLIKELY(is_aligned_block(p))) {
    usable = header_of(p)->word & kSizeMask;
    raw = aligned_raw(p);
    header_of(p)->check = 0;  // a second free no longer looks like ours (glibc then reports it)
  } else {
    usable = foreign_usable_size(p);
  }
  limit_release(usable);
  count(false, usable);
  __libc_free(raw);
}

void* large_realloc(void* p, size_t size) {
  if (is_aligned_block(p)) return nullptr;  // the caller moves it
  size_t old = foreign_usable_size(p);
  // Under a limit, charge the most the block can grow to first (glibc rounds a request up by at
  // most a page), so that the limit is never crossed, and give back the excess after.
  size_t charged = 0;
  if (limit_enabled() && size > old) {
    charged = size - old + 4096;
    if (!limit_charge(charged, size)) return nullptr;
  }
  void* q = libc_realloc(p, size);
  if (q == nullptr) {
    limit_release(charged);
    return nullptr;
  }
  size_t usable = foreign_usable_size(q);
  if (limit_enabled()) {
    size_t growth = usable > old ? usable - old : 0;
    if (charged > growth) limit_release(charged - growth);
    if (usable < old) limit_release(old - usable);
  }
  stats::SegmentLargeSlot* slot = stats_slot();
  if (slot == nullptr) {
    shared_add(shared_globals().large_gone_bytes_out, old);
    shared_add(shared_globals().large_gone_bytes_in, usable);
    return q;
  }
  counter_add(slot->bytes_out, old);
  counter_add(slot->bytes_in, usable);
  // Counted against the budget too: a program that only reallocs would otherwise never get its
  // trim check, nor back onto the direct path.
  LargeStats& s = t_stats;
  if (--s.budget <= 0) {
    s.budget = kTrimCheckEvery;
    trim_check();
  }
  return q;
}

size_t foreign_usable_size(const void* p) {
  // chunk_usable_from(), guarded against a size word too small for a real chunk (garbage).
  uint64_t sz = reinterpret_cast<const uint64_t*>(p)[-1];
  return (sz & ~uint64_t{7}) > 16 ? chunk_usable_from(sz) : 0;
}

void large_counters(LargeCounters* out) {
  uint64_t v[4];
  large_totals(v);
  out->allocs = v[0];
  out->frees = v[1];
  out->live_bytes = v[2] >= v[3] ? v[2] - v[3] : 0;
}

}  // namespace pg
