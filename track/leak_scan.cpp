// The conservative reachability scan of POOLGUARD_LEAKS (what it decides: track/leak_scan.h).
//
// One call goes through five steps, and allocates nothing through malloc (the allocator is
// running, and its locks may be held by the threads this code stops):
//   1. Stop the world. /proc/self/task lists the threads; every other thread is sent a real-time
//      signal (SIGRTMAX-3) whose handler copies its registers and stack pointer into the thread's
//      slot and then waits on a futex until step 5. A thread that blocks the signal, or does not
//      answer within 200 ms, runs on: nothing marks its stack, which is then scanned whole like
//      any other writable mapping.
//   2. Read /proc/self/maps (after the stop, so that the stopped threads cannot change it) into
//      the root regions: the mappings both readable and writable, less the kernel's pages
//      ([vvar], [vdso], [vsyscall]) and poolguard's own statistics segments.
//   3. Mark. Every aligned word of the roots (the regions less the blocks, less the skips below,
//      and the saved registers) that points into an unreached block makes it reachable and pushes
//      it on the mark stack; blocks are popped and scanned in turn until the stack is empty.
//   4. Classify what is left, one flood per leaked block (classify() below).
//   5. Release the threads and unmap the work memory.
// Steps 1 and 5 are track/stop_world.cpp's, step 2 track/root_regions.cpp's (through base/maps.h)
// and the work memory track/scan_work.h's; this file marks and classifies, and runs the steps.
//
// Work memory is mmap'ed, unmapped before returning, and never a root: it holds copies of root
// memory, saved registers and block indices, which would otherwise make every block reachable.
//   slots    one ThreadSlot per other thread, sorted by tid (the handler binary-searches it);
//   bounce   root memory is read through this buffer with process_vm_readv(), so that a page that
//            cannot be read (a file mapping past the end of its file raises SIGBUS; device
//            mappings, or memory a running thread just unmapped, may refuse) costs an error code
//            instead of a signal. Where process_vm_readv is refused (seccomp) roots are read in
//            place, file mappings only up to the end of their file, device files not at all;
//   maps     the text of /proc/self/maps, and the root regions parsed from it;
//   stacks   the stack pointer of each thread whose stack is scanned from its sp up;
//   skips    sorted, disjoint ranges never scanned as roots: the caller's `exclude`, the block
//            array itself (it holds the address of every block), the work memory, and the part
//            of each of those stacks below its stack pointer (dead frames hold stale pointers);
//   stack    the mark stack: block indices. A block is pushed only when its state changes from
//            kUnreached (to kReachable while marking, to kDirect or kIndirect while classifying),
//            so n entries always suffice and it never grows; it is mapped MAP_NORESERVE, so only
//            the part used costs memory.
#include "track/leak_scan.h"

#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "base/lock.h"
#include "base/os.h"
#include "track/root_regions.h"
#include "track/scan_work.h"
#include "track/stop_world.h"

// The scan reads words that a sanitizer would call races (other threads' memory) or poisoned
// (redzones in the roots); they are only compared with block bounds.
#define PG_LEAK_NO_SANITIZE __attribute__((no_sanitize("address", "thread", "undefined")))

