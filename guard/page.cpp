// Page-guarded blocks: spans of one reserved PROT_NONE region (so "is this the guard's?" is one
// compare, and a fault address leads to its block through the page map in O(1)).
//
//   span start                      data start          user              user+size   trail
//   | leading guard page(s)         | ... | slack (fd) | the bytes asked for | slack  | trailing
//   guard |
//
// The block is right-aligned against the trailing guard page (up to its alignment, so a malloc
// block of a size that is not a multiple of 16 has a few bytes of checked slack after it). Up to
// kLeadingRedzone bytes of its first page before it are a checked redzone too. Only the data
// pages are ever accessible, and only while the block is live. A freed block's data pages are made
// PROT_NONE at once (a big block's memory goes back to the OS too; a small one keeps its pages for
// the span's next block, which saves a page fault), and the span waits in the quarantine, then in
// a bin of free spans of its size, for reuse.
//
// Mappings: the pages between a span's guards are a mapping of their own for the span's life, so
// each span costs the process about two of the kernel's vm.max_map_count mappings (65530 by
// default). Spans are carved under a budget that leaves the program a quarter of that limit (and
// at least 8192); past it, only free spans are reused, and when none fits (or the kernel refuses),
// page_alloc returns nullptr and the caller falls back.
#include <cstring>

#include "base/align.h"
#include "base/os.h"
#include "guard/internal.h"
#include "pool/limit.h"

