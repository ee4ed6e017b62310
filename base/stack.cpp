// Stack capture (base/stack.h): the caller's return addresses through the unwinder, poolguard's
// own frames dropped.
#include "base/stack.h"

#include "base/unwind.h"

#include <dlfcn.h>

namespace pg {

namespace {
// Base address of the module holding `pc`, or 0.
uintptr_t module_of(uintptr_t pc) {
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(pc), &info) == 0) return 0;
  return reinterpret_cast<uintptr_t>(info.dli_fbase);
}
}  // namespace

void capture_stack(StackTrace* out, int skip) {
  uintptr_t frames[kMaxFrames + 16];
  int n = unwind_here(frames, kMaxFrames + 16);
  // Drop the leading frames that are poolguard's own (when it is its own module, as under
  // LD_PRELOAD); when linked into the program, drop `skip` frames instead.
  int first = 0;
  uintptr_t self = module_of(reinterpret_cast<uintptr_t>(&capture_stack));
  while (first < n && self != 0 && module_of(frames[first]) == self) {
    ++first;
  }
  if (first == n || first == 0) first = skip < n ? skip : n;
  out->depth = 0;
  for (int i = first; i < n && out->depth < kMaxFrames; ++i) {
    out->pc[out->depth++] = frames[i];
  }
}

void append_stack_json(TextBuffer<4096>& out, const StackTrace& trace) {
  out.chr('[');
  for (int i = 0; i < trace.depth; ++i) {
    if (i) out.chr(',');
    uintptr_t pc = trace.pc[i];
    out.str("{\"pc\":\"").hex(pc).chr('"');
    Dl_info info;
    // pc - 1: a return address may point just past the call, into the next function.
    if (dladdr(reinterpret_cast<void*>(pc - 1), &info) != 0) {
      if (info.dli_sname != nullptr) out.str(",\"fn\":").json_str(info.dli_sname);
      if (info.dli_fname != nullptr) {
        out.str(",\"module\":").json_str(info.dli_fname);
        out.str(",\"offset\":\"").hex(pc - reinterpret_cast<uintptr_t>(info.dli_fbase)).chr('"');
      }
    }
    out.chr('}');
  }
  out.chr(']');
}

}  // namespace pg
