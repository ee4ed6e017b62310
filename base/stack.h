// Stack capture, the one way poolguard records "where was the program": the caller's return
// addresses through the unwinder (base/unwind.h), poolguard's own frames dropped; and the modules'
// symbol tables (base/symbolize.h) to name frames in JSON. Neither allocates through malloc, so
// both work with the heap exhausted.
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

// The caller's return addresses, innermost first, into out[0..max); how many. Frames are kept from
// the first one outside poolguard's own code outwards. When poolguard is linked into the program
// itself (unit tests), its code cannot be told from the program's, so the `skip` innermost frames
// are dropped instead. 0 frames when called re-entrantly on the same thread (a capture that
// allocates), when stacks cannot be walked safely (base/unwind.h), and in ThreadSanitizer builds.
int capture_frames(uintptr_t* out, int max, int skip);

// capture_frames into a StackTrace (`skip` counts from this function's caller's frame, as there).
void capture_stack(StackTrace* out, int skip);

// Appends the trace as a JSON array of frames:
//   [{"pc":"0x..","fn":"name","module":"/path/lib.so","offset":"0x.."}, ...]
// ("fn" is omitted when no symbol covers the address; "offset" is the return address's, as
// `poolguard symbolize` reads it).
void append_stack_json(TextBuffer<4096>& out, const StackTrace& trace);

}  // namespace pg
