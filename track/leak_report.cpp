// The leak check at exit: collect the tracked blocks, scan, group by stack, symbolize, report.
// See track/leak_report.h for the output.
//
// Every work array is mmap'ed (nothing here allocates through malloc), and the tracker's shards
// stay locked from the moment the blocks are collected until the scan is over, so no block is
// made or freed in between; threads that allocate meanwhile wait on those locks (and are stopped
// by the scan anyway).
#include "track/leak_report.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/clock.h"
#include "base/depot.h"
#include "base/format.h"
#include "base/log.h"
#include "base/options.h"
#include "base/os.h"
#include "base/symbolize.h"
#include "large/large.h"
#include "pool/shared.h"
#include "track/leak_scan.h"
#include "track/profile_table.h"
#include "track/tracker.h"

namespace pg {

namespace {

using leak::ScanBlock;

// A live tracked block as collected: the scan's view plus the bytes asked for (what the report
// counts).
struct Item {
  ScanBlock block;
  uint64_t requested;
};

struct Collect {
  Item* items;
  size_t cap;
  size_t n;
};

void collect_one(void* ctx, uintptr_t p, uint64_t size, uint32_t stack) {
  Collect* c = static_cast<Collect*>(ctx);
  if (c->n == c->cap) return;
  Item& it = c->items[c->n++];
  it.block.start = p;
  // The bytes asked for, as LeakSanitizer does: the rest of glibc's usable size may hold stale
  // words, and its last 8 bytes are the next chunk's header, which glibc's bins point at.
  it.block.size = size;
  it.block.stack = stack;
  it.block.state = leak::kUnreached;
  it.requested = size;
}

void count_one(void* ctx, uintptr_t, uint64_t, uint32_t) {
  ++*static_cast<size_t*>(ctx);
}

// Blocks of one kind (direct, indirect or reachable) allocated from one stack.
struct Group {
  uint32_t stack;
  uint8_t state;
  uint64_t blocks;
  uint64_t bytes;
};

// An mmap'ed array that frees itself.
template <typename T>
struct MappedArray {
  T* data = nullptr;
  size_t bytes = 0;
  explicit MappedArray(size_t n) {
    bytes = n * sizeof(T);
    if (bytes == 0) bytes = sizeof(T);
    data = static_cast<T*>(os::map(bytes));
  }
  ~MappedArray() {
    if (data != nullptr) os::unmap(data, bytes);
  }
  MappedArray(const MappedArray&) = delete;
  MappedArray& operator=(const MappedArray&) = delete;
};

// Fills items[0..) and blocks[0..) with the live tracked blocks, sorted by address, and returns how
// many. The block addresses this leaves in registers and stack slots are below the scan's `top`
// (check_below), where nothing is a root.
size_t collect_sorted(Item* items, ScanBlock* blocks, size_t cap) {
  Collect c{items, cap, 0};
  tracker_for_each_locked(collect_one, &c);
  std::sort(items, items + c.n,
            [](const Item& a, const Item& b) { return a.block.start < b.block.start; });
  for (size_t i = 0; i < c.n; ++i) blocks[i] = items[i].block;
  return c.n;
}

// Sums the blocks of `state` by stack into groups[0..) and returns how many; groups must have
// room for n entries. Sorted by bytes, largest first.
size_t group_by_stack(const Item* items, size_t n, uint8_t state, Group* groups) {
  // The items are sorted by address, not by stack: an open-addressing map from stack to group.
  size_t cap = 16;
  while (cap < n * 2) cap *= 2;
  MappedArray<uint32_t> slot_of(cap);  // group index + 1 (0: empty)
  if (slot_of.data == nullptr) return 0;
  size_t ng = 0;
  for (size_t i = 0; i < n; ++i) {
    if (items[i].block.state != state) continue;
    uint32_t stack = items[i].block.stack;
    size_t h = (stack * 0x9E3779B1u) & (cap - 1);
    while (slot_of.data[h] != 0 && groups[slot_of.data[h] - 1].stack != stack) {
      h = (h + 1) & (cap - 1);
    }
    if (slot_of.data[h] == 0) {
      groups[ng] = Group{stack, state, 0, 0};
      slot_of.data[h] = static_cast<uint32_t>(++ng);
    }
    Group& g = groups[slot_of.data[h] - 1];
    ++g.blocks;
    g.bytes += items[i].requested;
  }
  std::sort(groups, groups + ng, [](const Group& a, const Group& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : a.stack < b.stack;
  });
  return ng;
}

struct Totals {
  uint64_t blocks = 0, bytes = 0, stacks = 0;
};

Totals totals_of(const Group* g, size_t n) {
  Totals t;
  for (size_t i = 0; i < n; ++i) t.blocks += g[i].blocks, t.bytes += g[i].bytes;
  t.stacks = n;
  return t;
}

// Writes `depth` symbolized frames, at most `max_frames` of them, one line each.
void write_frames(int fd, const SymFrame* frames, int depth, int max_frames) {
  for (int i = 0; i < depth && i < max_frames; ++i) {
    const SymFrame& f = frames[i];
    TextBuffer<1024> line;
    // Symbolized at pc - 1 (see leak_check_at_exit): shown as the return address it was.
    line.str("    #").u64(static_cast<uint64_t>(i)).chr(' ');
    append_frame(line, f, f.pc + 1);
    line.chr('\n');
    line.flush(fd);
  }
  if (depth == 0) {
    TextBuffer<128> line;
    line.str("    (no stack: the depot was full or the stack could not be walked)\n");
    line.flush(fd);
  }
}

void write_totals(TextBuffer<1024>& out, const char* name, const Totals& t) {
  out.chr('"').str(name).str("\":{\"blocks\":").u64(t.blocks).str(",\"bytes\":").u64(t.bytes);
  out.str(",\"stacks\":").u64(t.stacks).chr('}');
}

// The whole check. The calling thread's stack is a root from `top` up only: below it are the
// frames of poolguard's exit hook, whose slots hold block addresses (the collection, the sort)
// and, where never written, stale words of whatever ran there before (the program's last frames,
// malloc's): one of those once hid a leaked block.
int check_below(uintptr_t top) {
  uint64_t t0 = monotonic_ms();
  LogOutput out(true);
  int fd = out.fd();

  // --- Collect and scan, with the tracker locked. ---
  if (!tracker_lock_all()) {
    TextBuffer<160> line;
    line.str("poolguard: leak check skipped: the allocation tracker stayed locked (exit() called ");
    line.str("from inside an allocation?)\n");
    line.flush(fd);
    return 0;
  }
  size_t live = 0;
  tracker_for_each_locked(count_one, &live);
  MappedArray<Item> items(live);
  MappedArray<ScanBlock> blocks(live);
  if (items.data == nullptr || blocks.data == nullptr) {
    tracker_unlock_all();
    TextBuffer<128> line;
    line.str("poolguard: leak check skipped: no memory for its work arrays\n");
    line.flush(fd);
    return 0;
  }
  size_t n = collect_sorted(items.data, blocks.data, live);

  // Never roots: the tracker's tables (they list every block), the work arrays, the depot, and
  // poolguard's shared figures and profile (tens of megabytes that hold no program pointer:
  // scanning them made the check several times slower than the program's own memory needs).
  leak::Range exclude[32];
  size_t nx = 0;
  uintptr_t own[24][2];
  size_t nown = tracker_own_ranges(own, 16);
  nown += profile_table_own_ranges(own + nown, 2);
  shared_own_range(&own[nown][0], &own[nown][1]);
  ++nown;
  for (size_t i = 0; i < nown; ++i) {
    if (own[i][1] > own[i][0]) exclude[nx++] = leak::Range{own[i][0], own[i][1]};
  }
  exclude[nx++] = leak::Range{reinterpret_cast<uintptr_t>(items.data),
                              reinterpret_cast<uintptr_t>(items.data) + items.bytes};
  exclude[nx++] = leak::Range{reinterpret_cast<uintptr_t>(blocks.data),
                              reinterpret_cast<uintptr_t>(blocks.data) + blocks.bytes};
  uintptr_t dlo, dhi;
  depot_range(&dlo, &dhi);
  if (dhi > dlo) exclude[nx++] = leak::Range{dlo, dhi};
  std::sort(exclude, exclude + nx,
            [](const leak::Range& a, const leak::Range& b) { return a.lo < b.lo; });

  leak::ScanStats stats{};
  bool scanned = leak::leak_scan(blocks.data, n, exclude, nx, &stats, top);
  tracker_unlock_all();
  if (!scanned) {
    TextBuffer<128> line;
    line.str("poolguard: leak check skipped: /proc/self/maps or work memory unavailable\n");
    line.flush(fd);
    return 0;
  }
  for (size_t i = 0; i < n; ++i) items.data[i].block.state = blocks.data[i].state;

  // --- Group. ---
  MappedArray<Group> direct(n), indirect(n), reachable(n);
  if (direct.data == nullptr || indirect.data == nullptr || reachable.data == nullptr) return 0;
  size_t nd = group_by_stack(items.data, n, leak::kDirect, direct.data);
  size_t ni = group_by_stack(items.data, n, leak::kIndirect, indirect.data);
  size_t nr = group_by_stack(items.data, n, leak::kReachable, reachable.data);
  Totals td = totals_of(direct.data, nd), ti = totals_of(indirect.data, ni);
  Totals tr = totals_of(reachable.data, nr);

  // --- Symbolize the stacks shown, all at once (one addr2line run per module). ---
  // Reachable blocks are listed only when asked (POOLGUARD_LEAKS_REACHABLE=on): they are not
  // leaks, and a program that leaks nothing then symbolizes nothing.
  bool list_reachable = options().LEAKS_REACHABLE == kLeaksReachableOn;
  size_t show_d = nd < size_t{kLeakGroupsShown} ? nd : kLeakGroupsShown;
  size_t show_i = ni < size_t{kLeakGroupsShown} ? ni : kLeakGroupsShown;
  size_t show_r = !list_reachable ? 0 : nr < size_t{kLeakGroupsShown} ? nr : kLeakGroupsShown;
  size_t shown = show_d + show_i + show_r;
  MappedArray<uintptr_t> pcs(shown * kDepotMaxFrames);
  MappedArray<int> depth(shown);
  MappedArray<SymFrame> frames(shown * kDepotMaxFrames);
  if (pcs.data == nullptr || depth.data == nullptr || frames.data == nullptr) return 0;
  const Group* order[3] = {direct.data, indirect.data, reachable.data};
  size_t counts[3] = {show_d, show_i, show_r};
  size_t k = 0, npcs = 0;
  for (int kind = 0; kind < 3; ++kind) {
    for (size_t g = 0; g < counts[kind]; ++g, ++k) {
      depth.data[k] = depot_get(order[kind][g].stack, pcs.data + npcs, kDepotMaxFrames);
      npcs += static_cast<size_t>(depth.data[k]);
    }
  }
  // The frames are return addresses: the call is the instruction before, and its line is the
  // one to name (addr2line of the return address can give the next line). Shown as captured.
  for (size_t i = 0; i < npcs; ++i) pcs.data[i] -= 1;
  if (npcs > 0) symbolize_self(pcs.data, npcs, frames.data, true);

  // --- Write. ---
  k = 0;
  size_t at = 0;
  const char* what[3] = {"direct leak of ", "indirect leak of ", "reachable: "};
  for (int kind = 0; kind < 3; ++kind) {
    for (size_t g = 0; g < counts[kind]; ++g, ++k) {
      const Group& gr = order[kind][g];
      TextBuffer<256> head;
      head.str("poolguard: ").str(what[kind]).u64(gr.bytes).str(" bytes in ");
      head.u64(gr.blocks).str(gr.blocks == 1 ? " block" : " blocks").str(", allocated from:\n");
      head.flush(fd);
      write_frames(fd, frames.data + at, depth.data[k], kDepotMaxFrames);
      at += static_cast<size_t>(depth.data[k]);
    }
    if (kind == 1 && (nd > show_d || ni > show_i)) {
      TextBuffer<256> more;
      more.str("poolguard: ... and ").u64((nd - show_d) + (ni - show_i));
      more.str(" more leak stacks (counted in the summary)\n");
      more.flush(fd);
    }
  }
  if (tr.blocks > 0) {
    TextBuffer<256> line;
    line.str("poolguard: ").u64(tr.blocks).str(tr.blocks == 1 ? " block (" : " blocks (");
    line.u64(tr.bytes).str(" bytes) still reachable at exit, not leaks");
    if (!list_reachable) {
      line.str("; POOLGUARD_LEAKS_REACHABLE=on lists them");
    } else if (nr > show_r) {
      line.str("; ").u64(nr - show_r).str(" more stacks of them not shown");
    }
    line.chr('\n');
    line.flush(fd);
  }
  TextBuffer<1024> sum;
  sum.str("poolguard: leak-summary {\"pid\":").u64(static_cast<uint64_t>(os::process_id()));
  sum.chr(',');
  write_totals(sum, "direct", td);
  sum.chr(',');
  write_totals(sum, "indirect", ti);
  sum.chr(',');
  write_totals(sum, "reachable", tr);
  sum.str(",\"threads\":").u64(stats.threads).str(",\"threads_stopped\":");
  sum.u64(stats.threads_stopped).str(",\"threads_unstopped\":").u64(stats.threads_unstopped);
  sum.str(",\"root_bytes\":").u64(stats.root_bytes).str(",\"heap_bytes\":").u64(stats.heap_bytes);
  sum.str(",\"ms\":").u64(monotonic_ms() - t0).str("}\n");
  sum.flush(fd);

  if (td.blocks + ti.blocks == 0) return 0;
  return static_cast<int>(options().LEAKS_EXIT_CODE);
}

}  // namespace

int leak_check_at_exit(uintptr_t top) {
  if (!tracking_all()) return 0;
  return check_below(top);
}

}  // namespace pg
