// Stack capture and symbolization for reports and logs: libunwind to walk the stack (it reads the
// unwind tables, so programs built without frame pointers work), dladdr to name frames. Neither
// allocates through malloc, so both are usable with the heap exhausted.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/format.h"

namespace pg {

inline constexpr int kMaxFrames = 32;

struct StackTrace {
  uintptr_t pc[kMaxFrames];
  int depth = 0;
};

// Captures the caller's stack, skipping `skip` innermost frames (poolguard's own).
void capture_stack(StackTrace* out, int skip);

// Appends the trace as a JSON array of frames:
//   [{"pc":"0x..","fn":"name","module":"/path/lib.so","offset":"0x.."}, ...]
// ("fn" is omitted when no exported symbol covers the address).
void append_stack_json(TextBuffer<4096>& out, const StackTrace& trace);

}  // namespace pg