namespace pg::leak {

namespace {

constexpr uintptr_t kWord = sizeof(uintptr_t);
constexpr size_t kNone = ~size_t{0};
// Below a stopped thread's sp, the x86-64 ABI lets a leaf function keep data (the red zone).
constexpr uintptr_t kRedZone = 128;
constexpr size_t kBounceBytes = size_t{64} << 10;
// The frames of the scan itself, below the scanning thread's stack pointer (a bound used only
// when another thread's stack pointer lies just below ours, in the same mapping).
constexpr uintptr_t kOwnFrames = uintptr_t{64} << 10;

SpinLock g_scan_lock;  // one scan at a time

// Sorts ranges by start and merges those that overlap or touch; drops empty ones. Returns the
// new count.
size_t merge_ranges(Range* r, size_t n) {
  std::sort(r, r + n, [](const Range& a, const Range& b) { return a.lo < b.lo; });
  size_t out = 0;
  for (size_t i = 0; i < n; ++i) {
    if (r[i].lo >= r[i].hi) continue;
    if (out > 0 && r[i].lo <= r[out - 1].hi) {
      if (r[i].hi > r[out - 1].hi) r[out - 1].hi = r[i].hi;
    } else {
      r[out++] = r[i];
    }
  }
  return out;
}

// Index of the first range in sorted, disjoint r[0..n) that ends after `a` (n when none).
size_t first_range_after(const Range* r, size_t n, uintptr_t a) {
  return static_cast<size_t>(
      std::upper_bound(r, r + n, a, [](uintptr_t v, const Range& x) { return v < x.hi; }) - r);
}

// One end past a block: a pointer to a block of size 0 counts only at its start.
uintptr_t block_end(const ScanBlock& b) {
  return b.start + (b.size == 0 ? 1 : b.size);
}

// Index of the first block that ends after `a` (n when none).
size_t first_block_after(const ScanBlock* blocks, size_t n, uintptr_t a) {
  return static_cast<size_t>(
      std::upper_bound(blocks, blocks + n, a,
                       [](uintptr_t v, const ScanBlock& b) { return v < block_end(b); }) -
      blocks);
}

// ---- Marking ----

struct Scanner {
  ScanBlock* blocks;
  size_t n;
  uintptr_t lo, hi;  // from the first block's start to the last one's end
  size_t* stack;     // the mark stack (n entries)
  size_t top = 0;
  const Range* skips;
  size_t nskips;
  char* bounce;
  bool direct;  // read roots in place (process_vm_readv refused)
  int pid;
  ScanStats* st;

