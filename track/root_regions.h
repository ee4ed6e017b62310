// The root regions of the leak scan: /proc/self/maps read in one pass (a snapshot, taken with the
// world stopped) and parsed through base/maps.h into the mappings that are roots.
#pragma once

#include <cstddef>
#include <cstdint>

#include "track/scan_work.h"

namespace pg::leak {

struct Region {
  uintptr_t lo, hi;
  uint64_t offset;   // in the mapped file
  const char* path;  // into the maps text, not NUL-terminated ("" for anonymous memory)
  size_t path_len;
};

// Reads all of /proc/self/maps into a fresh mapping. The kernel produces the text mapping by
// mapping, read by read, and the buffer is one of those mappings: a buffer that turns out too
// small is replaced and the whole file read again, so that the text comes from one pass during
// which no mapping of ours moved.
bool read_maps(Work* work, char** text, size_t* len);

// Parses the maps text into the root regions: mappings both readable and writable, less the
// kernel's pages ([vvar], [vdso], [vsyscall]) and our statistics segments. In address order, as
// the kernel lists them; at most `cap`. Returns their count.
size_t parse_maps(const char* text, size_t len, Region* out, size_t cap);

// For roots read in place (process_vm_readv refused): how far a mapping can be read without a
// fault. Pages wholly past the end of a mapped file raise SIGBUS, and device memory is not ours
// to read, so file mappings are read up to the end of their file (when it can still be found),
// device files not at all (/dev/zero is anonymous memory).
uintptr_t direct_end(const Region& r);

}  // namespace pg::leak
