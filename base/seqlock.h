// The writer's half of the seqlocks that guard entries of the stats and profile segments (an
// arena map entry, base/segment.h; a profile entry, base/profile_segment.h): `seq` is odd while
// the entry is being rewritten.
#pragma once

#include <cstdint>

namespace pg {

// Opens a seqlock write: stores the odd `seq` and keeps every later store (the figures) from
// becoming visible before it. A fence does that; TSan does not model fences (GCC warns), so the
// TSan build gets a sequentially consistent store instead (its readers are in other processes,
// which TSan does not see).
inline void seq_begin(uint64_t* seq, uint64_t odd) {
#if defined(__SANITIZE_THREAD__)
  __atomic_store_n(seq, odd, __ATOMIC_SEQ_CST);
#else
  __atomic_store_n(seq, odd, __ATOMIC_RELAXED);
  __atomic_thread_fence(__ATOMIC_RELEASE);
#endif
}

// Closes it: the figures become visible with the even `seq`.
inline void seq_end(uint64_t* seq, uint64_t even) {
  __atomic_store_n(seq, even, __ATOMIC_RELEASE);
}

}  // namespace pg
