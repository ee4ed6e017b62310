#include "pool/large.h"

#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "pool/init.h"
#include "pool/limit.h"

namespace pg {

namespace {

constexpr size_t kHeader = 16;
constexpr int kAlignShift = 56;
// Bit 55: the block was charged against POOLGUARD_LIMIT (blocks made before initialisation were
// not, and must not be released from it).
constexpr uint64_t kCharged = uint64_t{1} << 55;
constexpr uint64_t kSizeMask = kCharged - 1;

std::atomic<uint64_t> g_allocs{0}, g_frees{0}, g_live{0};

struct Header {
  uint64_t word;   // size | log2(alignment) << 56
  uint64_t check;  // see large.h
};

Header* header_of(const void* p) {
  return reinterpret_cast<Header*>(reinterpret_cast<uintptr_t>(p) - kHeader);
}

uint64_t check_for(const void* p, uint64_t word) {
  uint64_t x = global_secret() ^ reinterpret_cast<uintptr_t>(p) ^ (word * 0x9E3779B97F4A7C15ull);
  x ^= x >> 31;
  x *= 0xBF58476D1CE4E5B9ull;
  return x ^ (x >> 29);
}

// glibc returns the free memory at the top of its heap by itself, but not free pages in the
// middle of a fragmented heap: after a program frees most of its large blocks, RSS would stay at
// the high-water mark. So when live large bytes have fallen to under half of what they were at
// the last trim (or their peak since), ask glibc to give those pages back (malloc_trim(0)
// madvises every free page of every glibc arena). Rare by construction: the live total must halve
// between two trims, so a program that frees everything trims log2(peak / kTrimFloor) times.
constexpr uint64_t kTrimFloor = 4u << 20;
std::atomic<uint64_t> g_trim_mark{0};  // live large bytes at the last trim, or their peak since

void maybe_trim(uint64_t live) {
  uint64_t mark = g_trim_mark.load(std::memory_order_relaxed);
  if (live >= mark / 2 || mark < kTrimFloor) return;
  if (!g_trim_mark.compare_exchange_strong(mark, live, std::memory_order_relaxed)) return;
  malloc_trim(0);
}

void note_growth(uint64_t live) {
  uint64_t mark = g_trim_mark.load(std::memory_order_relaxed);
  while (live > mark && !g_trim_mark.compare_exchange_weak(mark, live, std::memory_order_relaxed)) {
  }
}

// Writes the header in front of p (raw is what glibc returned) and returns p.
void* finish(char* raw, char* p, size_t size, size_t alignment) {
  Header* h = header_of(p);
  h->word = size | (uint64_t{static_cast<uint64_t>(__builtin_ctzll(alignment))} << kAlignShift);
  h->check = check_for(p, h->word);
  if (alignment > kHeader) reinterpret_cast<uint64_t*>(h)[-1] = static_cast<uint64_t>(p - raw);
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  uint64_t live = g_live.fetch_add(size, std::memory_order_relaxed) + size;
  if (live > g_trim_mark.load(std::memory_order_relaxed)) note_growth(live);
  return p;
}

void mark_charged(void* p) {
  Header* h = header_of(p);
  h->word |= kCharged;
  h->check = check_for(p, h->word);
}

// What glibc returned for p: 16 bytes before it, or for over-aligned blocks the offset stored in
// the word before the header.
char* raw_of(const void* p) {
  char* q = const_cast<char*>(static_cast<const char*>(p));
  if (large_alignment(p) <= kHeader) return q - kHeader;
  return q - reinterpret_cast<const uint64_t*>(header_of(p))[-1];
}

}  // namespace

void* large_alloc_uncharged(size_t size, size_t alignment, bool zero);

// Over-aligned blocks are aligned by hand inside a larger __libc_malloc block rather than with
// __libc_memalign, which the sanitizers intercept (their memalign and glibc's free do not mix).
void* large_alloc(size_t size, size_t alignment, bool zero) {
  if (size > kSizeMask) return nullptr;
  bool charged = limit_enabled();
  if (charged && !limit_charge(size, size)) return nullptr;
  void* p = large_alloc_uncharged(size, alignment, zero);
  if (p == nullptr) {
    if (charged) limit_release(size);
    return nullptr;
  }
  if (charged) mark_charged(p);
  return p;
}

void* large_alloc_uncharged(size_t size, size_t alignment, bool zero) {
  // Front room: the header, plus for over-aligned blocks the offset word and the alignment slack.
  size_t front = alignment > kHeader ? alignment + 2 * kHeader : kHeader;
  size_t total = size + front;
  if (total < size) return nullptr;
  char* raw = static_cast<char*>(zero ? __libc_calloc(1, total) : __libc_malloc(total));
  if (raw == nullptr) return nullptr;
  char* p = raw + kHeader;
  if (alignment > kHeader) {
    uintptr_t a = reinterpret_cast<uintptr_t>(raw) + 2 * kHeader;
    p = reinterpret_cast<char*>((a + alignment - 1) & ~(uintptr_t{alignment} - 1));
  }
  return finish(raw, p, size, alignment);
}

bool large_owns(const void* p) {
  if ((reinterpret_cast<uintptr_t>(p) & 15) != 0) return false;
  const Header* h = header_of(p);
  return h->check == check_for(p, h->word);
}

size_t large_size(const void* p) {
  return header_of(p)->word & kSizeMask;
}

size_t large_alignment(const void* p) {
  return size_t{1} << (header_of(p)->word >> kAlignShift);
}

void large_free(void* p) {
  Header* h = header_of(p);
  uint64_t size = h->word & kSizeMask;
  if (h->word & kCharged) limit_release(size);
  g_frees.fetch_add(1, std::memory_order_relaxed);
  uint64_t live = g_live.fetch_sub(size, std::memory_order_relaxed) - size;
  char* raw = raw_of(p);
  h->check = 0;  // a second free no longer looks like ours (glibc then reports it)
  __libc_free(raw);
  maybe_trim(live);
}

void* large_realloc(void* p, size_t size) {
  if (large_alignment(p) > kHeader || size > kSizeMask || size + kHeader < size) return nullptr;
  size_t old = large_size(p);
  bool was_charged = (header_of(p)->word & kCharged) != 0;
  bool charged = limit_enabled();
  // Charge any growth (or, for a block made before initialisation, the whole size) first.
  size_t need = charged ? (was_charged ? (size > old ? size - old : 0) : size) : 0;
  if (need != 0 && !limit_charge(need, size)) return nullptr;
  char* raw = static_cast<char*>(__libc_realloc(raw_of(p), size + kHeader));
  if (raw == nullptr) {
    if (need != 0) limit_release(need);
    return nullptr;
  }
  if (was_charged && size < old) limit_release(old - size);
  g_live.fetch_sub(old, std::memory_order_relaxed);
  g_allocs.fetch_sub(1, std::memory_order_relaxed);  // finish() counts it again
  void* q = finish(raw, raw + kHeader, size, kHeader);
  if (charged) mark_charged(q);
  return q;
}

size_t foreign_usable_size(const void* p) {
  // glibc's chunk header: the word before the pointer holds the chunk size with flag bits in the
  // low 3 bits; bit 1 (IS_MMAPPED) means the chunk has a 16-byte overhead instead of 8.
  uint64_t sz = reinterpret_cast<const uint64_t*>(p)[-1];
  uint64_t chunk = sz & ~uint64_t{7};
  uint64_t overhead = (sz & 2) ? 16 : 8;
  return chunk > overhead ? chunk - overhead : 0;
}

void large_counters(LargeCounters* out) {
  out->allocs = g_allocs.load(std::memory_order_relaxed);
  out->frees = g_frees.load(std::memory_order_relaxed);
  out->live_bytes = g_live.load(std::memory_order_relaxed);
}

}  // namespace pg