namespace pg::guard {

PageRegion g_region;

namespace {

constexpr size_t kMaxRegion = size_t{64} << 30;
constexpr size_t kMinRegion = size_t{64} << 20;
constexpr uint32_t kExactBins = 64;  // spans of up to 64 pages: one bin per size
constexpr uint32_t kBins = kExactBins + 48;
constexpr size_t kKeepBytes = 16384;  // freed data pages up to this size stay resident
constexpr size_t kLeadingRedzone = 256;

size_t g_page = 4096;
size_t g_shift = 12;
size_t g_top = 0;        // pages of the region carved into spans so far
uint32_t g_bins[kBins];  // free spans (record indices), linked through Block::next
uint64_t g_spans = 0;    // spans carved (each costs about two kernel mappings for good)
uint64_t g_budget = 0;   // most spans allowed

uint32_t bin_of(size_t pages) {
  if (pages <= kExactBins) return static_cast<uint32_t>(pages);
  uint32_t log = 63 - static_cast<uint32_t>(__builtin_clzll(pages));  // >= 6
  uint32_t b = kExactBins + (log - 5);
  return b < kBins ? b : kBins - 1;
}

// Start of the checked redzone before a block whose first page starts at `data`: at most
// kLeadingRedzone bytes (filling and checking the whole rest of the page would cost more than the
// rest of a sampled allocation; an underflow that far is rare, and one past the page faults).
uintptr_t leading_redzone(uintptr_t user, uintptr_t data) {
  return user - data > kLeadingRedzone ? user - kLeadingRedzone : data;
}

size_t span_pages(const Block& b) {
  return b.raw_size >> g_shift;
}

void bin_push(uint32_t i) {
  Block* b = record(i);
  uint32_t bin = bin_of(span_pages(*b));
  b->next = g_bins[bin];
  g_bins[bin] = i;
}

// Takes a free span of at least `pages` pages from the bins (exact size first; else a bigger one,
// whose extra pages become more leading guard). 0 if none. Under the lock.
uint32_t bin_take(size_t pages) {
  uint32_t first = bin_of(pages);
  for (uint32_t bin = first; bin < kBins; ++bin) {
    uint32_t prev = 0;
    int scanned = 0;
    for (uint32_t i = g_bins[bin]; i != 0 && scanned < 16; prev = i, i = record(i)->next) {
      ++scanned;
      size_t have = span_pages(*record(i));
      if (have < pages) continue;
      if (prev != 0) {
        record(prev)->next = record(i)->next;
      } else {
        g_bins[bin] = record(i)->next;
      }
      record(i)->next = 0;
      return i;
    }
    // The exact bin was empty: carving a fresh span beats wasting a much bigger one.
    if (bin == first && pages <= kExactBins &&
        g_top + pages <= (g_region.size.load(std::memory_order_relaxed) >> g_shift))
      break;
  }
  return 0;
}

}  // namespace

uint32_t region_record(uintptr_t a) {
  if (!in_region(a)) return 0;
  return __atomic_load_n(&g_region.map[(a - g_region.base) >> g_shift], __ATOMIC_ACQUIRE);
}

void page_fit_region(size_t limit) {
  uintptr_t size = g_region.size.load(std::memory_order_relaxed);
  if (g_region.base == 0 || size == 0) return;
  uintptr_t keep = align_down(limit / 4, g_page);
  uintptr_t carved = uintptr_t{g_top} << g_shift;
  if (keep < carved) keep = carved;
  if (keep >= size) return;
  g_region.size.store(keep, std::memory_order_release);
  os::unmap(reinterpret_cast<void*>(g_region.base + keep), size - keep);
}

bool page_init() {
  g_page = os::page_size();
  g_shift = static_cast<size_t>(__builtin_ctzll(g_page));
  size_t size = kMaxRegion;
  size_t as_limit = os::address_space_limit();
  if (as_limit != SIZE_MAX && size > as_limit / 4) size = as_limit / 4;
  void* base = nullptr;
  for (; size >= kMinRegion; size /= 2) {
    base = os::reserve_aligned(size, g_page);
    if (base != nullptr) break;
  }
  if (base == nullptr) return false;
  void* map = os::map((size >> g_shift) * sizeof(uint32_t), true);
  if (map == nullptr) {
    os::unmap(base, size);
    return false;
  }
  g_region.map = static_cast<uint32_t*>(map);
  g_region.base = reinterpret_cast<uintptr_t>(base);
  g_region.size.store(size, std::memory_order_release);
  size_t maps = os::max_map_count();
  size_t keep = maps / 4 > 8192 ? maps / 4 : 8192;
  g_budget = maps > keep ? (maps - keep) / 2 : 0;
  return true;
}

void* page_alloc(size_t size, size_t alignment, bool zero, uint32_t stack, int tid,
                 uint32_t* index) {
  uintptr_t region = g_region.size.load(std::memory_order_relaxed);
  if (region == 0) return nullptr;
  size_t eff = size == 0 ? 1 : size;
  size_t a = alignment < g_page ? alignment : g_page;
  if (eff > region || alignment > region / 4) return nullptr;
  size_t need = align_up(eff, a) + (alignment > g_page ? alignment - g_page : 0);
  size_t pages = 2 + (need + g_page - 1) / g_page;
  // Counted like a large block; over the limit, the caller's fallback (a redzone block, or the
  // pools when sampling) refuses and logs it.
  if (!limit_charge_quiet(size, size)) return nullptr;
  uint32_t i = 0;
  bool fresh = false;
  {
    LockGuard guard(guard_lock());
    i = bin_take(pages);
    if (i == 0 && g_spans < g_budget &&
        g_top + pages <= (g_region.size.load(std::memory_order_relaxed) >> g_shift)) {
      i = record_new();
      if (i != 0) {
        Block* b = record(i);
        b->kind = kKindPage;
        b->raw = g_region.base + (g_top << g_shift);
        b->raw_size = pages << g_shift;
        g_top += pages;
        ++g_spans;
        fresh = true;
      }
    }
    if (i != 0) {
      __atomic_store_n(&record(i)->state, static_cast<uint8_t>(kFreeing), __ATOMIC_RELAXED);
    }
  }
  if (i == 0) {
    limit_release(size);
    return nullptr;
  }
  Block* b = record(i);
  uintptr_t trail = b->raw + b->raw_size - g_page;
  bool mapped = true;
  if (fresh) {
    size_t first = (b->raw - g_region.base) >> g_shift;
    for (size_t k = 0; k < span_pages(*b); ++k) {
      __atomic_store_n(&g_region.map[first + k], i, __ATOMIC_RELEASE);
    }
    // The pages between the guards become a mapping of their own, which the kernel never merges
    // with the guards around it: making them accessible and inaccessible again then only changes
    // their protection, instead of splitting and merging mappings (half the cost of a sample).
    uintptr_t inner = b->raw + g_page;
    mapped = os::protect_none(reinterpret_cast<void*>(inner), trail - inner, true);
  }
  uintptr_t user = align_down(trail - eff, alignment);
  uintptr_t data = align_down(user, g_page);
  if (!mapped || !os::commit(reinterpret_cast<void*>(data), trail - data)) {
    // Out of mappings (vm.max_map_count) or of memory: give the span back and carve no more.
    LockGuard guard(guard_lock());
    g_budget = g_spans;
    __atomic_store_n(&b->state, static_cast<uint8_t>(kSpanFree), __ATOMIC_RELAXED);
    bin_push(i);
    limit_release(size);
    return nullptr;
  }
  uintptr_t lead = leading_redzone(user, data);
  memset(reinterpret_cast<void*>(lead), kRedzoneByte, user - lead);
  memset(reinterpret_cast<void*>(user + size), kRedzoneByte, trail - (user + size));
  // Pages never used or given back read as zero; kept ones hold an earlier block's bytes.
  if (zero && b->dirty) memset(reinterpret_cast<void*>(user), 0, size);
  {
    LockGuard guard(guard_lock());
    b->user = user;
    b->size = size;
    b->alloc_stack = stack;
    b->free_stack = 0;
    b->alloc_tid = tid;
    b->free_tid = 0;
    b->align_log2 = static_cast<uint8_t>(__builtin_ctzll(alignment));
    __atomic_store_n(&b->state, static_cast<uint8_t>(kLive), __ATOMIC_RELEASE);
  }
  *index = i;
  return reinterpret_cast<void*>(user);
}

uintptr_t page_damage(const Block& b) {
  uintptr_t trail = b.raw + b.raw_size - g_page;
  uintptr_t lead = leading_redzone(b.user, align_down(b.user, g_page));
  if (uintptr_t d = find_other_byte(lead, b.user, kRedzoneByte)) return d;
  return find_other_byte(b.user + b.size, trail, kRedzoneByte);
}

void page_protect_freed(uint32_t i, const Block& b) {
  uintptr_t trail = b.raw + b.raw_size - g_page;
  uintptr_t data = align_down(b.user, g_page);
  // Small blocks keep their pages (the next block in the span reuses them without a page fault;
  // memory held is bounded by the spans in use or waiting); big ones give them back.
  bool keep = trail - data <= kKeepBytes;
  // Refused, the pages may still hold the block's bytes (and be accessible): the span's next
  // block must not count on zeroes.
  bool released = os::protect_none(reinterpret_cast<void*>(data), trail - data, !keep) && !keep;
  limit_release(b.size);
  LockGuard guard(guard_lock());
  record(i)->dirty = released ? 0 : 1;
}

void page_span_recycle(uint32_t i) {
  __atomic_store_n(&record(i)->state, static_cast<uint8_t>(kSpanFree), __ATOMIC_RELAXED);
  bin_push(i);
}

}  // namespace pg::guard
