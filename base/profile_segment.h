// The profile segment: the live heap profile (POOLGUARD_PROFILE, or every block with
// POOLGUARD_LEAKS) that a process shares with readers, for `poolguard stat PID --profile` and
// `poolguard profile PID`. Like base/segment.h it is plain, fixed, versioned data with no
// pointers into the reader's address space, and the only interface between the writer (the
// tracker, track/profile_table.cpp, inside the preloaded library) and readers (tools/).
//
// Where: a System V shared memory segment of its own, found and attached like the stats segment
// (base/segment.h), kept up to date as allocations are sampled and freed: there is nothing to ask
// for.
//
// Layout: the header (magic last, with release order), then the totals, then `max_stacks`
// entries, one per allocation stack, of which [0, entries_used) have been assigned. An entry is
// assigned to a stack once and keeps it while the stack has live samples; an entry whose samples
// fell to zero may be given to another stack when all are in use, and is rewritten under its
// `seq` (odd meanwhile): a reader copies an entry, then checks that `seq` was even and unchanged.
// The counters of an entry and the totals are updated with atomic adds, each on its own: a copy
// is a moment's, exact for an idle process.
//
// The figures are estimates of the live heap: each live sampled allocation stands for its
// weight, its size divided by the probability that an allocation of its size was sampled, so that
// summed over a stack the bytes are an unbiased estimate of what that stack holds. With
// POOLGUARD_LEAKS=1 every allocation is tracked and the figures are exact (sample_bytes is 1).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg::stats {

inline constexpr uint64_t kProfileMagic = 0x32464f5250474750ull;  // "PGGPROF2" in memory
inline constexpr uint32_t kProfileVersion = 2;
inline constexpr size_t kProfileMaxFrames = 32;
inline constexpr size_t kProfileMaxStacks = 8192;

// The live sampled allocations of one allocation stack.
struct ProfileEntry {
  uint64_t seq;      // odd while the entry is being (re)assigned
  uint64_t bytes;    // estimated live bytes allocated from this stack
  uint64_t blocks;   // estimated live blocks
  uint64_t samples;  // live sampled allocations behind the estimate
  uint32_t depth;    // frames in pcs (innermost first: pcs[0] is the caller of malloc)
  uint32_t stack;    // the writer's id of the stack (0: an unknown stack)
  uint64_t pcs[kProfileMaxFrames];  // return addresses in the process's address space
};

struct ProfileHeader {
  uint64_t magic;         // kProfileMagic, stored last
  uint64_t size;          // bytes of the segment
  uint32_t version;       // kProfileVersion
  int32_t pid;            // the process (a fork child rewrites it in its copy)
  uint32_t uid;           // its effective user id
  uint32_t max_stacks;    // entries
  uint64_t start_time;    // the process's start time, clock ticks after boot
  uint64_t sample_bytes;  // mean bytes between samples (POOLGUARD_PROFILE); 1: every allocation
  uint64_t entries_offset;
  uint64_t reserved_hdr[8];
};

struct ProfileTotals {
  uint64_t entries_used;      // entries assigned so far (high-water mark, <= max_stacks)
  uint64_t live_samples;      // live sampled allocations, over every stack
  uint64_t bytes;             // estimated live bytes, over every stack
  uint64_t blocks;            // estimated live blocks
  uint64_t sampled_total;     // allocations sampled since the start
  uint64_t unlisted_samples;  // live samples of stacks that found no entry (all in use)
  uint64_t reserved[10];
};

static_assert(sizeof(ProfileEntry) == 40 + 8 * kProfileMaxFrames);
static_assert(sizeof(ProfileHeader) <= 512 && sizeof(ProfileTotals) <= 512);

// Offsets in the segment.
inline constexpr size_t kProfileTotalsOffset = 512;
inline constexpr size_t kProfileEntriesOffset = 1024;
inline constexpr size_t kProfileSegmentBytes =
    kProfileEntriesOffset + kProfileMaxStacks * sizeof(ProfileEntry);

}  // namespace pg::stats
