// The memory this process shares with statistics readers: the stats segment (base/segment.h
// has its layout and reading rules). It is set up first in initialisation, and the modules keep
// their figures in it directly (the arenas, the heaps, the large blocks, the limit, the error
// counts), so that a reader in another process sees them as they are, with no thread or request
// in this process. The heap table lives here too: its private part holds the Heap structs, and
// the counters the fast paths keep for each heap sit kHeapCountersOffset bytes further, in the
// shared segment (pool/config.h).
//
// The segment is a System V shared memory segment, marked for removal as soon as it is attached:
// the process keeps no descriptor for it (programs that enumerate or close their descriptors see
// nothing of poolguard's), nothing is left behind however the process ends (the kernel destroys
// the segment when the last attachment goes), and it cannot be truncated under the process. A
// reader finds it in /proc/PID/maps (the mapping named /SYSV00000000, whose inode is its id) and
// attaches it read-only; the segment's mode lets only the process's user (and root) do so.
//
// When the process does not publish (POOLGUARD_SEGMENT=off, a setuid process, or the kernel
// refused a segment: kernel.shmmni), the same layout is private memory: every module works the
// same, and nothing is visible from outside.
//
// fork(): the child must not write into its parent's segment, so its fork handler moves it into a
// segment of its own (copying what is in use) at the same addresses. A child made by a raw
// clone() without fork handlers keeps sharing its parent's: the figures of both are then mixed
// (the heaps themselves are private memory and stay sound); readers see that the segment names
// another pid.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/segment.h"

namespace pg {

namespace shared_detail {
extern stats::SegmentGlobals* g_globals __attribute__((visibility("hidden")));
}

// Sets the segment up: shared when `publish`, else private memory. Called once, from
// initialisation, before any module writes a figure. Never fails as a whole: without any memory
// for it, figures go to a private placeholder and threads get no heap table.
void shared_init(bool publish);

// The slow-path figures. Valid at any time (a placeholder until shared_init, whose contents move
// into the segment).
inline stats::SegmentGlobals& shared_globals() {
  return *shared_detail::g_globals;
}
// Adds to a figure that several threads update (an atomic add; readers see a plain u64).
inline void shared_add(uint64_t& field, uint64_t n) {
  __atomic_fetch_add(&field, n, __ATOMIC_RELAXED);
}
inline void shared_sub(uint64_t& field, uint64_t n) {
  __atomic_fetch_sub(&field, n, __ATOMIC_RELAXED);
}
// Stores a figure that one writer (or a lock) owns.
inline void shared_set(uint64_t& field, uint64_t v) {
  __atomic_store_n(&field, v, __ATOMIC_RELAXED);
}

// The large slots (nullptr before shared_init or without memory) and how many there are.
stats::SegmentLargeSlot* shared_large_slots();
size_t shared_large_capacity();
// The arena map and its number of entries.
stats::SegmentArena* shared_arena_map();
size_t shared_max_arenas();
// The heap table: kMaxHeaps slots of kHeapStride bytes, private, zeroed until used; the counters
// of the heap in a slot are kHeapCountersOffset bytes after it. nullptr when it could not be
// mapped (then no thread gets a heap, and small requests go to the large path).
char* shared_heap_table();
// The whole of this memory (the heap table, the segment and the unused space between), {0, 0}
// before shared_init: the leak scan must not take poolguard's own figures for the program's roots.
void shared_own_range(uintptr_t* lo, uintptr_t* hi);

// The id of the published segment, or -1.
int shared_segment_id();
// This process's start time in clock ticks after boot (/proc/self/stat), as the segment records
// it; readers compare it with the process's to tell a live segment from an inherited one.
uint64_t shared_start_time();

// fork() child: gives the child a segment of its own (see above). Called from the fork handler,
// in the child, before anything else counts.
void shared_after_fork_child();

// For other memory shared the same way (the heap profile, track/profile_table.h):
// A new segment of `bytes`, mode 0600, attached at `at` (replacing what is mapped there) or
// anywhere when `at` is null, and marked for removal at once; nullptr on failure (*id is -1).
char* shared_segment(size_t bytes, char* at, int* id);
// A byte range of a segment that is in use: `length` bytes at `offset`.
struct SharedRun {
  size_t offset, length;
};
// fork() child: moves the segment of `bytes` attached at `at` (the parent's) into a segment of
// the child's own, at the same address, copying the runs in use; failing that, into private
// memory. Returns the new segment's id, or -1 when the copy is private.
int shared_move_to_child(char* at, size_t bytes, const SharedRun* runs, size_t nruns);

}  // namespace pg
