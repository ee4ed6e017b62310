// Rounding addresses and sizes to a power-of-two alignment.
#pragma once

#include <cstdint>

namespace pg {

// v rounded up (down) to a multiple of a, a power of two.
constexpr uintptr_t align_up(uintptr_t v, uintptr_t a) {
  return (v + a - 1) & ~(a - 1);
}
constexpr uintptr_t align_down(uintptr_t v, uintptr_t a) {
  return v & ~(a - 1);
}

}  // namespace pg
