// The shared-memory files of the stats and profile segments (/dev/shm/poolguard.<pid>[.profile]):
// created owner-only, replacing this user's leftovers but never another user's file, and backed by
// allocated memory before any byte is written, so that a full /dev/shm never raises SIGBUS.
// Inside the preloaded library: plain system calls, no malloc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

// Identity of a created file (device and inode), to grow it later through its name safely.
struct ShmId {
  uint64_t dev = 0, ino = 0;
};

// Creates `path` (mode 0600, O_EXCL, O_NOFOLLOW). A file of that name that belongs to this user is
// one a dead process or this process's previous image left: it is replaced; another user's file is
// left alone (nullptr). The file gets `size` bytes, the first `backed` of them allocated, and is
// mapped shared, read-write and MADV_DONTFORK (a fork child must not publish into its parent's
// file). nullptr on failure, with nothing left behind.
void* shm_create(const char* path, size_t size, size_t backed, ShmId* id);

// Allocates the first `bytes` bytes of the file `path`, if it is still the file `id` names. The
// file is reopened by name each time: the publisher keeps no descriptor open (a program that
// closes every descriptor it did not open would break it).
bool shm_back(const char* path, const ShmId& id, size_t bytes);

// A file of entries backed in chunks as they are needed: the first `backed` entries have memory;
// after one refusal (/dev/shm full, or the file was replaced) it stops growing.
struct ShmGrowth {
  size_t backed = 0;
  bool failed = false;
};
// Makes sure `want` entries are backed, growing by `chunk` entries up to `max_entries`;
// bytes_for(n) is the file size that holds n entries. False when it cannot: the caller then
// publishes only the `backed` entries.
bool shm_ensure_backed(const char* path, const ShmId& id, ShmGrowth* growth, size_t want,
                       size_t chunk, size_t max_entries, size_t (*bytes_for)(size_t));

}  // namespace pg
