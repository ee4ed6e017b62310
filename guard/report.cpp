// Reports of the guarded allocator. They may be written from the SIGSEGV handler, so: write(2)
// only, from small stack buffers, no malloc; frames are named with dladdr when the report is
// written (`#0 0x... in fn (module+0xoff)`; `addr2line -e module 0xoff` gives the line).
//
//   poolguard: ERROR: heap-buffer-overflow pid=7 tid=7: WRITE at 0x7f..20: found by free()
//     0x7f..20 is 0 bytes after the 32-byte block [0x7f..00, 0x7f..20) (redzones)
//     found here (thread 7):
//       #0 0x55.. in main (/tmp/prog+0x11c9)
//     allocated by thread 7:
//       #0 ...
//     bytes around 0x7f..20 (fd: redzone, dd: freed):
//     => 0x7f..20: 41 fd fd ...
//   poolguard: aborting (POOLGUARD_ON_ERROR=report to continue)
#include <dlfcn.h>
#include <sched.h>
#include <stdlib.h>

#include <atomic>

#include "base/depot.h"
#include "base/format.h"
#include "base/log.h"
#include "base/os.h"
#include "base/report.h"
#include "base/unwind.h"
#include "guard/internal.h"
#include "pool/shared.h"

namespace pg::guard {

namespace {

using Line = TextBuffer<1024>;

std::atomic<int> g_report_owner{0};

// One report at a time, so that two threads' reports do not interleave. Re-entrant for the
// thread holding it (a fault while reporting).
class ReportLock {
 public:
  ReportLock() : tid_(current_tid()) {
    int expected = 0;
    while (!g_report_owner.compare_exchange_weak(expected, tid_, std::memory_order_acquire)) {
      if (expected == tid_) {
        nested_ = true;
        return;
      }
      expected = 0;
      sched_yield();
    }
  }
  ~ReportLock() {
    if (!nested_) g_report_owner.store(0, std::memory_order_release);
  }
  ReportLock(const ReportLock&) = delete;
  ReportLock& operator=(const ReportLock&) = delete;

 private:
  int tid_;
  bool nested_ = false;
};

void frame_line(int fd, int k, uintptr_t pc, bool exact) {
  Line o;
  o.str("    #").u64(static_cast<uint64_t>(k)).chr(' ').hex(pc);
  Dl_info info;
  // A return address may point just past the call, into the next function: look up pc - 1.
  if (dladdr(reinterpret_cast<void*>(exact ? pc : pc - 1), &info) != 0) {
    if (info.dli_sname != nullptr) o.str(" in ").str(info.dli_sname);
    if (info.dli_fname != nullptr) {
      o.str(" (").str(info.dli_fname).chr('+');
      o.hex(pc - reinterpret_cast<uintptr_t>(info.dli_fbase)).chr(')');
    }
  }
  o.chr('\n');
  o.flush(fd);
}

void title_line(int fd, const char* title, int tid) {
  Line o;
  o.str("  ").str(title);
  if (tid != 0) o.str(" by thread ").u64(static_cast<uint64_t>(tid));
  o.str(":\n");
  o.flush(fd);
}

void depot_stack(int fd, const char* title, uint32_t id, int tid) {
  title_line(fd, title, tid);
  uintptr_t pcs[kDepotMaxFrames];
  int n = depot_get(id, pcs, kDepotMaxFrames);
  if (n == 0) {
    Line o;
    o.str("    (no stack)\n");
    o.flush(fd);
  }
  for (int k = 0; k < n; ++k) frame_line(fd, k, pcs[k], false);
}

// The stack of the faulting thread, walked from the signal's context: frame 0 is the faulting
// instruction itself.
void fault_stack(int fd, const void* context) {
  title_line(fd, "the access", current_tid());
  uintptr_t pcs[kDepotMaxFrames];
  int n = unwind_context(context, pcs, kDepotMaxFrames);
  for (int k = 0; k < n; ++k) frame_line(fd, k, pcs[k], k == 0);
}

void location_line(int fd, const Finding& f) {
  Line o;
  o.str("  ").hex(f.addr);
  const Block* b = f.block;
  if (b == nullptr) {
    o.str(" is in no block poolguard knows\n");
    o.flush(fd);
    return;
  }
  uintptr_t end = b->user + b->size;
  uint64_t distance;
  const char* where;
  if (f.addr < b->user) {
    distance = b->user - f.addr;
    where = " before";
  } else if (f.addr >= end) {
    distance = f.addr - end;
    where = " after";
  } else {
    distance = f.addr - b->user;
    where = " inside";
  }
  o.str(" is ").u64(distance).str(distance == 1 ? " byte" : " bytes").str(where);
  o.str(" the ").u64(b->size).str("-byte block [").hex(b->user).str(", ").hex(end).str(")");
  o.str(b->kind == kKindPage ? " (page-guarded" : " (redzones");
  switch (b->state) {
    case kLive:
      break;
    case kSpanFree:
      o.str(", freed and out of the quarantine");
      break;
    default:
      if (b->free_stack != 0 || b->free_tid != 0) o.str(", freed");
      break;
  }
  o.str(")\n");
  o.flush(fd);
}

void hex_dump(int fd, const Finding& f) {
  if (f.dump_hi <= f.dump_lo) {
    if (f.block != nullptr && f.block->kind == kKindPage && f.block->state != kLive) {
      Line o;
      o.str("  (no bytes shown: the pages of a freed block are inaccessible)\n");
      o.flush(fd);
    }
    return;
  }
  uintptr_t center = f.addr;
  if (center < f.dump_lo) center = f.dump_lo;
  if (center >= f.dump_hi) center = f.dump_hi - 1;
  uintptr_t row0 = align_down(center, 16);
  uintptr_t lo = row0 >= 32 ? row0 - 32 : 0;
  uintptr_t hi = row0 + 48;
  if (lo < align_down(f.dump_lo, 16)) lo = align_down(f.dump_lo, 16);
  if (hi > f.dump_hi) hi = align_up(f.dump_hi, 16);
  {
    Line o;
    o.str("  bytes around ").hex(center).str(" (fd: redzone, dd: freed, .. : not shown):\n");
    o.flush(fd);
  }
  for (uintptr_t row = lo; row < hi; row += 16) {
    Line o;
    o.str(row == row0 ? "  => " : "     ").hex(row).str(":");
    for (uintptr_t a = row; a < row + 16; ++a) {
      o.chr(' ');
      if (a < f.dump_lo || a >= f.dump_hi) {
        o.str("..");
        continue;
      }
      unsigned v = *reinterpret_cast<const unsigned char*>(a);
      o.chr("0123456789abcdef"[v >> 4]).chr("0123456789abcdef"[v & 15]);
    }
    o.chr('\n');
    o.flush(fd);
  }
}

}  // namespace

const char* error_kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kOverflow:
      return "heap-buffer-overflow";
    case ErrorKind::kUnderflow:
      return "heap-buffer-underflow";
    case ErrorKind::kUseAfterFree:
      return "use-after-free";
    case ErrorKind::kDoubleFree:
      return "double-free";
    case ErrorKind::kInvalidFree:
      return "invalid-free";
  }
  return "error";
}

