#include "pool/large.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "pool/arena.h"
#include "pool/init.h"
#include "pool/limit.h"
#include "pool/lock.h"

#define PG_LIKELY_LARGE(x) __builtin_expect(!!(x), 1)
#define PG_UNLIKELY_LARGE(x) __builtin_expect(!!(x), 0)

namespace pg {

namespace {

constexpr size_t kHeader = 16;
constexpr int kAlignShift = 56;
constexpr uint64_t kSizeMask = (uint64_t{1} << kAlignShift) - 1;

// ---- Statistics, per thread -------------------------------------------------------------------
//
// The large path must cost about what glibc costs, so it updates no shared counter: each thread
// counts in its own LargeStats (single writer, read by others with relaxed loads), registered in
// a list on the thread's first large block and folded into `g_gone` when the thread exits (see
// ThreadState for what happens after that).

// Single writer: one plain add on x86 (no lock prefix), read by others with a relaxed load.
struct Counter {
  uint64_t v = 0;
  void add(uint64_t n) {
#if defined(__x86_64__)
    asm volatile("addq %1, %0" : "+m"(v) : "r"(n));
#else
    __atomic_store_n(&v, __atomic_load_n(&v, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
#endif
  }
  void inc() {
#if defined(__x86_64__)
    asm volatile("addq $1, %0" : "+m"(v));
#else
    add(1);
#endif
  }
  uint64_t get() const {
    return __atomic_load_n(&v, __ATOMIC_RELAXED);
  }
};

// Live large bytes are summed (for the trim decision below) every kTrimCheckEvery large
// operations of a thread, not on each.
constexpr int32_t kTrimCheckEvery = 64;

// A thread's statistics go through three states. kNew: nothing counted yet (the plain path sends
// the first block to the general one, which registers). kRegistered: in g_threads. kExited: the
// thread's exit hook folded them into g_gone; the thread may still allocate and free afterwards
// (later pthread key destructors, and glibc itself, which frees the thread's second-level key
// arrays after every destructor has run), and those operations count straight into g_gone: such a
// thread must never register again, since its TLS, where LargeStats lives, goes away with it.
enum class ThreadState : uint8_t { kNew, kRegistered, kExited };

struct LargeStats {
  Counter allocs, frees;
  Counter bytes_in, bytes_out;  // usable bytes of the blocks this thread allocated / freed
  // Large operations left before the next trim check (trim_check below); 0 unless registered, so
  // that the plain path hands every block of an unregistered thread to the general one.
  int32_t budget = 0;
  ThreadState state = ThreadState::kNew;
  LargeStats* next = nullptr;
  LargeStats* prev = nullptr;
};

__thread LargeStats t_stats __attribute__((tls_model("initial-exec")));

SpinLock g_stats_lock;
LargeStats* g_threads = nullptr;  // registered threads' stats, under g_stats_lock
// allocs, frees, bytes_in, bytes_out of exited threads (and of threads past their exit hook).
// Atomic: a thread past its exit hook adds to them without the lock.
std::atomic<uint64_t> g_gone[4];
pthread_key_t g_key;
bool g_key_made = false;

void add_gone(int i, uint64_t n) {
  if (n != 0) g_gone[i].fetch_add(n, std::memory_order_relaxed);
}

uint64_t gone(int i) {
  return g_gone[i].load(std::memory_order_relaxed);
}

// Takes s out of g_threads, its counts into g_gone. Under g_stats_lock.
void unregister_locked(LargeStats* s, ThreadState next_state) {
  add_gone(0, s->allocs.get());
  add_gone(1, s->frees.get());
  add_gone(2, s->bytes_in.get());
  add_gone(3, s->bytes_out.get());
  if (s->prev) {
    s->prev->next = s->next;
  } else {
    g_threads = s->next;
  }
  if (s->next) s->next->prev = s->prev;
  s->next = s->prev = nullptr;
  s->state = next_state;
  s->budget = 0;
  s->allocs.v = s->frees.v = s->bytes_in.v = s->bytes_out.v = 0;
}

void on_thread_exit(void* arg) {
  LockGuard guard(g_stats_lock);
  LargeStats* s = static_cast<LargeStats*>(arg);
  if (s->state == ThreadState::kRegistered) unregister_locked(s, ThreadState::kExited);
}

}  // namespace

void large_lock_for_fork() {
  g_stats_lock.lock_for_fork();
}
void large_unlock_after_fork_parent() {
  g_stats_lock.unlock_after_fork();
}
// In a forked child only the forking thread exists: fold the others away before their TLS
// memory is reused by new threads.
void large_after_fork_child() {
  g_stats_lock.unlock_after_fork();
  LockGuard guard(g_stats_lock);
  for (LargeStats* s = g_threads; s != nullptr;) {
    LargeStats* next = s->next;
    if (s != &t_stats) unregister_locked(s, ThreadState::kNew);
    s = next;
  }
}

namespace {

[[gnu::noinline]] void register_thread() {
  LargeStats* s = &t_stats;
  s->state = ThreadState::kRegistered;  // first: the calls below may allocate and come back here
  s->budget = kTrimCheckEvery;
  bool make_key;
  {
    LockGuard guard(g_stats_lock);
    s->next = g_threads;
    s->prev = nullptr;
    if (g_threads) g_threads->prev = s;
    g_threads = s;
    make_key = !g_key_made;
    g_key_made = true;
  }
  if (make_key) pthread_key_create(&g_key, on_thread_exit);
  pthread_setspecific(g_key, s);
}

// The calling thread's statistics, registering them first if need be; nullptr for a thread past
// its exit hook, whose operations count into g_gone.
inline LargeStats* stats() {
  LargeStats* s = &t_stats;
  if (PG_LIKELY_LARGE(s->state == ThreadState::kRegistered)) return s;
  if (s->state == ThreadState::kExited) return nullptr;
  register_thread();
  return s;
}

// Sum of live large bytes, or false when the lock is busy (a fork in progress, or a reader):
// the trim check is then simply skipped.
bool live_bytes_now(uint64_t* live) {
  if (!g_stats_lock.try_lock()) return false;
  uint64_t in = gone(2), out = gone(3);
  for (LargeStats* s = g_threads; s != nullptr; s = s->next) {
    in += s->bytes_in.get();
    out += s->bytes_out.get();
  }
  g_stats_lock.unlock_raw();
  *live = in >= out ? in - out : 0;
  return true;
}

// ---- Giving memory back -------------------------------------------------------------------------
//
// glibc returns the free memory at the top of its heap by itself, but not free pages in the
// middle of a fragmented heap: after a program frees most of its large blocks, RSS would stay at
// the high-water mark. So when live large bytes have fallen to under half of what they were at
// the last trim (or their peak since), ask glibc to give those pages back (malloc_trim(0)
// madvises every free page of every glibc arena). Rare by construction: the live total must halve
// between two trims, so a program that frees everything trims log2(peak / kTrimFloor) times.
// Live bytes are summed every kTrimCheckEvery large operations of a thread, not on each.
constexpr uint64_t kTrimFloor = 4u << 20;
std::atomic<uint64_t> g_trim_mark{0};  // live large bytes at the last trim, or their peak since

[[gnu::noinline]] void trim_check() {
  uint64_t live;
  if (!live_bytes_now(&live)) return;
  uint64_t mark = g_trim_mark.load(std::memory_order_relaxed);
  while (live > mark && !g_trim_mark.compare_exchange_weak(mark, live, std::memory_order_relaxed)) {
  }
  if (live >= mark / 2 || mark < kTrimFloor) return;
  if (!g_trim_mark.compare_exchange_strong(mark, live, std::memory_order_relaxed)) return;
  malloc_trim(0);
}

// Counts one block in (alloc) or out (free) on the calling thread, and every kTrimCheckEvery
// operations looks whether glibc should give memory back.
inline void count(bool alloc, size_t usable) {
  LargeStats* s = stats();
  if (s == nullptr) {
    add_gone(alloc ? 0 : 1, 1);
    add_gone(alloc ? 2 : 3, usable);
    return;
  }
  (alloc ? s->allocs : s->frees).add(1);
  (alloc ? s->bytes_in : s->bytes_out).add(usable);
  if (--s->budget <= 0) {
    s->budget = kTrimCheckEvery;
    trim_check();
  }
}

// Usable bytes of a glibc chunk, from its size word (the word before the block): the chunk size
// with the flag bits (low 3) cleared, less 8 bytes of header, or 16 for an mmapped chunk (bit 1,
// IS_MMAPPED). Every real chunk has at least 32 bytes; foreign_usable_size() adds a guard
// against smaller (garbage) values, which the plain path, seeing only real chunks, does without.
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
  uint64_t x = global_secret() ^ reinterpret_cast<uintptr_t>(p) ^ (word * 0x9E3779B97F4A7C15ull);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return (x ^ (x >> 29)) | (uint64_t{1} << 63);
}

// True for an over-aligned block. For a plain glibc block the 16 bytes read here are glibc's
// chunk header (prev_size, size), which never carries our check value.
inline bool is_aligned_block(const void* p) {
  const Header* h = header_of(p);
  if (PG_LIKELY_LARGE(static_cast<int64_t>(h->check) >= 0)) return false;
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
  if (PG_LIKELY_LARGE(p != nullptr) || !arena_reclaim_address_space()) return p;
  return zero ? __libc_calloc(1, size) : __libc_malloc(size);
}

void* libc_realloc(void* p, size_t size) {
  void* q = __libc_realloc(p, size);
  if (PG_LIKELY_LARGE(q != nullptr) || !arena_reclaim_address_space()) return q;
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
  char* p = reinterpret_cast<char*>((a + alignment - 1) & ~(uintptr_t{alignment} - 1));
  Header* h = header_of(p);
  h->word = size | (uint64_t{static_cast<uint64_t>(__builtin_ctzll(alignment))} << kAlignShift);
  h->check = check_for(p, h->word);
  reinterpret_cast<uint64_t*>(h)[-1] = static_cast<uint64_t>(p - raw);
  return p;
}

}  // namespace

// Plain large blocks are glibc's own chunks, untouched: glibc's speed, glibc's usable size.
void* large_alloc(size_t size, size_t alignment, bool zero) {
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
  if (limit_enabled() && !limit_charge(usable, size)) {
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

// The general path for what the plain one does not handle; not inlined, so that the plain
// functions need no stack frame.
[[gnu::noinline]] void* large_alloc_general(size_t size, bool zero) {
  void* p = large_alloc(size, kHeader, zero);
  if (p == nullptr) errno = ENOMEM;
  return p;
}

template <bool kZero>
inline void* plain_alloc(size_t size) {
  LargeStats& s = t_stats;
  if (PG_UNLIKELY_LARGE(s.budget <= 1)) return large_alloc_general(size, kZero);
  void* p = kZero ? __libc_calloc(1, size) : __libc_malloc(size);
  if (PG_UNLIKELY_LARGE(p == nullptr)) return large_alloc_general(size, kZero);  // may retry
  --s.budget;
  s.allocs.inc();
  s.bytes_in.add(chunk_usable(p));
  return p;
}

void* large_malloc_plain(size_t size) {
  return plain_alloc<false>(size);
}

void* large_calloc_plain(size_t size) {
  return plain_alloc<true>(size);
}

// True when an existing block, whose chunk size word is size_word, takes the plain path now. The
// sign test is is_aligned_block()'s first step: a plain glibc chunk never has the bit set, so only
// over-aligned blocks (and forgeries) take the general path and its full check; so does every
// operation that runs the thread's budget out (the trim check).
inline bool plain_block(uint64_t size_word, const LargeStats& s) {
  return PG_LIKELY_LARGE(static_cast<int64_t>(size_word) >= 0 && s.budget > 1);
}

void large_free_plain(void* p) {
  LargeStats& s = t_stats;
  uint64_t size_word = reinterpret_cast<const uint64_t*>(p)[-1];
  if (!plain_block(size_word, s)) return large_free(p);
  --s.budget;
  s.frees.inc();
  s.bytes_out.add(chunk_usable_from(size_word));
  __libc_free(p);
}

bool large_realloc_plain(void* p, size_t size, void** out) {
  LargeStats& s = t_stats;
  uint64_t size_word = reinterpret_cast<const uint64_t*>(p)[-1];
  if (!plain_block(size_word, s)) return false;
  void* q = __libc_realloc(p, size);
  if (PG_UNLIKELY_LARGE(q == nullptr) && arena_reclaim_address_space()) {
    q = __libc_realloc(p, size);
  }
  *out = q;
  if (PG_UNLIKELY_LARGE(q == nullptr)) return true;  // glibc set errno; p is untouched
  --s.budget;
  s.bytes_out.add(chunk_usable_from(size_word));
  s.bytes_in.add(chunk_usable(q));
  return true;
}

void large_free(void* p) {
  size_t usable;
  void* raw = p;
  if (PG_UNLIKELY_LARGE(is_aligned_block(p))) {
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
  LargeStats* s = stats();
  if (s == nullptr) {
    add_gone(3, old);
    add_gone(2, usable);
    return q;
  }
  s->bytes_out.add(old);
  s->bytes_in.add(usable);
  // Counted against the budget too: a program that only reallocs would otherwise never get its
  // trim check, nor back onto the plain path.
  if (--s->budget <= 0) {
    s->budget = kTrimCheckEvery;
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
  LockGuard guard(g_stats_lock);
  uint64_t v[4] = {gone(0), gone(1), gone(2), gone(3)};
  for (LargeStats* s = g_threads; s != nullptr; s = s->next) {
    v[0] += s->allocs.get();
    v[1] += s->frees.get();
    v[2] += s->bytes_in.get();
    v[3] += s->bytes_out.get();
  }
  out->allocs = v[0];
  out->frees = v[1];
  out->live_bytes = v[2] >= v[3] ? v[2] - v[3] : 0;
}

}  // namespace pg
