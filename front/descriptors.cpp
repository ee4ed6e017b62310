// The descriptor calls of front/descriptors.h: the unwinder is told first, then glibc's own
// function runs (__close and __dup2 are exported under those names; the others are found once
// with dlsym, and made as plain system calls if they cannot be).
#include "front/descriptors.h"

#include <dlfcn.h>
#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <climits>

#include "base/unwind.h"

extern "C" int __close(int fd);
extern "C" int __dup2(int from, int to);

namespace pg {

namespace {

// glibc's function `name` (the next definition after this library's), looked up once.
template <typename Fn>
Fn next_function(std::atomic<Fn>& cache, const char* name) {
  Fn f = cache.load(std::memory_order_acquire);
  if (f == nullptr) {
    f = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
    if (f != nullptr) cache.store(f, std::memory_order_release);
  }
  return f;
}

std::atomic<int (*)(unsigned, unsigned, int)> g_close_range{nullptr};
std::atomic<void (*)(int)> g_closefrom{nullptr};
std::atomic<int (*)(int, int, int)> g_dup3{nullptr};

unsigned fd_bound(int fd) {
  return fd < 0 ? 0 : static_cast<unsigned>(fd);
}

}  // namespace

int close_impl(int fd) {
  if (fd >= 0) unwind_descriptors_closing(fd_bound(fd), fd_bound(fd));
  return __close(fd);
}

int close_range_impl(unsigned lo, unsigned hi, int flags) {
  // CLOSE_RANGE_CLOEXEC only marks them: they stay open (until an exec, which ends the process's
  // image and poolguard's with it).
  if ((flags & 4 /* CLOSE_RANGE_CLOEXEC */) == 0 && lo <= hi) unwind_descriptors_closing(lo, hi);
  if (auto f = next_function(g_close_range, "close_range")) return f(lo, hi, flags);
  return static_cast<int>(syscall(SYS_close_range, lo, hi, flags));
}

void closefrom_impl(int lo) {
  unwind_descriptors_closing(fd_bound(lo), UINT_MAX);
  if (auto f = next_function(g_closefrom, "closefrom")) return f(lo);
  syscall(SYS_close_range, fd_bound(lo), UINT_MAX, 0);
}

int dup2_impl(int from, int to) {
  if (to >= 0 && from != to) unwind_descriptors_closing(fd_bound(to), fd_bound(to));
  return __dup2(from, to);
}

int dup3_impl(int from, int to, int flags) {
  if (to >= 0 && from != to) unwind_descriptors_closing(fd_bound(to), fd_bound(to));
  if (auto f = next_function(g_dup3, "dup3")) return f(from, to, flags);
  return static_cast<int>(syscall(SYS_dup3, from, to, flags));
}

}  // namespace pg
