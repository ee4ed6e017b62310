// A fixed-capacity text buffer for reports and summaries: formats into memory it owns (on the
// stack), never allocates, and flushes with write(2). Async-signal-safe. Text that does not fit is
// cut, and the cut is marked with "...".
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/os.h"

namespace pg {

template <size_t N>
class TextBuffer {
 public:
  TextBuffer& str(const char* s) {
    while (*s) put(*s++);
    return *this;
  }
  TextBuffer& chr(char c) {
    put(c);
    return *this;
  }
  TextBuffer& u64(uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    while (n) put(tmp[--n]);
    return *this;
  }
  TextBuffer& i64(int64_t v) {
    if (v < 0) {
      put('-');
      return u64(static_cast<uint64_t>(-(v + 1)) + 1);
    }
    return u64(static_cast<uint64_t>(v));
  }
  TextBuffer& hex(uint64_t v) {
    str("0x");
    char tmp[16];
    int n = 0;
    do {
      tmp[n++] = "0123456789abcdef"[v & 15];
      v >>= 4;
    } while (v);
    while (n) put(tmp[--n]);
    return *this;
  }
  TextBuffer& ptr(const void* p) { return hex(reinterpret_cast<uintptr_t>(p)); }
  // Right-aligns the decimal v in a field of `width` characters.
  TextBuffer& u64w(uint64_t v, int width) {
    int digits = 1;
    for (uint64_t t = v; t >= 10; t /= 10) ++digits;
    for (int i = digits; i < width; ++i) put(' ');
    return u64(v);
  }
  // Fixed point with one decimal: ratio num/den as "12.3".
  TextBuffer& fixed1(uint64_t num, uint64_t den) {
    if (den == 0) return str("0.0");
    uint64_t tenths = (num * 10 + den / 2) / den;
    u64(tenths / 10).put('.');
    return u64(tenths % 10);
  }
  // A JSON string value: quotes and escapes.
  TextBuffer& json_str(const char* s) {
    put('"');
    for (; *s; ++s) {
      unsigned char c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        put('\\');
        put(static_cast<char>(c));
      } else if (c < 0x20) {
        str("\\u00");
        put("0123456789abcdef"[c >> 4]);
        put("0123456789abcdef"[c & 15]);
      } else {
        put(static_cast<char>(c));
      }
    }
    put('"');
    return *this;
  }
  const char* data() const { return buf_; }
  size_t size() const { return len_; }
  void clear() { len_ = 0, cut_ = false; }
  // Writes the buffer (plus "..." if text was cut) to fd and empties it.
  void flush(int fd) {
    if (cut_ && len_ >= 4) {
      buf_[len_ - 4] = '.', buf_[len_ - 3] = '.', buf_[len_ - 2] = '.', buf_[len_ - 1] = '\n';
    }
    os::write_all(fd, buf_, len_);
    clear();
  }

 private:
  TextBuffer& put(char c) {
    if (len_ < N) {
      buf_[len_++] = c;
    } else {
      cut_ = true;
    }
    return *this;
  }
  char buf_[N];
  size_t len_ = 0;
  bool cut_ = false;
};

}  // namespace pg