void report_finding(const Finding& f, bool fatal) {
  shared_add(shared_globals().guard_errors, 1);
  if (f.kind == ErrorKind::kDoubleFree) {
    count_double_free();
  } else if (f.kind == ErrorKind::kInvalidFree) {
    count_invalid_free();
  } else {
    count_corruption();
  }
  bool ends = fatal || error_mode() == ErrorMode::kAbort;
  ReportLock lock;
  LogOutput out;
  int fd = out.fd();
  {
    Line o;
    o.str("poolguard: ERROR: ").str(error_kind_name(f.kind));
    o.str(" pid=").u64(static_cast<uint64_t>(os::process_id()));
    o.str(" tid=").u64(static_cast<uint64_t>(current_tid())).str(": ");
    if (f.access == Access::kRead) o.str("READ ");
    if (f.access == Access::kWrite) o.str("WRITE ");
    o.str("at ").hex(f.addr).str(": ").str(f.what).chr('\n');
    o.flush(fd);
  }
  location_line(fd, f);
  if (f.fault_context != nullptr) {
    fault_stack(fd, f.fault_context);
  } else if (f.now_stack != 0) {
    depot_stack(fd, "found here", f.now_stack, current_tid());
  }
  if (f.block != nullptr) {
    depot_stack(fd, "allocated", f.block->alloc_stack, f.block->alloc_tid);
    if (f.block->free_stack != 0) {
      depot_stack(fd, "freed", f.block->free_stack, f.block->free_tid);
    }
  }
  hex_dump(fd, f);
  Line o;
  if (!ends) {
    o.str("poolguard: continuing (POOLGUARD_ON_ERROR=report); the block is left alone\n");
    o.flush(fd);
    return;
  }
  o.str(fatal ? "poolguard: aborting (a faulting access cannot be resumed)\n"
              : "poolguard: aborting (POOLGUARD_ON_ERROR=report to continue)\n");
  o.flush(fd);
  abort();
}

uint64_t errors_reported() {
  return __atomic_load_n(&shared_globals().guard_errors, __ATOMIC_RELAXED);
}

}  // namespace pg::guard
