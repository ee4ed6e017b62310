#include "stats/shm_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace pg {

void* shm_create(const char* path, size_t size, size_t backed, ShmId* id) {
  int fd = -1;
  for (int attempt = 0; attempt < 3 && fd < 0; ++attempt) {
    fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd >= 0 || errno != EEXIST) break;
    struct stat st;
    if (lstat(path, &st) != 0) continue;  // gone meanwhile: try again
    if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) return nullptr;
    if (unlink(path) != 0 && errno != ENOENT) return nullptr;
  }
  if (fd < 0) return nullptr;
  struct stat st;
  bool ok = fchmod(fd, 0600) == 0 && fstat(fd, &st) == 0 &&
            ftruncate(fd, static_cast<off_t>(size)) == 0 &&
            posix_fallocate(fd, 0, static_cast<off_t>(backed)) == 0;
  void* mem = MAP_FAILED;
  if (ok) mem = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (mem == MAP_FAILED) {
    unlink(path);
    return nullptr;
  }
  madvise(mem, size, MADV_DONTFORK);
  id->dev = st.st_dev;
  id->ino = st.st_ino;
  return mem;
}

bool shm_back(const char* path, const ShmId& id, size_t bytes) {
  int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  struct stat st;
  bool same = fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == id.dev && st.st_ino == id.ino;
  bool ok = same && posix_fallocate(fd, 0, static_cast<off_t>(bytes)) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

bool shm_ensure_backed(const char* path, const ShmId& id, ShmGrowth* growth, size_t want,
                       size_t chunk, size_t max_entries, size_t (*bytes_for)(size_t)) {
  if (want <= growth->backed) return true;
  if (growth->failed) return false;
  size_t target = (want + chunk - 1) / chunk * chunk;
  if (target > max_entries) target = max_entries;
  if (!shm_back(path, id, bytes_for(target))) {
    growth->failed = true;
    return false;
  }
  growth->backed = target;
  return true;
}

}  // namespace pg
