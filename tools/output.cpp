// The files the commands write: see tools/output.h.
#include "tools/output.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "base/os.h"

namespace pg::tool {

int open_output(const std::string& path) {
  int fd = pg::os::open_without_foreign_link(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                                             0644);
  if (fd < 0) {
    fprintf(stderr, "poolguard: cannot write %s: %s\n", path.c_str(),
            errno == ELOOP ? "a symbolic link that belongs to another user" : strerror(errno));
  }
  return fd;
}

bool write_output(const std::string& path, const std::string& content) {
  if (path.empty() || path == "-") {
    // Through stdio, in order with what the command printed before (std::cout is synced with it).
    if (fwrite(content.data(), 1, content.size(), stdout) == content.size() &&
        fflush(stdout) == 0) {
      return true;
    }
    fprintf(stderr, "poolguard: cannot write to stdout: %s\n", strerror(errno));
    return false;
  }
  int fd = open_output(path);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < content.size()) {
    ssize_t n = write(fd, content.data() + done, content.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    done += static_cast<size_t>(n);
  }
  int error = done == content.size() ? 0 : errno;
  if (close(fd) != 0 && error == 0) error = errno;
  if (error != 0) {
    fprintf(stderr, "poolguard: cannot write %s: %s\n", path.c_str(), strerror(error));
    return false;
  }
  return true;
}

}  // namespace pg::tool
