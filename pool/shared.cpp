// The stats segment's memory (pool/shared.h, base/segment.h), and the System V shared memory
// calls every shared part uses. They live here rather than in pool/os.*: only the shared memory
// needs them.
#include "pool/shared.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

#include <cstring>

#include "base/align.h"
#include "base/os.h"
#include "pool/config.h"
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
  return align_up(n, kPage);
}

// The segment's layout: the head (header to arena map), then the heap slots, which must land
// kHeapCountersOffset bytes after the heap table's private part. So the region reserved at start
// is three tables long: [table, table + kHeapTableBytes) the private heaps, then unused address
// space, then the segment, ending where the counters end.
constexpr size_t kGlobalsOffset = kPage;
constexpr size_t kLargeOffset = kGlobalsOffset + round_page(sizeof(SegmentGlobals));
constexpr size_t kArenasOffset =
    kLargeOffset + round_page(kLargeCapacity * sizeof(SegmentLargeSlot));
constexpr size_t kHeapsOffset = kArenasOffset + round_page(kMaxArenas * sizeof(SegmentArena));
constexpr size_t kSegmentBytes = kHeapsOffset + kHeapTableBytes;
constexpr size_t kRegionBytes = kHeapCountersOffset + kHeapTableBytes;
static_assert(kHeapsOffset <= kHeapCountersOffset - kHeapTableBytes,
              "the segment's head fits between the heap table and its counters");

struct Region {
  char* table = nullptr;    // the heap table (private), kRegionBytes reserved from here
  char* segment = nullptr;  // table + kHeapCountersOffset - kHeapsOffset
  int id = -1;              // the segment's id when published
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
  h->size = kSegmentBytes;
  h->version = stats::kSegmentVersion;
  h->pid = os::process_id();
  h->uid = geteuid();
  h->start_time = process_start_time();
  h->num_classes = kNumClasses;
  for (size_t c = 0; c < kNumClasses; ++c) {
    h->class_size[c] = static_cast<uint32_t>(class_size(c));
    h->class_units[c] = static_cast<uint8_t>(class_units(c));
  }
  h->num_slots = kNumClasses + 1;
  h->small_max = kPoolMax;
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

// Private zeroed memory at `at` (replacing what is mapped there), or nullptr.
char* map_private(char* at, size_t bytes) {
  void* p = mmap(at, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | (at ? MAP_FIXED : 0), -1, 0);
  return p == MAP_FAILED ? nullptr : static_cast<char*>(p);
}

// The parts of the stats segment in use now (what a fork child copies).
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

char* shared_segment(size_t bytes, char* at, int* id) {
  int saved = errno;
  *id = shmget(IPC_PRIVATE, bytes, IPC_CREAT | IPC_EXCL | 0600);
  char* p = nullptr;
  if (*id >= 0) {
    void* a = shmat(*id, at, at != nullptr ? SHM_REMAP : 0);
    // Marked for removal at once: the kernel destroys it when the last attachment goes (this
    // process's end, or a reader's detach after it), and readers can still attach it meanwhile
    // (Linux allows that).
    shmctl(*id, IPC_RMID, nullptr);
    if (a != reinterpret_cast<void*>(-1)) {
      p = static_cast<char*>(a);
    } else {
      *id = -1;
    }
  }
  errno = saved;
  return p;
}

int shared_move_to_child(char* at, size_t bytes, const SharedRun* runs, size_t nruns) {
  int saved = errno;
  int id;
  // A new segment, attached anywhere first to copy the parent's contents in (the parent's pages
  // are still attached at `at`), then at `at` in place of the parent's.
  char* copy = shared_segment(bytes, nullptr, &id);
  bool ok = false;
  if (copy != nullptr) {
    for (size_t i = 0; i < nruns; ++i)
      memcpy(copy + runs[i].offset, at + runs[i].offset, runs[i].length);
    ok = shmat(id, at, SHM_REMAP) != reinterpret_cast<void*>(-1);
    shmdt(copy);
  }
  if (!ok) {
    // Private memory with the same contents instead. Without memory even for that, the child
    // keeps writing into its parent's segment (mixed figures, nothing worse).
    id = -1;
    char* tmp = map_private(nullptr, bytes);
    if (tmp != nullptr) {
      for (size_t i = 0; i < nruns; ++i)
        memcpy(tmp + runs[i].offset, at + runs[i].offset, runs[i].length);
      if (mremap(tmp, bytes, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, at) == MAP_FAILED) {
        munmap(tmp, bytes);
      }
    }
  }
  errno = saved;
  return id;
}

void shared_init(bool publish) {
  // One reservation for the heap table, the gap and the segment, so that the counters land
  // kHeapCountersOffset bytes after the heaps.
  void* v =
      mmap(nullptr, kRegionBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (v == MAP_FAILED) return;  // no memory at all: the placeholder stays, no heaps
  Region r;
  r.table = static_cast<char*>(v);
  r.segment = r.table + kHeapCountersOffset - kHeapsOffset;
  if (map_private(r.table, kHeapTableBytes) == nullptr) {
    munmap(v, kRegionBytes);
    return;
  }
  bool shared = publish && shared_segment(kSegmentBytes, r.segment, &r.id) != nullptr;
  if (!shared && map_private(r.segment, kSegmentBytes) == nullptr) {
    munmap(v, kRegionBytes);
    return;
  }
  g_region = r;
  SegmentGlobals* globals = reinterpret_cast<SegmentGlobals*>(r.segment + kGlobalsOffset);
  memcpy(globals, &shared_detail::g_placeholder, sizeof *globals);  // what was counted so far
  __atomic_store_n(&g_globals, globals, __ATOMIC_RELEASE);
  write_header(reinterpret_cast<SegmentHeader*>(r.segment));
}

SegmentLargeSlot* shared_large_slots() {
  return g_region.segment ? reinterpret_cast<SegmentLargeSlot*>(g_region.segment + kLargeOffset)
                          : nullptr;
}

size_t shared_large_capacity() {
  return g_region.segment ? kLargeCapacity : 0;
}

SegmentArena* shared_arena_map() {
  return g_region.segment ? reinterpret_cast<SegmentArena*>(g_region.segment + kArenasOffset)
                          : nullptr;
}

size_t shared_max_arenas() {
  return g_region.segment ? kMaxArenas : 0;
}

char* shared_heap_table() {
  return g_region.table;
}

void shared_own_range(uintptr_t* lo, uintptr_t* hi) {
  *lo = reinterpret_cast<uintptr_t>(g_region.table);
  *hi = g_region.table != nullptr ? *lo + kRegionBytes : 0;
}

int shared_segment_id() {
  return g_region.id;
}

uint64_t shared_start_time() {
  if (g_region.segment == nullptr) return process_start_time();
  return reinterpret_cast<const SegmentHeader*>(g_region.segment)->start_time;
}

void shared_after_fork_child() {
  if (g_region.id < 0) return;  // private memory: the child has its own copy already
  SharedRun runs[4];
  size_t n = segment_runs(runs);
  g_region.id = shared_move_to_child(g_region.segment, kSegmentBytes, runs, n);
  if (g_region.id >= 0) {
    SegmentHeader* h = reinterpret_cast<SegmentHeader*>(g_region.segment);
    h->pid = os::process_id();
    h->start_time = process_start_time();
  }
}

}  // namespace pg
