// The work memory of one leak scan (track/leak_scan.cpp, track/stop_world.cpp,
// track/root_regions.cpp): mmap'ed, never a root, unmapped when the scan ends.
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/align.h"
#include "base/os.h"
#include "track/leak_scan.h"

namespace pg::leak {

constexpr size_t kMaxWork = 12;

// The mappings made for one scan: they are unmapped at the end and excluded from the roots.
struct Work {
  Range ranges[kMaxWork];
  size_t count = 0;

  void* map(size_t bytes, bool noreserve = false) {
    if (count == kMaxWork) return nullptr;
    bytes = align_up(bytes == 0 ? 1 : bytes, os::page_size());
    void* p = os::map(bytes, noreserve);
    if (p == nullptr) return nullptr;
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    ranges[count++] = Range{a, a + bytes};
    return p;
  }
  // Unmaps one mapping made by map() (only before /proc/self/maps is read: the roots come from
  // that snapshot, so nothing it lists may disappear afterwards).
  void unmap(void* p) {
    uintptr_t a = reinterpret_cast<uintptr_t>(p);
    for (size_t i = 0; i < count; ++i) {
      if (ranges[i].lo != a) continue;
      os::unmap(p, ranges[i].hi - ranges[i].lo);
      ranges[i] = ranges[--count];
      return;
    }
  }
  void release_all() {
    for (size_t i = 0; i < count; ++i) {
      os::unmap(reinterpret_cast<void*>(ranges[i].lo), ranges[i].hi - ranges[i].lo);
    }
    count = 0;
  }
};

}  // namespace pg::leak
