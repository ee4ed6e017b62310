// The output helpers of tools/text.h.
#include "tools/text.h"

#include "base/format.h"

#include <cmath>
#include <cstdio>
#include <ctime>

namespace pg::tool {

std::string bytes(uint64_t n) {
  static const char* const kUnits[] = {"KiB", "MiB", "GiB", "TiB"};
  if (n < 1024) return std::to_string(n) + " B";
  double v = static_cast<double>(n) / 1024;
  int u = 0;
  while (v >= 1024 && u < 3) v /= 1024, ++u;
  char buf[32];
  snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  // A NUL-terminated copy, so that utf8_sequence never reads past the end (an embedded NUL is
  // escaped below before the check is reached).
  const char* p = s.c_str();
  for (size_t i = 0; i < s.size();) {
    unsigned char c = static_cast<unsigned char>(p[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else if (c >= 0x80) {
      // Bytes that are not well-formed UTF-8 (a process may name itself anything) become U+FFFD.
      size_t n = pg::utf8_sequence(reinterpret_cast<const unsigned char*>(p + i));
      if (n == 0) {
        out += "\\ufffd";
        ++i;
      } else {
        out.append(p + i, n);
        i += n;
      }
      continue;
    } else {
      out += static_cast<char>(c);
    }
    ++i;
  }
  return out + "\"";
}

std::string iso_time(uint64_t unix_ns) {
  time_t secs = static_cast<time_t>(unix_ns / 1000000000u);
  struct tm tm;
  if (gmtime_r(&secs, &tm) == nullptr) return "";
  char buf[48];
  size_t n = strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + n, sizeof buf - n, ".%03uZ", static_cast<unsigned>(unix_ns / 1000000u % 1000u));
  return buf;
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) v = 0;
  char buf[48];
  snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

double ratio(uint64_t a, uint64_t b) {
  return b == 0 ? 0.0 : static_cast<double>(a) / static_cast<double>(b);
}

std::string hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

size_t code_points(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (c & 0xc0) != 0x80;
  return n;
}

std::string first_code_points(const std::string& s, size_t n) {
  size_t i = 0;
  for (size_t seen = 0; i < s.size(); ++i) {
    if ((s[i] & 0xc0) != 0x80 && seen++ == n) break;
  }
  return s.substr(0, i);
}

}  // namespace pg::tool
