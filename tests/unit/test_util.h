// Helpers shared by the unit tests: snapshots, per-block byte patterns and pool geometry.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>

#include "front/alloc.h"
#include "front/introspect.h"
#include "pool/config.h"

namespace pg::test {

inline Snapshot snap() {
  Snapshot s{};
  take_snapshot(&s);
  return s;
}

// Blocks of class `cls` that fit in one pool (they start kPoolLead bytes into it).
constexpr size_t pool_capacity(size_t cls) {
  return (class_pool_bytes(cls) - kPoolLead) / class_size(cls);
}

inline bool is_aligned(const void* p, size_t a) {
  return (reinterpret_cast<uintptr_t>(p) & (a - 1)) == 0;
}

// A byte pattern that differs between blocks (by `seed`) and along a block (by offset), so that
// a block overlapping another or a stale copy is noticed.
inline uint8_t pattern_byte(uint64_t seed, size_t i) {
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + i;
  return static_cast<uint8_t>(x ^ (x >> 11) ^ (seed >> 7));
}

inline void fill(void* p, size_t n, uint64_t seed) {
  auto* b = static_cast<uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) b[i] = pattern_byte(seed, i);
}

// Index of the first byte that does not match, or n when all match.
inline size_t first_mismatch(const void* p, size_t n, uint64_t seed) {
  auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != pattern_byte(seed, i)) return i;
  }
  return n;
}

inline bool all_bytes(const void* p, size_t n, uint8_t v) {
  auto* b = static_cast<const uint8_t*>(p);
  for (size_t i = 0; i < n; ++i) {
    if (b[i] != v) return false;
  }
  return true;
}

// Sum of live blocks over every class.
inline uint64_t live_small(const Snapshot& s) {
  uint64_t n = 0;
  for (const ClassSnapshot& c : s.classes) n += c.live_blocks;
  return n;
}

// Sets an error mode for the lifetime of the object and restores the previous one after.
class ScopedErrorMode {
 public:
  explicit ScopedErrorMode(ErrorMode m) : old_(error_mode()) { set_error_mode(m); }
  ~ScopedErrorMode() { set_error_mode(old_); }
  ScopedErrorMode(const ScopedErrorMode&) = delete;
  ScopedErrorMode& operator=(const ScopedErrorMode&) = delete;

 private:
  ErrorMode old_;
};

}  // namespace pg::test
