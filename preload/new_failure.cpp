// The failure path of operator new through the C++ runtime the program has loaded (libstdc++, or
// LLVM's libc++), found by name when a failure happens. libpoolguard.so links no C++ runtime: a
// C program loads no libstdc++.so (nor its 72 KiB exception pool) because of it, and a C++
// program's std::set_new_handler and catch (std::bad_alloc&) are served by the very runtime that
// set and catches them, as with glibc's malloc.
#include "preload/new_failure.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "base/report.h"
#include "front/alloc.h"

namespace pg {

namespace {

// A symbol of the C++ runtime the program has loaded, or null when it has none. dlopen with
// RTLD_NOLOAD only finds a library already loaded (by the program or by a library it dlopen'ed),
// and dlsym on its handle finds that library's own definition, not poolguard's.
void* runtime_symbol(const char* name) {
  for (const char* lib : {"libstdc++.so.6", "libc++.so.1"}) {
    void* handle = dlopen(lib, RTLD_LAZY | RTLD_NOLOAD);
    if (handle == nullptr) continue;
    void* sym = dlsym(handle, name);
    if (sym != nullptr) return sym;  // the handle stays open: the library is loaded anyway
  }
  return nullptr;
}

// Looked up at the first failure and kept: a runtime, once loaded by the program, stays.
void* cached_symbol(std::atomic<void*>* slot, const char* name) {
  void* sym = slot->load(std::memory_order_acquire);
  if (sym == nullptr) {
    sym = runtime_symbol(name);
    if (sym != nullptr) slot->store(sym, std::memory_order_release);
  }
  return sym;
}

std::new_handler program_new_handler() {
  static std::atomic<void*> slot{nullptr};
  void* sym = cached_symbol(&slot, "_ZSt15get_new_handlerv");  // std::get_new_handler()
  return sym == nullptr ? nullptr : reinterpret_cast<std::new_handler (*)()>(sym)();
}

[[noreturn]] void throw_bad_alloc() {
  static std::atomic<void*> slot{nullptr};
  void* sym = cached_symbol(&slot, "_ZSt17__throw_bad_allocv");  // std::__throw_bad_alloc()
  if (sym != nullptr) reinterpret_cast<void (*)()>(sym)();
  // operator new was called without a C++ runtime in the process: nothing could catch anyway.
  report_warning("operator new failed and no C++ runtime is loaded to throw std::bad_alloc");
  abort();
}

}  // namespace

void* new_failed(size_t size, size_t alignment) {
  for (;;) {
    std::new_handler handler = program_new_handler();
    if (handler == nullptr) throw_bad_alloc();
    handler();
    void* p = alignment ? memalign_impl(alignment, size) : malloc_impl(size);
    if (p != nullptr) return p;
  }
}

void* new_nothrow_failed(size_t size, size_t alignment) noexcept {
  // A new_handler may throw std::bad_alloc, which the nothrow form must turn into null: that takes
  // a catch, and so the runtime's personality routine. The runtime's own nothrow operator new is
  // exactly "call operator new in a try block" (C++ [new.delete.single]); the operator new it calls
  // is poolguard's, which retries and throws as above.
  using NothrowNew = void* (*)(size_t, const std::nothrow_t&);
  using NothrowNewAligned = void* (*)(size_t, std::align_val_t, const std::nothrow_t&);
  static std::atomic<void*> plain{nullptr}, aligned{nullptr};
  if (program_new_handler() == nullptr) return nullptr;  // nothing to call: no retry, no throw
  if (alignment == 0) {
    void* sym = cached_symbol(&plain, "_ZnwmRKSt9nothrow_t");
    return sym == nullptr ? nullptr : reinterpret_cast<NothrowNew>(sym)(size, std::nothrow_t{});
  }
  void* sym = cached_symbol(&aligned, "_ZnwmSt11align_val_tRKSt9nothrow_t");
  return sym == nullptr ? nullptr
                        : reinterpret_cast<NothrowNewAligned>(sym)(
                              size, static_cast<std::align_val_t>(alignment), std::nothrow_t{});
}

}  // namespace pg