  // The block holding address w, or kNone. Blocks are sorted and disjoint: binary search for
  // the last one starting at or below w.
  size_t find(uintptr_t w) const {
    if (w - lo >= hi - lo) return kNone;
    size_t a = 0, b = n;
    while (a < b) {
      size_t mid = a + (b - a) / 2;
      if (blocks[mid].start <= w) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    if (a == 0) return kNone;
    const ScanBlock& blk = blocks[a - 1];
    return w - blk.start < block_end(blk) - blk.start ? a - 1 : kNone;
  }

  // Marking: an unreached block that `w` points into becomes reachable and waits on the stack.
  void mark(uintptr_t w) {
    size_t i = find(w);
    if (i == kNone || blocks[i].state != kUnreached) return;
    blocks[i].state = kReachable;
    stack[top++] = i;
  }

  PG_LEAK_NO_SANITIZE void mark_words(const uintptr_t* p, size_t count) {
    for (size_t k = 0; k < count; ++k) mark(p[k]);
  }

  // The aligned words wholly inside [a, b) (memory the caller guarantees: blocks, saved
  // registers).
  static bool word_span(uintptr_t a, uintptr_t b, const uintptr_t** p, size_t* count) {
    uintptr_t first = align_up(a, kWord), last = align_down(b, kWord);
    if (first >= last || b < a) return false;
    *p = reinterpret_cast<const uintptr_t*>(first);
    *count = (last - first) / kWord;
    return true;
  }

  // Scans root memory [a, b), which the maps snapshot shows readable. Through the bounce buffer
  // unless `direct`: a page that cannot be read is skipped.
  void scan_root(uintptr_t a, uintptr_t b) {
    a = align_up(a, kWord);
    b = align_down(b, kWord);
    if (a >= b) return;
    if (direct) {
      mark_words(reinterpret_cast<const uintptr_t*>(a), (b - a) / kWord);
      st->root_bytes += b - a;
      return;
    }
    while (a < b) {
      size_t len = b - a < kBounceBytes ? b - a : kBounceBytes;
      iovec local{bounce, len};
      iovec remote{reinterpret_cast<void*>(a), len};
      ssize_t got = process_vm_readv(pid, &local, 1, &remote, 1, 0);
      if (got < 0 && errno == EINTR) continue;
      size_t whole = got > 0 ? align_down(static_cast<size_t>(got), kWord) : 0;
      if (whole == 0) {
        a = align_up(a + 1, os::page_size());  // unreadable page: skip it
        continue;
      }
      mark_words(reinterpret_cast<const uintptr_t*>(bounce), whole / kWord);
      st->root_bytes += whole;
      a += whole;
    }
  }

  // Scans [a, b) less the blocks in it.
  void scan_between_blocks(uintptr_t a, uintptr_t b) {
    for (size_t k = first_block_after(blocks, n, a); a < b; ++k) {
      if (k == n || blocks[k].start >= b) {
        scan_root(a, b);
        return;
      }
      if (blocks[k].start > a) scan_root(a, blocks[k].start);
      uintptr_t e = block_end(blocks[k]);
      if (e > a) a = e;
    }
  }

  // Scans one root region less the skips and the blocks in it.
  void scan_region(uintptr_t a, uintptr_t b) {
    for (size_t k = first_range_after(skips, nskips, a); a < b; ++k) {
      if (k == nskips || skips[k].lo >= b) {
        scan_between_blocks(a, b);
        return;
      }
      if (skips[k].lo > a) scan_between_blocks(a, skips[k].lo);
      if (skips[k].hi > a) a = skips[k].hi;
    }
  }

  // Pops and scans reached blocks until the stack is empty.
  void drain() {
    while (top > 0) {
      const ScanBlock& b = blocks[stack[--top]];
      const uintptr_t* p;
      size_t count;
      if (!word_span(b.start, b.start + b.size, &p, &count)) continue;
      mark_words(p, count);
      st->heap_bytes += count * kWord;
    }
  }

  // Step 4. Every block still unreached is leaked. Walking them in address order, each one not
  // yet classified becomes `direct` and is flooded: every unreached block it reaches (but itself)
  // becomes `indirect` and is flooded in turn; a `direct` block met on the way becomes
  // `indirect` without being flooded again (its flood already covered what it reaches), and an
  // `indirect` one is never expanded twice. Each block is pushed at most once, so this is
  // O(blocks + pointers). A chain D->E gives D direct and E indirect whatever their order; a
  // cycle with no way in keeps its lowest block direct; D->A<->B gives D direct.
  PG_LEAK_NO_SANITIZE void classify() {
    for (size_t root = 0; root < n; ++root) {
      if (blocks[root].state != kUnreached) continue;
      blocks[root].state = kDirect;
      stack[top++] = root;
      while (top > 0) {
        const ScanBlock& b = blocks[stack[--top]];
        const uintptr_t* p;
        size_t count;
        if (!word_span(b.start, b.start + b.size, &p, &count)) continue;
        for (size_t k = 0; k < count; ++k) {
          size_t i = find(p[k]);
          if (i == kNone || i == root) continue;
          if (blocks[i].state == kUnreached) {
            blocks[i].state = kIndirect;
            stack[top++] = i;
          } else if (blocks[i].state == kDirect) {
            blocks[i].state = kIndirect;
          }
        }
      }
    }
  }
};

// A stack whose part below the stack pointer is not scanned.
struct StackTop {
  uintptr_t sp;
  uintptr_t red_zone;
  bool current;  // the scanning thread: its own frames are below sp, so always skipped
};

// Steps 2 to 4, with the world stopped. false (states untouched) when /proc/self/maps cannot be
// read or memory is refused.
bool scan_stopped(Work* work, const World& w, ScanBlock* blocks, size_t n, const Range* exclude,
                  size_t n_exclude, uintptr_t my_sp, ScanStats* st) {
  char* bounce = static_cast<char*>(work->map(kBounceBytes));
  if (bounce == nullptr) return false;
  // Is process_vm_readv allowed here (seccomp may refuse it)?
  int pid = os::process_id();
  uintptr_t probe_src = 1, probe_dst = 0;
  iovec pl{&probe_dst, sizeof probe_dst}, pr{&probe_src, sizeof probe_src};
  bool direct = process_vm_readv(pid, &pl, 1, &pr, 1, 0) != sizeof probe_dst || probe_dst != 1;

  char* text;
  size_t len;
  if (!read_maps(work, &text, &len)) return false;
  // From here on nothing of ours is unmapped until the end: the snapshot must stay true.
  size_t lines = 1;
  for (size_t i = 0; i < len; ++i) lines += text[i] == '\n';
  auto* regions = static_cast<Region*>(work->map(lines * sizeof(Region)));
  size_t nstacks_cap = w.count + 1;
  auto* stacks = static_cast<StackTop*>(work->map(nstacks_cap * sizeof(StackTop)));
  size_t skips_cap = n_exclude + 1 + kMaxWork + nstacks_cap;
  auto* skips = static_cast<Range*>(work->map(skips_cap * sizeof(Range)));
  auto* stack = static_cast<size_t*>(work->map(n * sizeof(size_t), true));
  if (regions == nullptr || stacks == nullptr || skips == nullptr || stack == nullptr) {
    return false;
  }
  size_t nregions = parse_maps(text, len, regions, lines);

  // The skips that are not stacks: the caller's, the block array, the work memory (all of it:
  // what was mapped after the snapshot is not in it anyway).
  size_t nskips = 0;
  for (size_t i = 0; i < n_exclude; ++i) skips[nskips++] = exclude[i];
  uintptr_t array = reinterpret_cast<uintptr_t>(blocks);
  skips[nskips++] = Range{array, array + n * sizeof(ScanBlock)};
  for (size_t i = 0; i < work->count; ++i) skips[nskips++] = work->ranges[i];
  nskips = merge_ranges(skips, nskips);

  // The stacks scanned from their stack pointer up: ours, and those of the stopped threads.
  size_t nstacks = 0;
  stacks[nstacks++] = StackTop{my_sp, 0, true};
  for (size_t i = 0; i < w.count; ++i) {
    if (w.slots[i].state == kStopped) stacks[nstacks++] = StackTop{w.slots[i].sp, kRedZone, false};
  }
  std::sort(stacks, stacks + nstacks,
            [](const StackTop& a, const StackTop& b) { return a.sp < b.sp; });

  uintptr_t lo = blocks[0].start, hi = block_end(blocks[n - 1]);
  Scanner s{blocks, n, lo, hi, stack, 0, skips, nskips, bounce, direct, pid, st};

  // Below each stack pointer, the skip runs down to the bottom of its stretch of free root
  // memory: the start of its region, or the end of the block or skip just below. A stack
  // pointer inside a block (a stack allocated with malloc) makes the rest of that block a root.
  // When another thread's stack pointer lies in the same stretch, the stacks share a mapping
  // and nothing is skipped for the upper one, since its skip would hide the lower one's live
  // frames; but the scanning thread always skips the frames of the scan (kOwnFrames).
  size_t nstack_skips = 0;
  Range* stack_skips = skips + nskips;
  for (size_t k = 0; k < nstacks; ++k) {
    const StackTop& t = stacks[k];
    uintptr_t from = t.sp - t.red_zone;
    auto r = std::upper_bound(regions, regions + nregions, t.sp,
                              [](uintptr_t v, const Region& x) { return v < x.lo; });
    if (r == regions || t.sp >= (r - 1)->hi) continue;  // not in a root region
    uintptr_t floor = (r - 1)->lo;
    size_t b = first_block_after(blocks, n, t.sp);
    if (b < n && blocks[b].start <= t.sp) {
      uintptr_t e = block_end(blocks[b]);
      s.scan_root(from > blocks[b].start ? from : blocks[b].start, e);
      ++st->regions;
      continue;
    }
    if (b > 0 && block_end(blocks[b - 1]) > floor) floor = block_end(blocks[b - 1]);
    size_t x = first_range_after(skips, nskips, t.sp);
    if (x < nskips && skips[x].lo <= t.sp) continue;  // inside a skip: nothing to do
    if (x > 0 && skips[x - 1].hi > floor) floor = skips[x - 1].hi;
    if (k > 0 && stacks[k - 1].sp >= floor) {
      if (!t.current) continue;
      if (t.sp > kOwnFrames && t.sp - kOwnFrames > floor) floor = t.sp - kOwnFrames;
    }
    if (from > floor && from <= t.sp) stack_skips[nstack_skips++] = Range{floor, from};
  }
  nskips = merge_ranges(skips, nskips + nstack_skips);
  s.nskips = nskips;

  // Step 3: the roots, then what they reach.
  for (size_t i = 0; i < nregions; ++i) {
    const Region& r = regions[i];
    uintptr_t end = direct ? direct_end(r) : r.hi;
    if (end <= r.lo) continue;
    s.scan_region(r.lo, end);
    ++st->regions;
  }
  for (size_t i = 0; i < w.count; ++i) {
    const ThreadSlot& t = w.slots[i];
    if (t.state != kStopped) continue;
    s.mark_words(t.words, t.nwords);
    st->root_bytes += t.nwords * kWord;
  }
  s.drain();

  s.classify();
  return true;
}

bool scan_impl(ScanBlock* blocks, size_t n, const Range* exclude, size_t n_exclude,
               ScanStats* stats, uintptr_t my_sp) {
  ScanStats st{};
  if (n == 0) {
    st.threads = 1;
    if (stats != nullptr) *stats = st;
    return true;
  }
  LockGuard lock(g_scan_lock);
  Work work;
  World world;
  bool ok = stop_world(&work, &world, &st);
  if (ok) ok = scan_stopped(&work, world, blocks, n, exclude, n_exclude, my_sp, &st);
  resume_world(&world);
  work.release_all();
  if (ok && stats != nullptr) *stats = st;
  return ok;
}

struct ScanArgs {
  ScanBlock* blocks;
  size_t n;
  const Range* exclude;
  size_t n_exclude;
  ScanStats* stats;
};

int scan_from_top(void* ctx, uintptr_t top) {
  const ScanArgs* a = static_cast<const ScanArgs*>(ctx);
  return scan_impl(a->blocks, a->n, a->exclude, a->n_exclude, a->stats, top) ? 1 : 0;
}

}  // namespace

bool leak_scan(ScanBlock* blocks, size_t n, const Range* exclude, size_t n_exclude,
               ScanStats* stats, uintptr_t top) {
  return scan_impl(blocks, n, exclude, n_exclude, stats, top);
}

bool leak_scan(ScanBlock* blocks, size_t n, const Range* exclude, size_t n_exclude,
               ScanStats* stats) {
  ScanArgs args{blocks, n, exclude, n_exclude, stats};
  return call_with_stack_top(scan_from_top, &args) != 0;
}

}  // namespace pg::leak

#if defined(__x86_64__)
// The callee-saved registers (rbp, rbx, r12-r15) pushed, then a zero so that the call below is
// 16-byte aligned: `top` is the stack pointer after those pushes, and nothing at or above it was
// written by anything but these instructions and the caller. The frame keeps rbp as its frame
// pointer (stack walks through fn still work); fn preserves the registers, so `leave` is enough.
extern "C" __attribute__((visibility("hidden"))) int pg_leak_call_with_top(int (*fn)(void* ctx,
                                                                                     uintptr_t top),
                                                                           void* ctx);
asm(R"(
  .text
  .p2align 4
  .globl pg_leak_call_with_top
  .hidden pg_leak_call_with_top
  .type pg_leak_call_with_top, @function
pg_leak_call_with_top:
  .cfi_startproc
  endbr64
  pushq %rbp
  .cfi_def_cfa_offset 16
  .cfi_offset %rbp, -16
  movq %rsp, %rbp
  .cfi_def_cfa_register %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  pushq $0
  movq %rdi, %rax
  movq %rsi, %rdi
  movq %rsp, %rsi
  call *%rax
  leave
  .cfi_def_cfa %rsp, 8
  ret
  .cfi_endproc
  .size pg_leak_call_with_top, .-pg_leak_call_with_top
)");

int pg::leak::call_with_stack_top(int (*fn)(void* ctx, uintptr_t top), void* ctx) {
  return pg_leak_call_with_top(fn, ctx);
}
#else
// __builtin_unwind_init makes this frame save every callee-saved register, so whatever the
// callers keep in them is in memory at or above the stack pointer read here.
__attribute__((noinline)) int pg::leak::call_with_stack_top(int (*fn)(void* ctx, uintptr_t top),
                                                            void* ctx) {
  __builtin_unwind_init();
  uintptr_t sp;
#if defined(__aarch64__)
  asm volatile("mov %0, sp" : "=r"(sp));
#else
  sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
#endif
  int r = fn(ctx, sp);
  asm volatile("" ::: "memory");  // no tail call: this frame must outlive fn
  return r;
}
#endif
