// poolguard core API: the whole malloc family with its C semantics (errno, overflow checks, glibc's
// realloc rules), routing small requests to the pools and the rest to glibc.
//
// The preload shim (preload/shim.cpp) is one-line forwards to these functions; unit tests call them
// directly, without LD_PRELOAD. Nothing here allocates through malloc.
//
// Routing:
//   size <= kSmallMax                                  -> a block of a pool, inline (pool/heap.h)
//   size <= kPoolMax, alignment <= kMaxPoolAlign       -> a block of a pool (the medium tier,
//                                                         inline after the small test; aligned
//                                                         requests from alloc_aligned)
//   otherwise                                          -> glibc (__libc_malloc & co): its chunk
//                                                         as is, or with a checked header when
//                                                         over-aligned (large/large.h)
//   a sampled or tracked request (guard sampling,       -> guard/ or track/ (alloc.cpp,
//   POOLGUARD_PROFILE, POOLGUARD_LEAKS)                     sample_events)
//   free/realloc of a pointer poolguard did not hand out -> glibc's __libc_free / __libc_realloc
//
// free, realloc and malloc_usable_size of a pointer the fast paths did not settle ask one
// function who handed it out (owner_of in alloc.cpp: pools, unused range, guard, tracker, large
// path or glibc) and act on the answer.
#pragma once

#include <cstddef>

#include "pool/arena.h"
#include "pool/heap.h"
#include "track/tracker.h"

namespace pg {

// Everything but the fast paths, reached by tail calls.
void* malloc_slow(size_t size);
void free_unreserved(void* p);  // p is not in the reservation: fallback arena, large, or glibc's

// The two hot functions are defined here, inline, so that the preload shim's malloc and free are
// the fast paths themselves rather than jumps to them. They are leaves: every other path is a
// tail call, so they need no stack frame.
// The pools' fast path for a request that is not small (medium, or rounded up for an alignment).
// Not while the profile or leak check is on: such a request draws its own profile sample
// (sample_events in alloc.cpp), which the pools' countdown alone cannot decide.
PG_ALWAYS_INLINE void* pooled_try_alloc(size_t slot, size_t size) {
  if (PG_UNLIKELY(tracking()) && size > kSmallMax) return nullptr;
  return heap_try_alloc(slot, size);
}

PG_ALWAYS_INLINE void* malloc_impl(size_t size) {
  if (PG_LIKELY(size <= kSmallMax)) {
    if (void* p = heap_try_alloc(request_slot(size), size)) return p;
  } else if (size <= kPoolMax) {
    // The medium tier, after the small one's test: no cost to small requests.
    if (void* p = pooled_try_alloc(request_slot(size), size)) return p;
  }
  return malloc_slow(size);
}

PG_ALWAYS_INLINE void free_impl(void* p) {
  if (PG_LIKELY(in_reserved_arenas(p))) return heap_free(p);
  if (p == nullptr) return;
  free_unreserved(p);
}

// free with the size the caller says the block has (C++ sized delete). The size is a hint only.
void free_sized_impl(void* p, size_t size);
void* calloc_impl(size_t n, size_t size);  // NULL + ENOMEM when n * size overflows
void* realloc_impl(
    void* p, size_t size);  // realloc(NULL, n) == malloc(n); realloc(p, 0) frees p, returns NULL
void* reallocarray_impl(void* p, size_t n, size_t size);
void* memalign_impl(size_t alignment, size_t size);  // alignment rounded up to a power of two
int posix_memalign_impl(void** out, size_t alignment, size_t size);  // EINVAL, *out untouched
void* aligned_alloc_impl(size_t alignment, size_t size);             // EINVAL unless power of two
void* valloc_impl(size_t size);
void* pvalloc_impl(size_t size);
// Exact: every byte up to the returned size may be used. 0 for NULL and for an address in the
// pools that is not a block; for a pointer glibc allocated without poolguard, glibc's own figure.
size_t usable_size_impl(const void* p);

// prlimit64(2) for setrlimit, prlimit and their 64-bit names, with glibc's return convention. A
// finite RLIMIT_AS set on this process first gives back what of the arena reservation the new
// limit cannot afford (pool/arena.h), so that the reservation never makes the program fail.
// new_limit and old_limit are struct rlimit64 (the same layout as struct rlimit on 64-bit).
int prlimit_impl(int pid, int resource, const void* new_limit, void* old_limit);

// True when p points into poolguard's pool address space (O(1), no lock).
bool is_pool_pointer(const void* p);

}  // namespace pg
