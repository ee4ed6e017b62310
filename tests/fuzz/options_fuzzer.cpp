// options_fuzzer: libFuzzer target for the option parser (pg::option_parse, pg::parse_size; linked
// from pgcore_fuzz). The option table is read from base/options.inc, as the core reads it, and
// each answer is checked against a reference parser written here from the documented syntax:
//   Enum      one of the '|'-separated values (its index); an off|on option also takes 0 and 1
//   Size      digits, then optionally K, M, G or T (either case, powers of 1024), optionally
//             followed by 'i' and then optionally by 'B' or 'b' (KiB, kb ...); exact value, refused
//             when it does not fit in 64 bits; "LO..HI" in the table bounds it
//   Percents  "" or up to 8 comma-separated whole numbers 1..100 (leading zeros allowed)
//   Path      any non-empty string (the result points at the text itself)
// and an unknown name is refused. Properties on top: an accepted size formatted again (in
// decimal, and with each suffix that divides it) parses to the same value; accepted percentages
// formatted again parse to the same packed value.
//
// Input layout (options_input.h): the first byte picks the target (an option of the table,
// parse_size, an invented name, a real name changed slightly), the rest is the value, which ends
// at the first NUL byte, as an environment string would.
#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "base/options.h"
#include "tests/fuzz/options_input.h"

namespace {

using namespace pg_fuzz::opt;  // the option table and the input format (options_input.h)

[[noreturn]] __attribute__((format(printf, 1, 2))) void fail(const char* fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  fprintf(stderr, "options_fuzzer: MODEL MISMATCH: %s\n", msg);
  abort();
}

// Printable form of a value for the reports (it may hold any byte).
std::string show(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char esc[8];
      snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    }
  }
  return out + "\"";
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

// The reference Size parser. Values are accumulated in 128 bits and saturate, so that "too big"
// is decided exactly.
bool ref_size(std::string_view s, uint64_t* out) {
  size_t i = 0;
  unsigned __int128 v = 0;
  const unsigned __int128 kCap = static_cast<unsigned __int128>(1) << 70;  // << 40 still fits
  while (i < s.size() && is_digit(s[i])) {
    v = v * 10 + static_cast<unsigned>(s[i] - '0');
    if (v > kCap) v = kCap;
    ++i;
  }
  if (i == 0) return false;
  int shift = 0;
  if (i < s.size()) {
    switch (s[i]) {
      case 'k':
      case 'K':
        shift = 10;
        break;
      case 'm':
      case 'M':
        shift = 20;
        break;
      case 'g':
      case 'G':
        shift = 30;
        break;
      case 't':
      case 'T':
        shift = 40;
        break;
      default:
        return false;
    }
    ++i;
    if (i < s.size() && s[i] == 'i') ++i;
    if (i < s.size() && (s[i] == 'b' || s[i] == 'B')) ++i;
    if (i != s.size()) return false;
  }
  v <<= shift;
  if (v > UINT64_MAX) return false;
  *out = static_cast<uint64_t>(v);
  return true;
}

// "LO..HI" bounds of a Size option, if its `values` has them.
bool ref_range(const char* values, uint64_t* lo, uint64_t* hi) {
  std::string_view v(values);
  size_t dots = v.find("..");
  if (dots == std::string_view::npos) return false;
  *lo = strtoull(std::string(v.substr(0, dots)).c_str(), nullptr, 10);
  *hi = strtoull(std::string(v.substr(dots + 2)).c_str(), nullptr, 10);
  return true;
}

// One of the boolean spellings every on/off option takes, in any case (base/options.inc).
bool ref_boolean(std::string_view s, bool* on) {
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  if (lower.size() != s.size()) return false;
  for (const char* t : {"on", "1", "yes", "true"}) {
    if (lower == t) return *on = true;
  }
  for (const char* f : {"off", "0", "no", "false"}) {
    if (lower == f) {
      *on = false;
      return true;
    }
  }
  return false;
}

bool ref_enum(const char* values, std::string_view s, uint64_t* out) {
  std::string_view v(values);
  if (v == "off|on" || v == "on|off") {
    bool on;
    if (!ref_boolean(s, &on)) return false;
    *out = (v == "on|off") == on ? 0 : 1;
    return true;
  }
  uint64_t idx = 0;
  for (;;) {
    size_t bar = v.find('|');
    if (v.substr(0, bar) == s) {
      *out = idx;
      return true;
    }
    if (bar == std::string_view::npos) return false;
    v.remove_prefix(bar + 1);
    ++idx;
  }
}

bool ref_percents(std::string_view s, uint64_t* out) {
  if (s.empty()) {
    *out = 0;
    return true;
  }
  uint64_t packed = 0;
  int count = 0;
  for (;;) {
    size_t comma = s.find(',');
    std::string_view part = s.substr(0, comma);
    if (part.empty() || count == 8) return false;
    uint64_t v = 0;
    for (char c : part) {
      if (!is_digit(c)) return false;
      v = v * 10 + static_cast<uint64_t>(c - '0');
      if (v > 100) return false;
    }
    if (v == 0) return false;
    packed |= v << (8 * count++);
    if (comma == std::string_view::npos) break;
    s.remove_prefix(comma + 1);
  }
  *out = packed;
  return true;
}

