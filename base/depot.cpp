// The stack depot of base/depot.h: each distinct stack stored once in mmap'ed memory, found by
// hash, named by a 32-bit id.
#include "base/depot.h"

#include <atomic>
#include <cstring>

#include "base/lock.h"
#include "base/os.h"
#include "base/stack.h"
#if defined(POOLGUARD_FAULT_INJECTION)
#include "base/fault.h"
#endif

namespace pg {

namespace {

constexpr size_t kBuckets = size_t{1} << 18;

// An entry: this header, then `depth` frames. Ids are entry offsets in 8-byte units (the first
// entry starts at offset 8, so no entry has id 0).
struct Entry {
  uint32_t next;  // next entry id in the same bucket
  uint32_t hash;
  uint32_t depth;
  uint32_t pad;
  uintptr_t pcs[];
};

SpinLock g_depot_lock;
std::atomic<char*> g_base{nullptr};          // kDepotBytes, MAP_NORESERVE
std::atomic<uint32_t>* g_buckets = nullptr;  // kBuckets heads (entry ids)
std::atomic<size_t> g_used{8};               // bytes of g_base in use
std::atomic<size_t> g_stacks{0};
bool g_map_failed = false;

uint32_t hash_frames(const uintptr_t* pcs, int depth) {
  uint64_t h = 0xcbf29ce484222325ull ^ static_cast<uint64_t>(depth);
  for (int i = 0; i < depth; ++i) {
    h ^= pcs[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return static_cast<uint32_t>(h ^ (h >> 32));
}

const Entry* entry_at(char* base, uint32_t id) {
  return reinterpret_cast<const Entry*>(base + size_t{id} * 8);
}

uint32_t find(char* base, uint32_t head, uint32_t hash, const uintptr_t* pcs, int depth) {
  for (uint32_t id = head; id != 0;) {
    const Entry* e = entry_at(base, id);
    if (e->hash == hash && e->depth == static_cast<uint32_t>(depth) &&
        memcmp(e->pcs, pcs, sizeof(uintptr_t) * static_cast<size_t>(depth)) == 0) {
      return id;
    }
    id = e->next;
  }
  return 0;
}

// Maps the storage on first use. Under the depot lock.
char* storage() {
  char* base = g_base.load(std::memory_order_acquire);
  if (base != nullptr || g_map_failed) return base;
  void* b = os::map(kBuckets * sizeof(uint32_t), true);
  base = static_cast<char*>(os::map(kDepotBytes, true));
  if (b == nullptr || base == nullptr) {
    // Without both there is no depot: the one that was mapped goes back.
    if (b != nullptr) os::unmap(b, kBuckets * sizeof(uint32_t));
    if (base != nullptr) os::unmap(base, kDepotBytes);
    g_map_failed = true;
    return nullptr;
  }
  g_buckets = static_cast<std::atomic<uint32_t>*>(b);
  g_base.store(base, std::memory_order_release);
  return base;
}

}  // namespace

uint32_t depot_put(const uintptr_t* pcs, int depth) {
  if (depth <= 0) return 0;
  if (depth > kDepotMaxFrames) depth = kDepotMaxFrames;
  uint32_t hash = hash_frames(pcs, depth);
  size_t bucket = hash & (kBuckets - 1);
  char* base = g_base.load(std::memory_order_acquire);
  if (base != nullptr) {
    uint32_t id = find(base, g_buckets[bucket].load(std::memory_order_acquire), hash, pcs, depth);
    if (id != 0) return id;
  }
  LockGuard guard(g_depot_lock);
#if defined(POOLGUARD_FAULT_INJECTION)
  fault::reached(fault::Point::kDepotInsert);
#endif
  base = storage();
  if (base == nullptr) return 0;
  uint32_t head = g_buckets[bucket].load(std::memory_order_relaxed);
  if (uint32_t id = find(base, head, hash, pcs, depth)) return id;  // added meanwhile
  size_t need = sizeof(Entry) + sizeof(uintptr_t) * static_cast<size_t>(depth);
  size_t at = g_used.load(std::memory_order_relaxed);
  if (at + need > kDepotBytes) return 0;
  Entry* e = reinterpret_cast<Entry*>(base + at);
  e->next = head;
  e->hash = hash;
  e->depth = static_cast<uint32_t>(depth);
  memcpy(e->pcs, pcs, sizeof(uintptr_t) * static_cast<size_t>(depth));
  uint32_t id = static_cast<uint32_t>(at / 8);
  g_used.store(at + need, std::memory_order_relaxed);
  g_stacks.fetch_add(1, std::memory_order_relaxed);
  g_buckets[bucket].store(id, std::memory_order_release);
  return id;
}

int depot_get(uint32_t id, uintptr_t* out, int max) {
  char* base = g_base.load(std::memory_order_acquire);
  if (id == 0 || base == nullptr || size_t{id} * 8 >= g_used.load(std::memory_order_acquire)) {
    return 0;
  }
  const Entry* e = entry_at(base, id);
  int n = static_cast<int>(e->depth);
  if (n > max) n = max;
  for (int i = 0; i < n; ++i) out[i] = e->pcs[i];
  return n;
}

__attribute__((noinline)) uint32_t depot_capture(int skip) {
  uintptr_t pcs[kDepotMaxFrames];
  // skip + 1: capture_frames counts its own frame too.
  return depot_put(pcs, capture_frames(pcs, kDepotMaxFrames, skip + 1));
}

void depot_usage(size_t* bytes, size_t* stacks) {
  *bytes = g_used.load(std::memory_order_relaxed) - 8;
  *stacks = g_stacks.load(std::memory_order_relaxed);
}

void depot_range(uintptr_t* lo, uintptr_t* hi) {
  char* base = g_base.load(std::memory_order_acquire);
  *lo = reinterpret_cast<uintptr_t>(base);
  *hi = base != nullptr ? *lo + kDepotBytes : 0;
}

void depot_lock_for_fork() {
  g_depot_lock.lock_for_fork();
}

void depot_unlock_after_fork() {
  g_depot_lock.unlock_after_fork();
}

}  // namespace pg
