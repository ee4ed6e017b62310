// The root regions of the leak scan (track/root_regions.h).
#include "track/root_regions.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>

#include "base/maps.h"
#include "base/os.h"

namespace pg::leak {

namespace {

// Whether a mapping is a root: both readable and writable, and neither the kernel's pages nor our
// statistics segments.
bool to_region(const maps::Mapping& m, Region* r) {
  if (!m.readable() || !m.writable() || m.start >= m.end) return false;
  r->lo = m.start;
  r->hi = m.end;
  r->offset = m.offset;
  r->path = m.path;
  r->path_len = m.path_len;
  if (m.path_starts_with("[vvar") || m.path_starts_with("[vdso") ||
      m.path_starts_with("[vsyscall")) {
    return false;
  }
  return !m.path_starts_with("/dev/shm/poolguard.");
}

}  // namespace

bool read_maps(Work* work, char** text, size_t* len) {
  for (size_t cap = size_t{256} << 10; cap <= size_t{1} << 30; cap *= 4) {
    char* buf = static_cast<char*>(work->map(cap, true));
    if (buf == nullptr) return false;
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      work->unmap(buf);
      return false;
    }
    size_t have = 0;
    bool ok = true;
    while (have < cap) {
      ssize_t got = read(fd, buf + have, cap - have);
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) ok = false;
      if (got <= 0) break;
      have += static_cast<size_t>(got);
    }
    close(fd);
    if (!ok) {
      work->unmap(buf);
      return false;
    }
    if (have < cap) {
      *text = buf;
      *len = have;
      return true;
    }
    work->unmap(buf);
  }
  return false;
}

size_t parse_maps(const char* text, size_t len, Region* out, size_t cap) {
  size_t n = 0;
  const char* end = text + len;
  maps::Mapping m;
  for (const char* p = text; n < cap && maps::next_in_text(&p, end, &m);) {
    if (to_region(m, &out[n])) ++n;
  }
  return n;
}

uintptr_t direct_end(const Region& r) {
  if (r.path_len == 0 || r.path[0] != '/') return r.hi;
  static constexpr char kDeleted[] = " (deleted)";
  size_t dl = sizeof kDeleted - 1;
  if (r.path_len >= dl && memcmp(r.path + r.path_len - dl, kDeleted, dl) == 0) return r.lo;
  char path[512];
  if (r.path_len >= sizeof path) return r.lo;
  memcpy(path, r.path, r.path_len);
  path[r.path_len] = '\0';
  if (strcmp(path, "/dev/zero") == 0) return r.hi;
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return r.lo;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size <= r.offset) return r.lo;
  uint64_t readable = align_up(size - r.offset, os::page_size());
  return readable < r.hi - r.lo ? r.lo + readable : r.hi;
}

}  // namespace pg::leak
