// Large blocks: requests above kPoolMax, and alignments the pools cannot honour, are served by
// glibc through its exported __libc_* entry points (no dlsym, so no bootstrap recursion).
//
// A plain large block is glibc's chunk, untouched: no header, so the large path costs what glibc
// costs, and malloc_usable_size reports glibc's usable size (read from the chunk header; all of
// it is usable). Over-aligned blocks are aligned by hand inside a bigger __libc_malloc block and
// carry a 16-byte header just before the pointer:
//   word 0: the requested size, with log2(alignment) in the top byte
//   word 1: a check value, secret ^ address ^ word 0 (mixed); for a plain block these 16 bytes
//           are glibc's chunk header, which never matches it
// and, in the word before the header, their offset from the start of the glibc block.
// Pointers glibc made without poolguard (before it was loaded) are handled like plain blocks.
//
// Statistics are per thread (no shared counter on this path); the limit, when set, is charged at
// each block's usable size.
#pragma once

#include <cstddef>

namespace pg {

// Runs glibc's malloc initialisation now (front/init.cpp, once, on the initialising thread).
// glibc sets its malloc up on the first call, without a lock, counting on that call to come
// before any second thread exists; under poolguard the first call is the first large block, which
// may come from several threads at once. Two threads in that set-up both attach to glibc's main
// arena, which counts one of them, and the second to exit aborts in glibc's thread clean-up.
// Also makes the pthread key that gives a thread's statistics slot back when it exits.
void large_init();

// fork support (front/init.cpp calls these in its fixed lock order).
void large_lock_for_fork();
void large_unlock_after_fork_parent();
void large_after_fork_child();  // also folds away the statistics of threads not in the child

// Allocates size bytes aligned to `alignment` (a power of two >= 16). nullptr when glibc fails
// or the heap limit refuses it. `request` is what the program asked for, for the limit's record
// (the guard and the tracker allocate more than that); the first form passes `size`.
void* large_alloc(size_t size, size_t alignment, bool zero, size_t request);
inline void* large_alloc(size_t size, size_t alignment, bool zero) {
  return large_alloc(size, alignment, zero, size);
}
// True for any pointer outside the arenas and the guarded blocks: all are glibc chunks.
bool large_owns(const void* p);
// Frees a block for which large_owns(p) is true.
void large_free(void* p);
// Usable size of a large block (the request, for an over-aligned one).
size_t large_size(const void* p);
// Alignment the block was made with (16 for plain malloc).
size_t large_alignment(const void* p);
// Resizes a large block in place through __libc_realloc (plain alignment only). nullptr on failure
// (the block is untouched).
void* large_realloc(void* p, size_t size);

// Usable size of a pointer glibc allocated without poolguard (read from glibc's chunk header).
size_t foreign_usable_size(const void* p);

// The direct path: malloc and free of large blocks when nothing but statistics is in play (the
// caller checks: initialised, no limit, no guard, no tracker). One call layer, the statistics
// inline; a thread's first block, an over-aligned block and the periodic trim check take the
// general functions above. large_malloc_direct sets errno on failure; large_free_direct takes any
// pointer large_owns() accepts.
void* large_malloc_direct(size_t size);
void* large_calloc_direct(size_t size);  // zeroed (glibc's calloc)
void large_free_direct(void* p);
// realloc of a large block to a large size: true when it was handled here, with the result in
// *out (nullptr and ENOMEM when glibc could not resize it; the old block then stays valid); false
// for an over-aligned block or a periodic trim check, which go to the general path (the caller's).
bool large_realloc_direct(void* p, size_t size, void** out);

struct LargeCounters {
  unsigned long long allocs, frees, live_bytes;
};
void large_counters(LargeCounters* out);

}  // namespace pg

// glibc's own allocator entry points (exported by libc.so.6).
extern "C" {
void* __libc_malloc(size_t);
void __libc_free(void*);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
}
