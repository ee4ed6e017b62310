// libpoolguard.so's exported malloc family: one-line forwards to the core (front/alloc.h), which
// holds all the semantics. The C++ operators differ only in how they fail.
#include <errno.h>
#include <malloc.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstddef>
#include <new>

#include "front/alloc.h"
#include "front/descriptors.h"
#include "preload/new_failure.h"

#define PG_EXPORT extern "C" __attribute__((visibility("default")))
#define PG_EXPORT_CXX __attribute__((visibility("default")))

// The resource limits: a program that lowers RLIMIT_AS must not find the arena reservation in
// its way (front/alloc.h). All four names are
// needed to see every call (glibc's setrlimit reaches its own prlimit64 without the PLT).
PG_EXPORT int setrlimit(__rlimit_resource_t resource, const struct rlimit* limit) noexcept {
  return pg::prlimit_impl(0, resource, limit, nullptr);
}
PG_EXPORT int setrlimit64(__rlimit_resource_t resource, const struct rlimit64* limit) noexcept {
  return pg::prlimit_impl(0, resource, limit, nullptr);
}
PG_EXPORT int prlimit(__pid_t pid, enum __rlimit_resource resource, const struct rlimit* limit,
                      struct rlimit* old) noexcept {
  return pg::prlimit_impl(pid, resource, limit, old);
}
PG_EXPORT int prlimit64(__pid_t pid, enum __rlimit_resource resource, const struct rlimit64* limit,
                        struct rlimit64* old) noexcept {
  return pg::prlimit_impl(pid, resource, limit, old);
}

// Descriptors: libunwind's pipe (stack walks in guard, leak and profile modes) must not be
// closed or replaced behind poolguard's back (front/descriptors.h).
PG_EXPORT int close(int fd) {
  return pg::close_impl(fd);
}
PG_EXPORT int close_range(unsigned int lo, unsigned int hi, int flags) noexcept {
  return pg::close_range_impl(lo, hi, flags);
}
PG_EXPORT void closefrom(int lo) noexcept {
  pg::closefrom_impl(lo);
}
PG_EXPORT int dup2(int from, int to) noexcept {
  return pg::dup2_impl(from, to);
}
PG_EXPORT int dup3(int from, int to, int flags) noexcept {
  return pg::dup3_impl(from, to, flags);
}

PG_EXPORT void* malloc(size_t size) {
  return pg::malloc_impl(size);
}
PG_EXPORT void free(void* p) {
  pg::free_impl(p);
}
PG_EXPORT void cfree(void* p) {
  pg::free_impl(p);
}
PG_EXPORT void* calloc(size_t n, size_t size) {
  return pg::calloc_impl(n, size);
}
PG_EXPORT void* realloc(void* p, size_t size) {
  return pg::realloc_impl(p, size);
}
PG_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  return pg::reallocarray_impl(p, n, size);
}
PG_EXPORT void* memalign(size_t alignment, size_t size) {
  return pg::memalign_impl(alignment, size);
}
PG_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  return pg::posix_memalign_impl(out, alignment, size);
}
PG_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  return pg::aligned_alloc_impl(alignment, size);
}
PG_EXPORT void* valloc(size_t size) {
  return pg::valloc_impl(size);
}
PG_EXPORT void* pvalloc(size_t size) {
  return pg::pvalloc_impl(size);
}
PG_EXPORT size_t malloc_usable_size(void* p) {
  return pg::usable_size_impl(p);
}

namespace {

// operator new: the fast path here, the new_handler and the throw (or null) in new_failure.cpp.
void* new_or_throw(size_t size, size_t alignment) {
  void* p = alignment ? pg::memalign_impl(alignment, size) : pg::malloc_impl(size);
  return p != nullptr ? p : pg::new_failed(size, alignment);
}

void* new_nothrow(size_t size, size_t alignment) noexcept {
  void* p = alignment ? pg::memalign_impl(alignment, size) : pg::malloc_impl(size);
  return p != nullptr ? p : pg::new_nothrow_failed(size, alignment);
}

}  // namespace

PG_EXPORT_CXX void* operator new(size_t n) {
  return new_or_throw(n, 0);
}
PG_EXPORT_CXX void* operator new[](size_t n) {
  return new_or_throw(n, 0);
}
PG_EXPORT_CXX void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n, 0);
}
PG_EXPORT_CXX void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return new_nothrow(n, 0);
}
PG_EXPORT_CXX void* operator new(size_t n, std::align_val_t a) {
  return new_or_throw(n, static_cast<size_t>(a));
}
PG_EXPORT_CXX void* operator new[](size_t n, std::align_val_t a) {
  return new_or_throw(n, static_cast<size_t>(a));
}
PG_EXPORT_CXX void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<size_t>(a));
}
PG_EXPORT_CXX void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return new_nothrow(n, static_cast<size_t>(a));
}
PG_EXPORT_CXX void operator delete(void* p) noexcept {
  pg::free_impl(p);
}
PG_EXPORT_CXX void operator delete[](void* p) noexcept {
  pg::free_impl(p);
}
PG_EXPORT_CXX void operator delete(void* p, const std::nothrow_t&) noexcept {
  pg::free_impl(p);
}
PG_EXPORT_CXX void operator delete[](void* p, const std::nothrow_t&) noexcept {
  pg::free_impl(p);
}
PG_EXPORT_CXX void operator delete(void* p, size_t n) noexcept {
  pg::free_sized_impl(p, n);
}
PG_EXPORT_CXX void operator delete[](void* p, size_t n) noexcept {
  pg::free_sized_impl(p, n);
}
PG_EXPORT_CXX void operator delete(void* p, std::align_val_t) noexcept {
  pg::free_impl(p);
}
PG_EXPORT_CXX void operator delete[](void* p, std::align_val_t) noexcept {
  pg::free_impl(p);
}
PG_EXPORT_CXX void operator delete(void* p, size_t n, std::align_val_t) noexcept {
  pg::free_sized_impl(p, n);
}
PG_EXPORT_CXX void operator delete[](void* p, size_t n, std::align_val_t) noexcept {
  pg::free_sized_impl(p, n);
}
PG_EXPORT_CXX void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  pg::free_impl(p);
}
PG_EXPORT_CXX void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  pg::free_impl(p);
}
