// A fixed-capacity text buffer for reports and summaries: formats into memory it owns (on the
// stack), never allocates, and flushes with write(2). Async-signal-safe. Text that does not fit is
// cut, and the cut is marked with "...".
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/os.h"

namespace pg {

// Length of the well-formed UTF-8 sequence at s (1 to 4 bytes; s[0] != 0), or 0 when s does not
// start one (a stray continuation byte, an overlong form, a surrogate, a code point past U+10FFFF,
// a sequence cut by the end of the string). JSON text must be UTF-8: process names, paths and
// symbols may hold any bytes.
inline size_t utf8_sequence(const unsigned char* s) {
  unsigned char c = s[0];
  if (c < 0x80) return 1;
  auto cont = [](unsigned char b, unsigned char lo = 0x80, unsigned char hi = 0xbf) {
    return b >= lo && b <= hi;
  };
  if (c >= 0xc2 && c <= 0xdf) return cont(s[1]) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    unsigned char lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
    return cont(s[1], lo, hi) && cont(s[2]) ? 3 : 0;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    unsigned char lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
    return cont(s[1], lo, hi) && cont(s[2]) && cont(s[3]) ? 4 : 0;
  }
  return 0;
}

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
  // A byte that is not part of well-formed UTF-8 becomes U+FFFD, so the text stays valid JSON.
  TextBuffer& json_str(const char* s) {
    put('"');
    while (*s) {
      unsigned char c = static_cast<unsigned char>(*s);
      if (c == '"' || c == '\\') {
        put('\\');
        put(static_cast<char>(c));
      } else if (c < 0x20) {
        str("\\u00");
        put("0123456789abcdef"[c >> 4]);
        put("0123456789abcdef"[c & 15]);
      } else if (c >= 0x80) {
        size_t n = utf8_sequence(reinterpret_cast<const unsigned char*>(s));
        if (n == 0) {
          str("\\ufffd");
          ++s;
          continue;
        }
        for (size_t i = 0; i < n; ++i) put(s[i]);
        s += n;
        continue;
      } else {
        put(static_cast<char>(c));
      }
      ++s;
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
