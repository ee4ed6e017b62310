// Single-writer statistics counters: written only by their owner thread, read by other threads
// and by readers in other processes with relaxed loads.
#pragma once

#include <cstdint>

namespace pg {

// Adds n to v: one plain add on x86 (a single instruction, no lock prefix: there is one writer).
inline void counter_add(uint64_t& v, uint64_t n) {
#if defined(__x86_64__)
  asm volatile("addq %1, %0" : "+m"(v) : "r"(n));
#else
  __atomic_store_n(&v, __atomic_load_n(&v, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
#endif
}
inline void counter_inc(uint64_t& v) {
#if defined(__x86_64__)
  asm volatile("addq $1, %0" : "+m"(v));
#else
  counter_add(v, 1);
#endif
}
inline uint64_t counter_get(const uint64_t& v) {
  return __atomic_load_n(&v, __ATOMIC_RELAXED);
}

// A counter in a word of its own. add_fast() is the single-instruction add above, for the fast
// paths; add() is a relaxed load and store the compiler may schedule freely, for the slow ones.
struct Counter {
  uint64_t v = 0;
  void inc() { counter_inc(v); }
  void add_fast(uint64_t n) { counter_add(v, n); }
  void add(uint64_t n) {
    __atomic_store_n(&v, __atomic_load_n(&v, __ATOMIC_RELAXED) + n, __ATOMIC_RELAXED);
  }
  uint64_t get() const { return counter_get(v); }
};

}  // namespace pg