void check_size_reformat(uint64_t v, const std::string& from) {
  char buf[64];
  uint64_t back = 0;
  snprintf(buf, sizeof buf, "%" PRIu64, v);
  if (!pg::parse_size(buf, &back) || back != v) {
    fail("parse_size(%s) = %" PRIu64 ", but %s does not parse back to it", show(from).c_str(), v,
         buf);
  }
  static const char* const kSuffixes[][4] = {{"K", "k", "KiB", "kb"},
                                             {"M", "m", "MiB", "mB"},
                                             {"G", "g", "GiB", "Gb"},
                                             {"T", "t", "TiB", "tB"}};
  for (int s = 0; s < 4; ++s) {
    int shift = 10 * (s + 1);
    if (v % (uint64_t{1} << shift) != 0) continue;
    for (const char* suffix : kSuffixes[s]) {
      snprintf(buf, sizeof buf, "%" PRIu64 "%s", v >> shift, suffix);
      if (!pg::parse_size(buf, &back) || back != v) {
        fail("parse_size(%s) = %" PRIu64 ", but %s does not parse back to it", show(from).c_str(),
             v, buf);
      }
    }
  }
}

void check_parse_size(const std::string& text) {
  uint64_t want = 0, got = 0;
  bool ok_want = ref_size(text, &want);
  bool ok_got = pg::parse_size(text.c_str(), &got);
  if (ok_want != ok_got || (ok_got && want != got)) {
    fail("parse_size(%s): got %s %" PRIu64 ", expected %s %" PRIu64, show(text).c_str(),
         ok_got ? "true" : "false", ok_got ? got : 0, ok_want ? "true" : "false",
         ok_want ? want : 0);
  }
  if (ok_got) check_size_reformat(got, text);
}

void check_option(const Spec& spec, const std::string& text) {
  uint64_t want = 0, got = 0;
  bool ok_want = false;
  switch (spec.kind) {
    case Kind::Enum:
      ok_want = ref_enum(spec.values, text, &want);
      break;
    case Kind::Size: {
      ok_want = ref_size(text, &want);
      uint64_t lo, hi;
      if (ok_want && ref_range(spec.values, &lo, &hi)) ok_want = want >= lo && want <= hi;
      break;
    }
    case Kind::Percents:
      ok_want = ref_percents(text, &want);
      break;
    case Kind::Path:
      ok_want = !text.empty();
      want = reinterpret_cast<uintptr_t>(text.c_str());
      break;
  }
  bool ok_got = pg::option_parse(spec.name, text.c_str(), &got);
  if (ok_want != ok_got || (ok_got && want != got)) {
    fail("option_parse(%s, %s): got %s %#" PRIx64 ", expected %s %#" PRIx64, spec.name,
         show(text).c_str(), ok_got ? "true" : "false", ok_got ? got : 0,
         ok_want ? "true" : "false", ok_want ? want : 0);
  }
  if (!ok_got) return;
  if (spec.kind == Kind::Size) check_size_reformat(got, text);
  if (spec.kind == Kind::Percents) {
    // Formatted again from the packed bytes, the list parses to the same packed value.
    std::string again;
    for (int i = 0; i < 8 && pg::option_percent(got, i) != 0; ++i) {
      if (i > 0) again += ',';
      again += std::to_string(pg::option_percent(got, i));
    }
    uint64_t back = 0;
    if (!pg::option_parse(spec.name, again.c_str(), &back) || back != got) {
      fail("option_parse(%s, %s) = %#" PRIx64 ", but %s does not parse back to it", spec.name,
           show(text).c_str(), got, show(again).c_str());
    }
  }
}

// A name that is not in the table must be refused, whatever the value.
void check_unknown(const std::string& name, const std::string& text) {
  for (const Spec& s : kSpecs) {
    if (name == s.name) return check_option(s, text);
  }
  uint64_t out = 0;
  if (pg::option_parse(name.c_str(), text.c_str(), &out)) {
    fail("option_parse(%s, %s) accepted an unknown option", show(name).c_str(), show(text).c_str());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Every default in the table must parse as its own option would parse it.
  for (const Spec& s : kSpecs) {
    uint64_t v;
    if (!pg::option_parse(s.name, s.def, &v))
      fail("default %s of %s does not parse", s.def, s.name);
  }
  uint64_t v = 1;
  if (pg::parse_size(nullptr, &v)) fail("parse_size(NULL) accepted");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  uint8_t pick = data[0];
  // The value ends at the first NUL, as an environment string does.
  std::string rest(reinterpret_cast<const char*>(data + 1), size - 1);
  std::string text = rest.substr(0, rest.find('\0'));
  size_t target = pick % kNumTargets;
  if (target < kNumSpecs) {
    check_option(kSpecs[target], text);
  } else if (target == kTargetParseSize) {
    check_parse_size(text);
  } else if (target == kTargetInventedName) {
    size_t eq = text.find('=');
    if (eq == std::string::npos) {
      check_unknown(text, "");
    } else {
      check_unknown(text.substr(0, eq), text.substr(eq + 1));
    }
  } else {
    // The value's first byte picks the real name and how it is changed.
    uint8_t b = text.empty() ? 0 : static_cast<uint8_t>(text[0]);
    const Spec& s = kSpecs[b % kNumSpecs];
    check_unknown(near_name(s.name, static_cast<uint8_t>(b / kNumSpecs)),
                  text.empty() ? text : text.substr(1));
  }
  return 0;
}
