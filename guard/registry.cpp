// The registry: out-of-band records of guarded blocks, and a hash table from a redzone block's
// address to its record.
//
// Records sit in chunks of kChunkRecords, mapped as needed and never unmapped, so an index stays
// valid for the life of the process and the signal handler can read records without a lock.
// Free records are kept on a list through Block::next.
//
// The hash table is open addressing with linear probing over slots {key, record}: key 0 is empty,
// key 1 a tombstone. It is rebuilt (twice as big when more than a quarter of it is live) once live
// keys and tombstones fill half of it; the old table is unmapped then, which is safe because every
// access to it is under the guard lock.
#include <atomic>
#include <cstring>

#include "base/os.h"
#include "guard/internal.h"

namespace pg::guard {

namespace {

constexpr uint32_t kChunkShift = 16;
constexpr uint32_t kChunkRecords = uint32_t{1} << kChunkShift;  // 4 MiB of records per chunk
constexpr uint32_t kMaxChunks = 4096;

SpinLock g_lock;

std::atomic<Block*> g_chunks[kMaxChunks];
uint32_t g_next_index = 1;  // records 1..g_next_index-1 have been handed out at least once
uint32_t g_free_head = 0;   // free records, linked through Block::next

struct Slot {
  uintptr_t key;
  uint64_t rec;
};
constexpr uintptr_t kEmpty = 0;
constexpr uintptr_t kTombstone = 1;
constexpr size_t kMinSlots = size_t{1} << 14;

Slot* g_slots = nullptr;
size_t g_cap = 0;  // slots (a power of two)
size_t g_live = 0;
size_t g_tombs = 0;

// Fibonacci hashing: the top bits of key * 2^64/phi. Block addresses share their high bits and
// their low four, and the top bits of the product depend on all of them.
size_t hash_of(uintptr_t key, size_t mask) {
  int bits = __builtin_popcountll(mask);
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> (64 - bits));
}

void put(Slot* slots, size_t cap, uintptr_t key, uint32_t rec) {
  size_t mask = cap - 1;
  for (size_t i = hash_of(key, mask);; i = (i + 1) & mask) {
    if (slots[i].key == kEmpty || slots[i].key == kTombstone) {
      slots[i].key = key;
      slots[i].rec = rec;
      return;
    }
  }
}

// Rebuilds the table with `cap` slots. false when the OS refuses the memory.
bool rebuild(size_t cap) {
  Slot* fresh = static_cast<Slot*>(os::map(cap * sizeof(Slot)));
  if (fresh == nullptr) return false;
  for (size_t i = 0; i < g_cap; ++i) {
    if (g_slots[i].key > kTombstone)
      put(fresh, cap, g_slots[i].key, static_cast<uint32_t>(g_slots[i].rec));
  }
  if (g_slots != nullptr) os::unmap(g_slots, g_cap * sizeof(Slot));
  g_slots = fresh;
  g_cap = cap;
  g_tombs = 0;
  return true;
}

}  // namespace

SpinLock& guard_lock() {
  return g_lock;
}

Block* record(uint32_t i) {
  Block* chunk = g_chunks[i >> kChunkShift].load(std::memory_order_acquire);
  return chunk + (i & (kChunkRecords - 1));
}

uint32_t record_new() {
  if (g_free_head != 0) {
    uint32_t i = g_free_head;
    Block* b = record(i);
    g_free_head = b->next;
    memset(b, 0, sizeof *b);
    return i;
  }
  uint32_t i = g_next_index;
  uint32_t c = i >> kChunkShift;
  if (c >= kMaxChunks) return 0;
  if (g_chunks[c].load(std::memory_order_relaxed) == nullptr) {
    // A system call under the lock, but once per 65536 records.
    void* chunk = os::map(sizeof(Block) * kChunkRecords);
    if (chunk == nullptr) return 0;
    g_chunks[c].store(static_cast<Block*>(chunk), std::memory_order_release);
  }
  ++g_next_index;
  return i;  // fresh mappings are zeroed
}

void record_release(uint32_t i) {
  Block* b = record(i);
  memset(b, 0, sizeof *b);
  b->next = g_free_head;
  g_free_head = i;
}

uint32_t record_limit() {
  return g_next_index - 1;
}

bool table_insert(uintptr_t user, uint32_t i) {
  if ((g_live + g_tombs + 1) * 2 > g_cap) {
    size_t cap = g_cap < kMinSlots ? kMinSlots : g_cap;
    if ((g_live + 1) * 4 > cap) cap *= 2;
    if (!rebuild(cap)) return false;
  }
  size_t mask = g_cap - 1;
  for (size_t s = hash_of(user, mask);; s = (s + 1) & mask) {
    uintptr_t k = g_slots[s].key;
    if (k == kEmpty || k == kTombstone) {
      if (k == kTombstone) --g_tombs;
      g_slots[s].key = user;
      g_slots[s].rec = i;
      ++g_live;
      return true;
    }
  }
}

uint32_t table_find(uintptr_t user) {
  if (g_cap == 0 || user <= kTombstone) return 0;
  size_t mask = g_cap - 1;
  for (size_t s = hash_of(user, mask);; s = (s + 1) & mask) {
    uintptr_t k = g_slots[s].key;
    if (k == user) return static_cast<uint32_t>(g_slots[s].rec);
    if (k == kEmpty) return 0;
  }
}

void table_erase(uintptr_t user) {
  if (g_cap == 0) return;
  size_t mask = g_cap - 1;
  for (size_t s = hash_of(user, mask);; s = (s + 1) & mask) {
    uintptr_t k = g_slots[s].key;
    if (k == kEmpty) return;
    if (k == user) {
      // A tombstone keeps later keys of the same probe run reachable; a slot followed by an
      // empty one can go straight back to empty.
      if (g_slots[(s + 1) & mask].key == kEmpty) {
        g_slots[s].key = kEmpty;
      } else {
        g_slots[s].key = kTombstone;
        ++g_tombs;
      }
      --g_live;
      return;
    }
  }
}

uint32_t find_containing(uintptr_t addr) {
  uint32_t n = record_limit();
  for (uint32_t i = 1; i <= n; ++i) {
    const Block* b = record(i);
    if (b->kind != kKindRedzone || b->state == kUnused) continue;
    if (addr - b->raw < b->raw_size) return i;
  }
  return 0;
}

}  // namespace pg::guard
