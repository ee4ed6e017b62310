// The stack depot: every distinct stack is stored once and named by a 32-bit id, so that a block's
// record holds two small ids instead of two arrays of frames (most blocks share a few thousand
// allocation sites).
//
// Storage is one mmap'ed MAP_NORESERVE range (kDepotBytes, committed as it fills) of entries
// appended one after another, plus a fixed table of hash buckets. Entries never change or go away
// once published, so lookups take no lock; inserts take the depot's own lock. When the range is
// full, new stacks get id 0 ("unknown") and nothing breaks.
//
// Nothing here allocates through malloc. Stacks are captured by base/stack.h.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/stack.h"

namespace pg {

inline constexpr size_t kDepotBytes = size_t{128} << 20;
inline constexpr int kDepotMaxFrames = kMaxFrames;

// Stores the stack pcs[0..depth) (innermost first) and returns its id; the same frames always get
// the same id. 0 when depth is 0 or the depot is full or cannot be mapped.
uint32_t depot_put(const uintptr_t* pcs, int depth);

// Copies the frames of stack `id` into out[0..max) and returns how many; 0 for id 0 or an id the
// depot never returned. Lock-free and async-signal-safe.
int depot_get(uint32_t id, uintptr_t* out, int max);

// Captures the caller's stack (capture_frames of base/stack.h, with its `skip`) and stores it; 0
// when no frame was captured.
uint32_t depot_capture(int skip);

// Bytes of entries stored so far, and distinct stacks.
void depot_usage(size_t* bytes, size_t* stacks);
// The depot's mapped storage, [*lo, *hi) (both 0 before the first stack is stored): it holds
// code addresses only, so the leak scan skips it.
void depot_range(uintptr_t* lo, uintptr_t* hi);

void depot_lock_for_fork();
void depot_unlock_after_fork();

}  // namespace pg
