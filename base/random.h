// Cheap pseudo-random steps for decisions that need no more than that (pool keys, sampling
// intervals); each caller keeps its own state. os::random64() is the system's entropy, for seeds.
// Each steps the caller's state in place and is always inlined: the caller compiles as if it had
// the steps written out.
#pragma once

#include <cstdint>

#include "base/compiler.h"

namespace pg {

// One step of Marsaglia's xorshift64 (shifts 13, 7, 17) on the state x; the new state is also the
// output. A nonzero state never becomes zero.
PG_ALWAYS_INLINE uint64_t xorshift64(uint64_t& x) {
  x ^= x << 13;
  x ^= x >> 7;
  x ^= x << 17;
  return x;
}

// One step of Vigna's xorshift64* on the state x (shifts 12, 25, 27); the output is the new state
// times a constant.
PG_ALWAYS_INLINE uint64_t xorshift64star(uint64_t& x) {
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  return x * 0x2545F4914F6CDD1Dull;
}

}  // namespace pg
