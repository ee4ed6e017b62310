// The live heap profile by allocation stack, kept up to date as tracked allocations are made and
// freed, in memory shared with readers (the profile segment, base/profile_segment.h): a reader
// in another process sees it as it is, with nothing running in this process to publish it.
//
// Each stack gets an entry on its first live sample: its frames are copied in once, and its
// counters (estimated bytes and blocks, live samples) move with atomic adds on every tracked
// allocation and free. A private index maps the stack depot's ids to entries. When every entry is
// assigned, one whose stack has no live sample left is given to the new stack; if none is free,
// the sample is counted in the totals only (`unlisted_samples`).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

inline constexpr uint32_t kNoProfileEntry = UINT32_MAX;

// Sets the profile up: a shared segment (pool/shared.h) when `publish`, else private memory.
// `sample_bytes` is POOLGUARD_PROFILE's figure (1 in leak mode). Called once from tracker_init when
// the tracker is on. false when there is no memory for it (nothing is profiled then; tracking goes
// on).
bool profile_table_init(bool publish, uint64_t sample_bytes);

// A tracked block, standing for `weight` bytes in `blocks` blocks (estimates: track/tracker.cpp),
// was allocated from `stack` (a stack depot id). Returns its entry, to pass to
// profile_table_remove, or kNoProfileEntry.
uint32_t profile_table_add(uint32_t stack, uint64_t weight, uint64_t blocks);
// That block was freed: the same weight and blocks as added.
void profile_table_remove(uint32_t entry, uint64_t weight, uint64_t blocks);

// The profile's memory (its segment and its private index) as {lo, hi} pairs into out[0..max);
// returns how many (0 before profile_table_init). Not roots for the leak scan.
size_t profile_table_own_ranges(uintptr_t (*out)[2], size_t max);

// The id of the published profile's segment, or -1.
int profile_table_id();

// fork() child: moves the profile into a segment of the child's own (pool/shared.h). From the fork
// handler, in the child.
void profile_table_after_fork_child();
void profile_table_lock_for_fork();
void profile_table_unlock_after_fork();

}  // namespace pg
