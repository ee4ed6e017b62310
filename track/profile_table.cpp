// The live profile by stack in shared memory. See track/profile_table.h and
// base/profile_segment.h.
//
// Locking: assigning an entry (and the index that finds it) is under g_lock, and so is the add
// of a block's counters, so that an entry is never reassigned between the lookup and the add
// (reassignment needs samples == 0). Removing is lock-free: a block's entry keeps samples > 0
// until its own subtraction.
#include "track/profile_table.h"

#include <unistd.h>

#include <cstring>

#include "base/depot.h"
#include "base/lock.h"
#include "base/os.h"
#include "base/profile_segment.h"
#include "base/seqlock.h"
#include "pool/shared.h"

namespace pg {

namespace {

using stats::ProfileEntry;
using stats::ProfileHeader;
using stats::ProfileTotals;

constexpr size_t kIndexSlots = 2 * stats::kProfileMaxStacks;  // a power of two
constexpr uint32_t kEmptyKey = 0;                             // depot ids start at 1
constexpr uint32_t kTombKey = UINT32_MAX;

// The index: stack id -> entry, open addressing with linear probing.
struct IndexSlot {
  uint32_t stack;
  uint32_t entry;
};

struct Table {
  char* mem = nullptr;         // the whole segment
  int id = -1;                 // its id when published
  IndexSlot* index = nullptr;  // private, kIndexSlots
  size_t tombs = 0;
  size_t next_victim = 0;  // where the search for a reusable entry resumes
};
Table g_table;
SpinLock g_lock;

ProfileHeader* header() {
  return reinterpret_cast<ProfileHeader*>(g_table.mem);
}
ProfileTotals* totals() {
  return reinterpret_cast<ProfileTotals*>(g_table.mem + stats::kProfileTotalsOffset);
}
ProfileEntry* entries() {
  return reinterpret_cast<ProfileEntry*>(g_table.mem + stats::kProfileEntriesOffset);
}

size_t index_hash(uint32_t stack) {
  return (stack * 0x9E3779B1u) & (kIndexSlots - 1);
}

// The entry of `stack`, or kNoProfileEntry. Under g_lock.
uint32_t index_find(uint32_t stack) {
  for (size_t i = index_hash(stack);; i = (i + 1) & (kIndexSlots - 1)) {
    if (g_table.index[i].stack == stack) return g_table.index[i].entry;
    if (g_table.index[i].stack == kEmptyKey) return kNoProfileEntry;
  }
}

void index_put(uint32_t stack, uint32_t entry) {
  for (size_t i = index_hash(stack);; i = (i + 1) & (kIndexSlots - 1)) {
    uint32_t k = g_table.index[i].stack;
    if (k == kEmptyKey || k == kTombKey) {
      if (k == kTombKey) --g_table.tombs;
      g_table.index[i] = {stack, entry};
      return;
    }
  }
}

// Rebuilds the index from the entries, dropping tombstones. Under g_lock.
void index_rebuild() {
  memset(g_table.index, 0, kIndexSlots * sizeof(IndexSlot));
  g_table.tombs = 0;
  size_t used = totals()->entries_used;
  for (size_t e = 0; e < used; ++e) {
    if (entries()[e].stack != kEmptyKey) index_put(entries()[e].stack, static_cast<uint32_t>(e));
  }
}

void index_remove(uint32_t stack) {
  for (size_t i = index_hash(stack);; i = (i + 1) & (kIndexSlots - 1)) {
    if (g_table.index[i].stack == stack) {
      g_table.index[i].stack = kTombKey;
      if (++g_table.tombs > kIndexSlots / 4) index_rebuild();
      return;
    }
    if (g_table.index[i].stack == kEmptyKey) return;
  }
}

// (Re)assigns entry e to `stack`, under its seqlock. Under g_lock.
void assign(uint32_t e, uint32_t stack) {
  ProfileEntry& en = entries()[e];
  seq_begin(&en.seq, en.seq + 1);
  uintptr_t pcs[stats::kProfileMaxFrames];
  int depth = depot_get(stack, pcs, static_cast<int>(stats::kProfileMaxFrames));
  for (int f = 0; f < depth; ++f) en.pcs[f] = pcs[f];
  en.depth = static_cast<uint32_t>(depth);
  en.stack = stack;
  __atomic_store_n(&en.bytes, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&en.blocks, 0, __ATOMIC_RELAXED);
  __atomic_store_n(&en.samples, 0, __ATOMIC_RELAXED);
  seq_end(&en.seq, en.seq + 1);
  index_put(stack, e);
}

// An entry for `stack`: a fresh one, or one whose stack has no live sample left. Under g_lock.
uint32_t claim(uint32_t stack) {
  ProfileTotals* t = totals();
  if (t->entries_used < stats::kProfileMaxStacks) {
    uint32_t e = static_cast<uint32_t>(t->entries_used);
    assign(e, stack);
    __atomic_store_n(&t->entries_used, t->entries_used + 1, __ATOMIC_RELEASE);
    return e;
  }
  for (size_t n = 0; n < stats::kProfileMaxStacks; ++n) {
    size_t e = (g_table.next_victim + n) % stats::kProfileMaxStacks;
    if (__atomic_load_n(&entries()[e].samples, __ATOMIC_RELAXED) != 0) continue;
    g_table.next_victim = e + 1;
    index_remove(entries()[e].stack);
    assign(static_cast<uint32_t>(e), stack);
    return static_cast<uint32_t>(e);
  }
  return kNoProfileEntry;
}

void add_counts(ProfileEntry* en, uint64_t weight, uint64_t blocks, bool add) {
  ProfileTotals* t = totals();
  if (add) {
    if (en != nullptr) {
      shared_add(en->bytes, weight);
      shared_add(en->blocks, blocks);
      shared_add(en->samples, 1);
    } else {
      shared_add(t->unlisted_samples, 1);
    }
    shared_add(t->bytes, weight);
    shared_add(t->blocks, blocks);
    shared_add(t->live_samples, 1);
  } else {
    if (en != nullptr) {
      shared_sub(en->bytes, weight);
      shared_sub(en->blocks, blocks);
      shared_sub(en->samples, 1);
    } else {
      shared_sub(t->unlisted_samples, 1);
    }
    shared_sub(t->bytes, weight);
    shared_sub(t->blocks, blocks);
    shared_sub(t->live_samples, 1);
  }
}

}  // namespace

bool profile_table_init(bool publish, uint64_t sample_bytes) {
  void* index = os::map(kIndexSlots * sizeof(IndexSlot));
  if (index == nullptr) return false;
  int id = -1;
  char* mem = publish ? shared_segment(stats::kProfileSegmentBytes, nullptr, &id) : nullptr;
  if (mem == nullptr) mem = static_cast<char*>(os::map(stats::kProfileSegmentBytes, true));
  if (mem == nullptr) {
    os::unmap(index, kIndexSlots * sizeof(IndexSlot));
    return false;
  }
  g_table.index = static_cast<IndexSlot*>(index);
  g_table.id = id;
  g_table.mem = mem;
  ProfileHeader* h = header();
  h->size = stats::kProfileSegmentBytes;
  h->version = stats::kProfileVersion;
  h->pid = os::process_id();
  h->uid = geteuid();
  h->max_stacks = stats::kProfileMaxStacks;
  h->sample_bytes = sample_bytes;
  h->entries_offset = stats::kProfileEntriesOffset;
  // The stats segment holds the start time readers check; copy it from there (one source).
  h->start_time = shared_start_time();
  __atomic_store_n(&h->magic, stats::kProfileMagic, __ATOMIC_RELEASE);
  return true;
}

size_t profile_table_own_ranges(uintptr_t (*out)[2], size_t max) {
  size_t n = 0;
  if (g_table.mem != nullptr && n < max) {
    out[n][0] = reinterpret_cast<uintptr_t>(g_table.mem);
    out[n][1] = out[n][0] + stats::kProfileSegmentBytes;
    ++n;
  }
  if (g_table.index != nullptr && n < max) {
    out[n][0] = reinterpret_cast<uintptr_t>(g_table.index);
    out[n][1] = out[n][0] + kIndexSlots * sizeof(IndexSlot);
    ++n;
  }
  return n;
}

uint32_t profile_table_add(uint32_t stack, uint64_t weight, uint64_t blocks) {
  if (g_table.mem == nullptr) return kNoProfileEntry;
  shared_add(totals()->sampled_total, 1);
  LockGuard guard(g_lock);
  uint32_t e = stack != kEmptyKey ? index_find(stack) : kNoProfileEntry;
  if (e == kNoProfileEntry && stack != kEmptyKey) e = claim(stack);
  add_counts(e != kNoProfileEntry ? &entries()[e] : nullptr, weight, blocks, true);
  return e;
}

void profile_table_remove(uint32_t entry, uint64_t weight, uint64_t blocks) {
  if (g_table.mem == nullptr) return;
  add_counts(entry != kNoProfileEntry ? &entries()[entry] : nullptr, weight, blocks, false);
}

int profile_table_id() {
  return g_table.id;
}

void profile_table_lock_for_fork() {
  g_lock.lock_for_fork();
}

void profile_table_unlock_after_fork() {
  g_lock.unlock_after_fork();
}

void profile_table_after_fork_child() {
  if (g_table.id < 0) return;  // private memory: the child has its own copy already
  size_t used = totals()->entries_used;
  SharedRun runs[2] = {{0, stats::kProfileEntriesOffset},
                       {stats::kProfileEntriesOffset, used * sizeof(ProfileEntry)}};
  g_table.id = shared_move_to_child(g_table.mem, stats::kProfileSegmentBytes, runs, 2);
  if (g_table.id >= 0) {
    header()->pid = os::process_id();
    header()->start_time = shared_start_time();
  }
}

}  // namespace pg
