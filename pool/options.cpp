#include "pool/options.h"

#include <unistd.h>

#include <cstring>

#include "pool/format.h"
#include "pool/os.h"
#include "pool/report.h"

namespace pg {

namespace {

enum class Kind { Enum, Size, Percents, Path };

struct OptionSpec {
  const char* name;
  Kind kind;
  const char* def;
  const char* values;
  const char* doc;
  size_t offset;
};

constexpr OptionSpec kSpecs[] = {
#define POOLGUARD_OPTION(kind, name, def, values, doc) \
  {#name, Kind::kind, def, values, doc, offsetof(Options, name)},
#include "pool/options.inc"
#undef POOLGUARD_OPTION
};

// Index of `text` among the '|'-separated `values`; false if absent. An off|on option also takes
// 0 and 1 (POOLGUARD_LEAKS=1).
bool parse_enum(const char* values, const char* text, uint64_t* out) {
  if (strcmp(values, "off|on") == 0 && (strcmp(text, "0") == 0 || strcmp(text, "1") == 0)) {
    *out = text[0] == '1' ? 1 : 0;
    return true;
  }
  size_t len = strlen(text);
  uint64_t idx = 0;
  for (const char* v = values;; ++idx) {
    const char* bar = strchr(v, '|');
    size_t n = bar ? static_cast<size_t>(bar - v) : strlen(v);
    if (n == len && strncmp(v, text, n) == 0) {
      *out = idx;
      return true;
    }
    if (bar == nullptr) return false;
    v = bar + 1;
  }
}

// Up to 8 comma-separated whole percentages 1..100, packed one per byte (see options.h).
bool parse_percents(const char* text, uint64_t* out) {
  uint64_t packed = 0;
  int count = 0;
  if (*text == '\0') {
    *out = 0;
    return true;
  }
  for (const char* p = text;;) {
    if (*p < '0' || *p > '9' || count == 8) return false;
    uint64_t v = 0;
    for (; *p >= '0' && *p <= '9'; ++p) {
      v = v * 10 + static_cast<uint64_t>(*p - '0');
      if (v > 100) return false;
    }
    if (v == 0) return false;
    packed |= v << (8 * count++);
    if (*p == '\0') break;
    if (*p != ',') return false;
    ++p;
  }
  *out = packed;
  return true;
}

// A Size option whose `values` reads "LO..HI" (plain numbers) takes only values in that range.
bool size_in_range(const char* values, uint64_t v) {
  const char* dots = strstr(values, "..");
  if (dots == nullptr) return true;
  uint64_t lo = 0, hi = 0;
  for (const char* p = values; p < dots; ++p) lo = lo * 10 + static_cast<uint64_t>(*p - '0');
  for (const char* p = dots + 2; *p; ++p) hi = hi * 10 + static_cast<uint64_t>(*p - '0');
  return v >= lo && v <= hi;
}

bool parse_spec(const OptionSpec& s, const char* text, uint64_t* out) {
  switch (s.kind) {
    case Kind::Enum:
      return parse_enum(s.values, text, out);
    case Kind::Size:
      return parse_size(text, out) && size_in_range(s.values, *out);
    case Kind::Percents:
      return parse_percents(text, out);
    case Kind::Path:
      if (*text == '\0') return false;
      *out = reinterpret_cast<uintptr_t>(text);  // environ strings live as long as the process
      return true;
  }
  return false;
}

Options make_defaults() {
  Options o{};
  for (const OptionSpec& s : kSpecs) {
    uint64_t v = 0;
    parse_spec(s, s.def, &v);
    memcpy(reinterpret_cast<char*>(&o) + s.offset, &v, sizeof v);
  }
  return o;
}

// Zero until options_load() runs (no dynamic initialiser: malloc may run before constructors).
Options g_options;

}  // namespace

bool parse_size(const char* text, uint64_t* out) {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  uint64_t v = 0;
  const char* p = text;
  for (; *p >= '0' && *p <= '9'; ++p) {
    if (v > (UINT64_MAX - 9) / 10) return false;
    v = v * 10 + static_cast<uint64_t>(*p - '0');
  }
  int shift = 0;
  switch (*p) {
    case '\0':
      break;
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
  if (*p != '\0') {
    ++p;
    if (*p == 'i') ++p;  // KiB, MiB ...
    if (*p == 'b' || *p == 'B') ++p;
    if (*p != '\0') return false;
  }
  if (shift && v > (UINT64_MAX >> shift)) return false;
  *out = v << shift;
  return true;
}

const Options& options() {
  return g_options;
}

bool option_parse(const char* name, const char* text, uint64_t* out) {
  for (const OptionSpec& s : kSpecs) {
    if (strcmp(s.name, name) == 0) return parse_spec(s, text, out);
  }
  return false;
}

void options_load() {
  g_options = make_defaults();
  for (const OptionSpec& s : kSpecs) {
    char var[64];
    TextBuffer<64> nb;
    nb.str("POOLGUARD_").str(s.name);
    memcpy(var, nb.data(), nb.size());
    var[nb.size()] = '\0';
    const char* text = os::env(var);
    if (text == nullptr) continue;
    uint64_t v;
    if (parse_spec(s, text, &v)) {
      memcpy(reinterpret_cast<char*>(&g_options) + s.offset, &v, sizeof v);
    } else {
      TextBuffer<512> line;
      line.str("poolguard: ")
          .str(var)
          .str("=")
          .json_str(text)
          .str(" is not valid (expected ")
          .str(s.values)
          .str("); using the default ")
          .str(s.def)
          .chr('\n');
      line.flush(STDERR_FILENO);  // at start-up, before anything else: fd 2 is still stderr
    }
  }
}

void options_write_markdown(int fd) {
  TextBuffer<16384> out;
  out.str("| variable | values | default | meaning |\n|---|---|---|---|\n");
  for (const OptionSpec& s : kSpecs) {
    out.str("| `POOLGUARD_").str(s.name).str("` | ");
    // One code span per value: a bare '|' would end the table cell.
    for (const char* v = s.values; *v;) {
      const char* bar = strchr(v, '|');
      size_t n = bar ? static_cast<size_t>(bar - v) : strlen(v);
      char one[64];
      if (n >= sizeof one) n = sizeof one - 1;
      memcpy(one, v, n);
      one[n] = '\0';
      out.chr('`').str(one).chr('`');
      if (bar == nullptr) break;
      out.str(", ");
      v = bar + 1;
    }
    out.str(" | `").str(s.def).str("` | ").str(s.doc).str(" |\n");
  }
  out.flush(fd);
}

void options_write_help(int fd) {
  TextBuffer<16384> out;
  out.str("Environment variables read by libpoolguard.so:\n");
  for (const OptionSpec& s : kSpecs) {
    out.str("  POOLGUARD_")
        .str(s.name)
        .str("=")
        .str(s.values)
        .str("  (default ")
        .str(s.def)
        .str(")\n      ")
        .str(s.doc)
        .str("\n");
  }
  out.flush(fd);
}

}  // namespace pg
