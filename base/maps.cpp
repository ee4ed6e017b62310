// The /proc/PID/maps parser (base/maps.h): fields by hand, no sscanf, no allocation.
#include "base/maps.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace pg::maps {

namespace {

// Reads hexadecimal digits from p; *digits counts them.
const char* parse_hex(const char* p, const char* end, uint64_t* v, size_t* digits) {
  uint64_t r = 0;
  const char* from = p;
  for (; p < end; ++p) {
    char c = *p;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) break;
    r = r << 4 | static_cast<uint64_t>(d);
  }
  *v = r;
  *digits = static_cast<size_t>(p - from);
  return p;
}

const char* parse_decimal(const char* p, const char* end, uint64_t* v, size_t* digits) {
  uint64_t r = 0;
  const char* from = p;
  for (; p < end && *p >= '0' && *p <= '9'; ++p) r = r * 10 + static_cast<uint64_t>(*p - '0');
  *v = r;
  *digits = static_cast<size_t>(p - from);
  return p;
}

const char* skip_spaces(const char* p, const char* end) {
  while (p < end && *p == ' ') ++p;
  return p;
}

}  // namespace

bool Mapping::path_starts_with(const char* prefix) const {
  size_t n = strlen(prefix);
  return path_len >= n && memcmp(path, prefix, n) == 0;
}

bool Mapping::path_contains(const char* needle) const {
  size_t n = strlen(needle);
  if (n == 0) return true;
  for (size_t i = 0; i + n <= path_len; ++i) {
    if (memcmp(path + i, needle, n) == 0) return true;
  }
  return false;
}

bool parse_line(const char* p, const char* end, Mapping* m) {
  uint64_t start, stop, offset, inode;
  size_t digits;
  p = parse_hex(p, end, &start, &digits);
  if (digits == 0 || p >= end || *p != '-') return false;
  p = parse_hex(p + 1, end, &stop, &digits);
  if (digits == 0 || end - p < 6 || p[0] != ' ' || p[5] != ' ') return false;
  memcpy(m->perms, p + 1, 4);
  m->perms[4] = '\0';
  p = parse_hex(p + 6, end, &offset, &digits);
  if (digits == 0) return false;
  p = skip_spaces(p, end);
  while (p < end && *p != ' ') ++p;  // major:minor
  p = skip_spaces(p, end);
  p = parse_decimal(p, end, &inode, &digits);
  if (digits == 0) return false;
  p = skip_spaces(p, end);
  m->start = static_cast<uintptr_t>(start);
  m->end = static_cast<uintptr_t>(stop);
  m->offset = offset;
  m->inode = inode;
  m->path = p;
  m->path_len = static_cast<size_t>(end - p);
  return true;
}

bool next_in_text(const char** p, const char* end, Mapping* m) {
  while (*p < end) {
    const char* line = *p;
    const char* nl = static_cast<const char*>(memchr(line, '\n', static_cast<size_t>(end - line)));
    if (nl == nullptr) nl = end;
    *p = nl < end ? nl + 1 : end;
    if (parse_line(line, nl, m)) return true;
  }
  return false;
}

Reader::~Reader() {
  if (fd_ >= 0) close(fd_);
}

bool Reader::open(int pid) {
  char path[32] = "/proc/self/maps";
  if (pid > 0) {
    char digits[16];
    int n = 0;
    for (unsigned v = static_cast<unsigned>(pid); v != 0; v /= 10) {
      digits[n++] = static_cast<char>('0' + v % 10);
    }
    size_t len = 6;  // "/proc/"
    while (n > 0) path[len++] = digits[--n];
    memcpy(path + len, "/maps", 6);
  }
  if (fd_ >= 0) close(fd_);
  begin_ = len_ = 0;
  eof_ = false;
  fd_ = ::open(path, O_RDONLY | O_CLOEXEC);
  return fd_ >= 0;
}

bool Reader::next(Mapping* m) {
  if (fd_ < 0 || cap_ < 2) return false;
  bool skipping = false;  // inside a line longer than the buffer
  while (true) {
    char* nl = static_cast<char*>(memchr(buf_ + begin_, '\n', len_ - begin_));
    if (nl != nullptr || (eof_ && begin_ < len_)) {
      char* line = buf_ + begin_;
      char* line_end = nl != nullptr ? nl : buf_ + len_;
      *line_end = '\0';  // there is room: reads leave the buffer's last byte free
      begin_ = static_cast<size_t>(line_end - buf_) + 1;
      if (begin_ > len_) begin_ = len_;
      if (skipping) {
        skipping = false;
        continue;
      }
      if (parse_line(line, line_end, m)) return true;
      continue;
    }
    if (eof_) return false;
    // No whole line left: keep the partial one, at the front, and read more behind it.
    if (begin_ > 0) {
      memmove(buf_, buf_ + begin_, len_ - begin_);
      len_ -= begin_;
      begin_ = 0;
    }
    if (len_ == cap_ - 1) {  // a line that cannot fit: drop what there is of it
      skipping = true;
      len_ = 0;
    }
    ssize_t got = read(fd_, buf_ + len_, cap_ - 1 - len_);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return false;
    if (got == 0) {
      eof_ = true;
      continue;
    }
    len_ += static_cast<size_t>(got);
  }
}

}  // namespace pg::maps
