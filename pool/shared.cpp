// The stats segment's memory (pool/shared.h, stats/segment.h), and the memfd calls every shared
// part uses. The memfd and mapping calls live here rather than in pool/os.*: only the shared
// memory needs them.
#include "pool/shared.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include "pool/config.h"
#include "pool/os.h"
#include "pool/pool.h"

namespace pg {

namespace shared_detail {
stats::SegmentGlobals g_placeholder;
stats::SegmentGlobals* g_globals = &g_placeholder;
}  // namespace shared_detail

namespace {

using shared_detail::g_globals;
using stats::SegmentArena;
using stats::SegmentGlobals;
using stats::SegmentHeader;
using stats::SegmentLargeSlot;

constexpr size_t kPage = 4096;
constexpr size_t kLargeCapacity = kMaxHeaps;
constexpr size_t kMaxArenas = 4096;  // the map covers 4 GiB of arenas

constexpr size_t round_page(size_t n) {
  return (n + kPage - 1) & ~(kPage - 1);
}

// The file's layout: the head part (header to arena map) is mapped anywhere, the heap slots as
// the heap table's counters half.
constexpr size_t kGlobalsOffset = kPage;
constexpr size_t kLargeOffset = kGlobalsOffset + round_page(sizeof(SegmentGlobals));
constexpr size_t kArenasOffset =
    kLargeOffset + round_page(kLargeCapacity * sizeof(SegmentLargeSlot));
constexpr size_t kHeapsOffset = kArenasOffset + round_page(kMaxArenas * sizeof(SegmentArena));
constexpr size_t kHeadBytes = kHeapsOffset;
constexpr size_t kFileBytes = kHeapsOffset + kHeapCountersOffset;

struct Region {
  char* head = nullptr;   // kHeadBytes: header, globals, large slots, arena map
  char* heaps = nullptr;  // 2 * kHeapCountersOffset: the heap table, then its counters
  int fd = -1;            // the memfd when published
};
Region g_region;

// Start time of this process in clock ticks after boot: field 22 of /proc/self/stat, counted
// after the last ')' (the command name may hold spaces and parentheses). 0 if unreadable.
uint64_t process_start_time() {
  char buf[1024];
  int fd = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* p = strrchr(buf, ')');
  if (p == nullptr) return 0;
  for (int field = 2; field < 22 && *p; ++p) {
    if (*p == ' ') ++field;
  }
  uint64_t v = 0;
  while (*p >= '0' && *p <= '9') v = v * 10 + static_cast<uint64_t>(*p++ - '0');
  return v;
}

void write_header(SegmentHeader* h) {
  h->size = kFileBytes;
  h->version = stats::kSegmentVersion;
  h->pid = os::process_id();
  h->uid = geteuid();
  h->start_time = process_start_time();
  h->num_classes = kNumClasses;
  for (size_t c = 0; c < kNumClasses; ++c) h->class_size[c] = static_cast<uint32_t>(class_size(c));
  h->num_slots = kNumClasses + 1;
  h->small_max = kSmallMax;
  h->pool_size = kPoolSize;
  h->pool_header = kPoolLead;
  h->arena_size = kArenaSize;
  h->globals_offset = kGlobalsOffset;
  h->large_offset = kLargeOffset;
  h->large_capacity = kLargeCapacity;
  h->large_stride = sizeof(SegmentLargeSlot);
  h->arenas_offset = kArenasOffset;
  h->max_arenas = kMaxArenas;
  h->arena_stride = sizeof(SegmentArena);
  h->heaps_offset = kHeapsOffset;
  h->max_heaps = kMaxHeaps;
  h->heap_stride = kHeapStride;
  h->pool_meta_size = kPoolMetaSize;
  h->pool_used_offset = offsetof(Pool, used);
  __atomic_store_n(&h->magic, stats::kSegmentMagic, __ATOMIC_RELEASE);
}

// Where file offset `offset` of a memfd is mapped, given its mappings; nullptr if nowhere.
const char* address_in(const SharedMapping* maps, size_t n, size_t offset) {
  for (size_t i = 0; i < n; ++i) {
    if (offset >= maps[i].offset && offset - maps[i].offset < maps[i].bytes) {
      return maps[i].at + (offset - maps[i].offset);
    }
  }
  return nullptr;
}

// Replaces mapping m with private memory holding the same runs (the rest reads as zero, as it
// did in the file, whose untouched pages are zero).
void privatize(const SharedMapping& m, const SharedMapping* maps, size_t nmaps,
               const SharedRun* runs, size_t nruns) {
  void* tmp = mmap(nullptr, m.bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (tmp == MAP_FAILED) return;
  for (size_t i = 0; i < nruns; ++i) {
    if (runs[i].offset < m.offset || runs[i].offset - m.offset >= m.bytes) continue;
    const char* from = address_in(maps, nmaps, runs[i].offset);
    if (from != nullptr) {
      memcpy(static_cast<char*>(tmp) + (runs[i].offset - m.offset), from, runs[i].length);
    }
  }
  if (mremap(tmp, m.bytes, m.bytes, MREMAP_MAYMOVE | MREMAP_FIXED, m.at) == MAP_FAILED) {
    munmap(tmp, m.bytes);
  }
}

// The stats segment's mappings and the parts of it in use now.
size_t segment_mappings(SharedMapping* maps) {
  maps[0] = {g_region.head, kHeadBytes, 0};
  maps[1] = {g_region.heaps + kHeapCountersOffset, kHeapCountersOffset, kHeapsOffset};
  return 2;
}
size_t segment_runs(SharedRun* runs) {
  const SegmentGlobals& g = *g_globals;
  size_t large = g.large_slots < kLargeCapacity ? g.large_slots : kLargeCapacity;
  size_t arenas = g.arenas_listed < kMaxArenas ? g.arenas_listed : kMaxArenas;
  size_t heaps = g.heap_slots < kMaxHeaps ? g.heap_slots : kMaxHeaps;
  runs[0] = {0, kLargeOffset};  // header and globals
  runs[1] = {kLargeOffset, large * sizeof(SegmentLargeSlot)};
  runs[2] = {kArenasOffset, arenas * sizeof(SegmentArena)};
  runs[3] = {kHeapsOffset, heaps * kHeapStride};
  return 4;
}

}  // namespace

int shared_memfd(const char* name, size_t bytes) {
  int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return -1;
  // Sealed: nobody (a reader, or the program by mistake) can shrink it under the mappings, which
  // would kill the process with SIGBUS at its next count.
  if (ftruncate(fd, static_cast<off_t>(bytes)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    close(fd);
    return -1;
  }
  // Out of the way of programs that expect the next descriptors they open to be low numbers.
  int high = fcntl(fd, F_DUPFD_CLOEXEC, 100);
  if (high >= 0) {
    close(fd);
    fd = high;
  }
  return fd;
}

char* shared_map(char* at, size_t bytes, int fd, size_t offset) {
  int flags = (fd >= 0 ? MAP_SHARED : MAP_PRIVATE | MAP_ANONYMOUS) | (at ? MAP_FIXED : 0);
  void* p =
      mmap(at, bytes, PROT_READ | PROT_WRITE, flags, fd, fd >= 0 ? static_cast<off_t>(offset) : 0);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

int shared_move_to_child(const char* name, size_t file_bytes, const SharedMapping* maps,
                         size_t nmaps, const SharedRun* runs, size_t nruns) {
  int saved = errno;
  int fd = shared_memfd(name, file_bytes);
  bool ok = fd >= 0;
  for (size_t i = 0; ok && i < nruns; ++i) {
    const char* from = address_in(maps, nmaps, runs[i].offset);
    for (size_t done = 0; from != nullptr && ok && done < runs[i].length;) {
      ssize_t w =
          pwrite(fd, from + done, runs[i].length - done, static_cast<off_t>(runs[i].offset + done));
      if (w < 0 && errno == EINTR) continue;
      ok = w > 0;
      if (ok) done += static_cast<size_t>(w);
    }
  }
  for (size_t i = 0; ok && i < nmaps; ++i) {
    ok = shared_map(maps[i].at, maps[i].bytes, fd, maps[i].offset) != nullptr;
  }
  if (!ok) {
    // Private copies instead. Without memory even for those, the child keeps writing into its
    // parent's memory (mixed figures, nothing worse).
    if (fd >= 0) close(fd);
    fd = -1;
    for (size_t i = 0; i < nmaps; ++i) privatize(maps[i], maps, nmaps, runs, nruns);
  }
  errno = saved;
  return fd;
}

void shared_init(bool publish) {
  Region r;
  r.fd = publish ? shared_memfd(stats::kSegmentName, kFileBytes) : -1;
  for (int attempt = 0; attempt < 2; ++attempt) {
    r.head = shared_map(nullptr, kHeadBytes, r.fd, 0);
    // The heap table: one mapping for both halves, so that they are kHeapCountersOffset apart;
    // the private half is demand-zero memory, the counters half becomes the file's heap slots.
    void* table = mmap(nullptr, 2 * kHeapCountersOffset, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    r.heaps = table == MAP_FAILED ? nullptr : static_cast<char*>(table);
    if (r.heaps != nullptr && r.fd >= 0 &&
        shared_map(r.heaps + kHeapCountersOffset, kHeapCountersOffset, r.fd, kHeapsOffset) ==
            nullptr) {
      munmap(r.heaps, 2 * kHeapCountersOffset);
      r.heaps = nullptr;
    }
    if (r.head != nullptr && r.heaps != nullptr) break;
    // Not with the memfd: private memory then (nothing is published).
    if (r.head != nullptr) munmap(r.head, kHeadBytes);
    if (r.heaps != nullptr) munmap(r.heaps, 2 * kHeapCountersOffset);
    if (r.fd >= 0) close(r.fd);
    r = Region{};
  }
  if (r.head == nullptr) return;  // no memory at all: the placeholder stays
  g_region = r;
  SegmentGlobals* globals = reinterpret_cast<SegmentGlobals*>(r.head + kGlobalsOffset);
  memcpy(globals, &shared_detail::g_placeholder, sizeof *globals);  // what was counted so far
  __atomic_store_n(&g_globals, globals, __ATOMIC_RELEASE);
  write_header(reinterpret_cast<SegmentHeader*>(r.head));
}

SegmentLargeSlot* shared_large_slots() {
  return g_region.head ? reinterpret_cast<SegmentLargeSlot*>(g_region.head + kLargeOffset)
                       : nullptr;
}

size_t shared_large_capacity() {
  return g_region.head ? kLargeCapacity : 0;
}

SegmentArena* shared_arena_map() {
  return g_region.head ? reinterpret_cast<SegmentArena*>(g_region.head + kArenasOffset) : nullptr;
}

size_t shared_max_arenas() {
  return g_region.head ? kMaxArenas : 0;
}

char* shared_heap_table() {
  return g_region.heaps;
}

int shared_segment_fd() {
  return g_region.fd;
}

uint64_t shared_start_time() {
  if (g_region.head == nullptr) return process_start_time();
  return reinterpret_cast<const SegmentHeader*>(g_region.head)->start_time;
}

void shared_after_fork_child() {
  if (g_region.fd < 0) return;  // private memory: the child has its own copy already
  SharedMapping maps[2];
  SharedRun runs[4];
  size_t nmaps = segment_mappings(maps);
  size_t nruns = segment_runs(runs);
  int inherited = g_region.fd;
  g_region.fd = shared_move_to_child(stats::kSegmentName, kFileBytes, maps, nmaps, runs, nruns);
  close(inherited);  // the parent's: a reader of this process must not find it here
  if (g_region.fd >= 0) {
    SegmentHeader* h = reinterpret_cast<SegmentHeader*>(g_region.head);
    h->pid = os::process_id();
    h->start_time = process_start_time();
  }
}

}  // namespace pg
