// Metadata memory: a bump allocator over mmap'ed chunks, for the allocator's own structures
// (arena descriptors, thread heaps). Never returns memory: callers recycle their objects through
// free lists of their own. Thread-safe (takes a lock); never calls malloc.
#pragma once

#include <cstddef>

namespace pg {

// Zeroed memory of `size` bytes aligned to `align` (<= 4096). nullptr if the OS refuses.
void* meta_alloc(size_t size, size_t align);
// Total bytes mapped for metadata.
size_t meta_mapped();

void meta_lock_for_fork();
void meta_unlock_after_fork();

}  // namespace pg
