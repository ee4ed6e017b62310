// The metadata memory of base/meta.h: bump allocation over mmap'ed chunks, never malloc.
#include "base/meta.h"
#include "base/align.h"

#include <cstdint>

#include "base/lock.h"
#include "base/os.h"

namespace pg {

namespace {
constexpr size_t kChunk = 256 * 1024;
SpinLock g_meta_lock;
char* g_cur = nullptr;
size_t g_left = 0;
size_t g_mapped = 0;
}  // namespace

void* meta_alloc(size_t size, size_t align) {
  LockGuard guard(g_meta_lock);
  uintptr_t cur = reinterpret_cast<uintptr_t>(g_cur);
  uintptr_t aligned = align_up(cur, align);
  size_t need = size + (aligned - cur);
  if (g_cur == nullptr || need > g_left) {
    size_t chunk = size + align > kChunk ? align_up(size + align, 4096) : kChunk;
    char* fresh = static_cast<char*>(os::map(chunk));
    if (fresh == nullptr) return nullptr;
    g_mapped += chunk;
    g_cur = fresh;
    g_left = chunk;
    cur = reinterpret_cast<uintptr_t>(g_cur);
    aligned = align_up(cur, align);
    need = size + (aligned - cur);
  }
  g_cur += need;
  g_left -= need;
  return reinterpret_cast<void*>(aligned);
}

size_t meta_mapped() {
  LockGuard guard(g_meta_lock);
  return g_mapped;
}

void meta_lock_for_fork() {
  g_meta_lock.lock_for_fork();
}
void meta_unlock_after_fork() {
  g_meta_lock.unlock_after_fork();
}

}  // namespace pg
