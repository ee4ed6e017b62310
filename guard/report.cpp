// Reports of the guarded allocator, written with base/report.h's ErrorReport. They may be written
// from the SIGSEGV handler, so: write(2) only, from small stack buffers, no malloc. Frames found
// at free() or exit are named in full (function and file:line, through an addr2line child);
// those of a fault report only from the modules' symbol tables, since no child may be started in
// a signal handler: the report then lists each module's build-id, and `poolguard symbolize`
// adds the lines.
//
//   poolguard: ERROR: heap-buffer-overflow pid=7 tid=7: WRITE at 0x7f..20: found by free()
//     0x7f..20 is 0 bytes after the 32-byte block [0x7f..00, 0x7f..20) (redzones)
//     found here by thread 7:
//       #0 0x55..d5 in main (/tmp/prog+0x11d5) /src/prog.c:9
//     allocated by thread 7:
//       #0 ...
//     bytes around 0x7f..20 (fd: redzone, dd: freed):
//     => 0x7f..20: 41 fd fd ...
//   poolguard: aborting (POOLGUARD_ON_ERROR=report to continue)
#include "base/report.h"
#include "base/depot.h"
#include "base/format.h"
#include "base/log.h"
#include "base/os.h"
#include "base/unwind.h"
#include "guard/internal.h"
#include "pool/shared.h"

namespace pg::guard {

namespace {

void depot_stack(ErrorReport& r, const char* title, uint32_t id, int tid) {
  uintptr_t pcs[kDepotMaxFrames];
  int n = depot_get(id, pcs, kDepotMaxFrames);
  r.stack(title, tid, pcs, n, false);
}

// The stack of the faulting thread, walked from the signal's context: frame 0 is the faulting
// instruction itself.
void fault_stack(ErrorReport& r, const void* context) {
  uintptr_t pcs[kDepotMaxFrames];
  int n = unwind_context(context, pcs, kDepotMaxFrames);
  r.stack("the access", current_tid(), pcs, n, true);
}

void location_line(ErrorReport& r, const Finding& f) {
  ErrorReport::Line& o = r.line();
  o.str("  ").hex(f.addr);
  const Block* b = f.block;
  if (b == nullptr) {
    o.str(" is in no block poolguard knows");
    r.end_line();
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
  o.str(")");
  r.end_line();
}

void hex_dump(ErrorReport& r, const Finding& f) {
  ErrorReport::Line& o = r.line();
  if (f.dump_hi <= f.dump_lo) {
    if (f.block != nullptr && f.block->kind == kKindPage && f.block->state != kLive) {
      o.str("  (no bytes shown: the pages of a freed block are inaccessible)");
      r.end_line();
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
  o.str("  bytes around ").hex(center).str(" (fd: redzone, dd: freed, .. : not shown):");
  r.end_line();
  for (uintptr_t row = lo; row < hi; row += 16) {
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
    r.end_line();
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
  ErrorCount count = f.kind == ErrorKind::kDoubleFree    ? ErrorCount::kDoubleFree
                     : f.kind == ErrorKind::kInvalidFree ? ErrorCount::kInvalidFree
                                                         : ErrorCount::kCorruption;
  ErrorReport r(count, error_kind_name(f.kind));
  if (f.fault_context != nullptr) r.raw_frames();
  ErrorReport::Line& o = r.line();
  if (f.access == Access::kRead) o.str("READ ");
  if (f.access == Access::kWrite) o.str("WRITE ");
  o.str("at ").hex(f.addr).str(": ").str(f.what);
  r.end_line();
  location_line(r, f);
  if (f.fault_context != nullptr) {
    fault_stack(r, f.fault_context);
  } else if (f.now_stack != 0) {
    depot_stack(r, "found here", f.now_stack, current_tid());
  }
  if (f.block != nullptr) {
    depot_stack(r, "allocated", f.block->alloc_stack, f.block->alloc_tid);
    if (f.block->free_stack != 0) {
      depot_stack(r, "freed", f.block->free_stack, f.block->free_tid);
    }
  }
  r.modules();
  hex_dump(r, f);
  r.finish(fatal);
}

uint64_t errors_reported() {
  return __atomic_load_n(&shared_globals().guard_errors, __ATOMIC_RELAXED);
}

}  // namespace pg::guard
