// Fault injection for tests: a plan, per kind of platform memory call, of which calls fail as if
// the kernel had refused them. Exists only in the pgcore_faults flavour of the core (CMake option
// POOLGUARD_FAULT_INJECTION); pgcore and libpoolguard.so have none of it, not even a branch.
//
// Kinds are the system calls of base/os.cpp by their role; each such system call consults the plan
// once, before it is made:
//   kMap        os::map's mmap (fresh memory: metadata chunks, tables, records)
//   kMapAligned os::map_aligned's over-sized mmap (arenas outside the reservation)
//   kReserve    os::reserve_aligned's mmap (the arena reservation, the page-guard region)
//   kCommit     os::commit's mprotect (arenas in the reservation, page-guarded blocks' pages)
//   kUnmap      os::unmap's munmap (not the trims inside map_aligned and reserve_aligned)
//   kDecommit   every madvise(MADV_DONTNEED): os::decommit's, and protect_none's fallback
//   kProtect    os::protect_none's mprotect(PROT_NONE), its MAP_FIXED remap (release), and the
//               mprotect it falls back to when the remap fails
// A refused call makes no system call; it sets errno to ENOMEM and returns the failure value the
// kernel's refusal would have produced (nullptr, false, or nothing for decommit).
//
// Plans count calls from the moment they are set, per kind, across all threads. Set them while
// no other thread is inside the allocator if the count must be exact.
#pragma once

#include <cstddef>
#include <cstdint>

#if !defined(POOLGUARD_FAULT_INJECTION)
#error "base/fault.h is for the pgcore_faults flavour only (POOLGUARD_FAULT_INJECTION)"
#endif

namespace pg::fault {

enum class Call : uint8_t { kMap, kMapAligned, kReserve, kCommit, kUnmap, kDecommit, kProtect };
inline constexpr size_t kNumCalls = 7;

// Consulted by base/os.cpp before each system call of kind `call`: true (with errno = ENOMEM)
// when the plan refuses this one. Lock-free and allocation-free (it runs inside malloc).
bool refused(Call call);

// ---- For tests -----------------------------------------------------------------------------

// The n-th call of `call` from now fails (n >= 1), and no other.
void fail_nth_for_testing(Call call, uint64_t n);
// The first n calls of `call` from now succeed, every later one fails (n = 0: all of them).
void fail_after_for_testing(Call call, uint64_t n);
// Each call of `call` fails with probability p (0..1), decided by a hash of `seed` and the call's
// number since now: the same seed and the same sequence of calls fail the same calls.
void fail_randomly_for_testing(Call call, double p, uint64_t seed);
// No call of `call` fails any more; its counters restart at zero.
void clear_for_testing(Call call);
void clear_all_for_testing();

// Calls of `call` made (refused or not) since its plan was last set or cleared.
uint64_t calls_for_testing(Call call);
// Calls of `call` refused since its plan was last set or cleared.
uint64_t refusals_for_testing(Call call);

// A name for messages ("map", "commit", ...).
const char* call_name_for_testing(Call call);

// ---- Stop points -------------------------------------------------------------------------------
// Places in the core, in the middle of a multi-step update, where a test can hold a thread (its
// hook runs there, on that thread) while another thread does something the update must survive,
// such as fork().
//   kUnsetCurrent  a heap's current pool has given up its extra count but is still current
//   kDepotInsert   a thread adding a new stack to the depot holds the depot's lock
enum class Point : uint8_t { kUnsetCurrent, kDepotInsert };
inline constexpr size_t kNumPoints = 2;

// Called by the core at `point`: runs the hook set for it, if any.
void reached(Point point);
// Sets (nullptr: clears) the hook run at `point`, on whichever thread gets there.
void set_point_hook_for_testing(Point point, void (*hook)());

}  // namespace pg::fault
