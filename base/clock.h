// Clock readings for timestamps, rate limits and deadlines: one clock_gettime call, no allocation,
// safe in a signal handler.
#pragma once

#include <time.h>

#include <cstdint>

namespace pg {

// Nanoseconds on `clock` (CLOCK_MONOTONIC, CLOCK_REALTIME, ...).
inline int64_t clock_ns(clockid_t clock) {
  struct timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
inline int64_t monotonic_ns() {
  return clock_ns(CLOCK_MONOTONIC);
}
inline int64_t monotonic_ms() {
  return monotonic_ns() / 1000000;
}

}  // namespace pg
