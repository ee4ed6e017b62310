// The profile segment: the live heap profile (POOLGUARD_PROFILE) a process publishes next to its
// stats segment, for `poolguard stat PID --profile` and `poolguard profile PID`. Like
// stats/segment.h it is a plain, fixed, versioned layout with no pointers, and the only interface
// between the writer (stats/publish.cpp, in the preloaded library) and readers (tools/).
//
// Where: /dev/shm/poolguard.<pid>.profile, mode 0600, owned by the process's user, created and
// refreshed by the same publisher thread as the stats segment, at the same moments (so a reader
// that asks the stats segment for fresh figures gets a fresh profile too), removed at exit.
//
// Protocol: the header (magic ... max_stacks) is written once, `magic` last with release order.
// Everything from `seq` on is rewritten under a seqlock (odd while being written): a reader copies
// the figures and entries[0..stacks), then checks that `seq` was even and unchanged.
//
// The figures are estimates of the live heap: each live sampled allocation stands for `weight`
// bytes (its size divided by the probability that an allocation of its size was sampled), so that
// summed over a stack the bytes are an unbiased estimate of what that stack holds. With
// POOLGUARD_LEAKS=1 every allocation is tracked and the figures are exact (sample_bytes is then 1).
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg::stats {

inline constexpr uint64_t kProfileMagic = 0x31464f5250474750ull;  // "PGGPROF1" in memory
inline constexpr uint32_t kProfileVersion = 1;
inline constexpr size_t kProfileMaxFrames = 32;
inline constexpr size_t kProfileMaxStacks = 8192;
inline constexpr const char kProfileSuffix[] = ".profile";

// The live sampled allocations of one allocation stack.
struct ProfileEntry {
  uint64_t bytes;    // estimated live bytes allocated from this stack
  uint64_t blocks;   // estimated live blocks
  uint64_t samples;  // live sampled allocations behind the estimate
  uint32_t depth;    // frames in pcs (innermost first: pcs[0] is the caller of malloc)
  uint32_t reserved;
  uint64_t pcs[kProfileMaxFrames];  // return addresses in the process's address space
};

struct ProfileSegment {
  // --- Header: written once; `magic` last. ---
  uint64_t magic;       // kProfileMagic
  uint64_t size;        // sizeof(ProfileSegment) of the writer
  uint32_t version;     // kProfileVersion
  int32_t pid;          // the process
  uint32_t uid;         // its effective user id
  uint32_t max_stacks;  // capacity of entries (kProfileMaxStacks)
  uint64_t reserved_hdr[4];

  // --- Figures, under the seqlock. ---
  alignas(64) uint64_t seq;  // odd while the figures are being written
  uint64_t publish_time_ns;  // CLOCK_REALTIME of this publication
  uint64_t sample_bytes;     // mean bytes between samples (POOLGUARD_PROFILE); 1: exact
  uint64_t stacks;           // entries filled, largest `bytes` first (<= max_stacks)
  uint64_t stacks_total;     // distinct stacks with live samples (stacks < stacks_total: dropped)
  uint64_t live_samples;     // live sampled allocations
  uint64_t bytes;            // estimated live bytes, summed over every stack
  uint64_t blocks;           // estimated live blocks
  uint64_t sampled_total;    // allocations sampled since the start
  uint64_t reserved[7];
  ProfileEntry entries[kProfileMaxStacks];
};

static_assert(sizeof(ProfileEntry) == 32 + 8 * kProfileMaxFrames);
static_assert(offsetof(ProfileSegment, seq) % 64 == 0);
static_assert(offsetof(ProfileSegment, entries) % 8 == 0);

// Bytes of the segment up to and including the first `stacks` entries.
constexpr size_t profile_bytes_for(size_t stacks) {
  return offsetof(ProfileSegment, entries) + stacks * sizeof(ProfileEntry);
}

}  // namespace pg::stats
