// The failure path of the C++ operators new (preload/shim.cpp), which alone touches a C++ runtime:
// the program's own (see new_failure.cpp), never one of libpoolguard.so's.
#pragma once

#include <cstddef>

namespace pg {

// operator new(size[, alignment]) after an allocation failed: calls the program's new_handler and
// retries while there is one, then throws the program's std::bad_alloc. alignment 0: malloc's.
void* new_failed(size_t size, size_t alignment);
// The nothrow forms after a failure: the same, but null where the throwing form would throw
// (or where the new_handler throws).
void* new_nothrow_failed(size_t size, size_t alignment) noexcept;

}  // namespace pg
