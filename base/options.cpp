// The option parser of base/options.h, driven by the table in base/options.inc: environment
// lookup, value syntax, warnings, and the generated help and Markdown.
#include "base/options.h"

#include <unistd.h>

#include <cstring>

#include "base/format.h"
#include "base/os.h"
#include "base/report.h"

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
#include "base/options.inc"
#undef POOLGUARD_OPTION
};

// Names that are not options (options.inc): no warning about them.
constexpr const char* kNotOptions[] = {
#define POOLGUARD_NOT_OPTION(name) #name,
#include "base/options.inc"
#undef POOLGUARD_NOT_OPTION
};

// ASCII lower case, for comparisons that ignore case.
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
bool equal_nocase(const char* a, const char* b) {
  for (; *a && *b; ++a, ++b) {
    if (lower(*a) != lower(*b)) return false;
  }
  return *a == *b;
}

// One boolean syntax for every on/off option: on, 1, yes, true / off, 0, no, false, in any case.
// *on gets the value; false when `text` is none of them.
bool parse_boolean(const char* text, bool* on) {
  for (const char* t : {"on", "1", "yes", "true"}) {
    if (equal_nocase(text, t)) return *on = true;
  }
  for (const char* f : {"off", "0", "no", "false"}) {
    if (equal_nocase(text, f)) {
      *on = false;
      return true;
    }
  }
  return false;
}

// Index of `text` among the '|'-separated `values`; false if absent. An on/off option (values
// "on|off" or "off|on") takes every boolean spelling (parse_boolean).
bool parse_enum(const char* values, const char* text, uint64_t* out) {
  bool on_first = strcmp(values, "on|off") == 0;
  if (on_first || strcmp(values, "off|on") == 0) {
    bool on;
    if (!parse_boolean(text, &on)) return false;
    *out = on == on_first ? 0 : 1;
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
    uint64_t digit = static_cast<uint64_t>(*p - '0');
    if (v > (UINT64_MAX - digit) / 10) return false;  // v * 10 + digit would overflow
    v = v * 10 + digit;
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

size_t name_distance(const char* a, const char* b) {
  size_t n = strlen(a), m = strlen(b);
  if (n > 63 || m > 63) return SIZE_MAX;
  size_t d[64][64];
  for (size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (size_t i = 1; i <= n; ++i) {
    for (size_t j = 1; j <= m; ++j) {
      size_t cost = lower(a[i - 1]) == lower(b[j - 1]) ? 0 : 1;
      size_t best = d[i - 1][j - 1] + cost;
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && lower(a[i - 1]) == lower(b[j - 2]) &&
          lower(a[i - 2]) == lower(b[j - 1]) && d[i - 2][j - 2] + 1 < best) {
        best = d[i - 2][j - 2] + 1;
      }
      d[i][j] = best;
    }
  }
  return d[n][m];
}

bool option_known(const char* name) {
  for (const OptionSpec& s : kSpecs) {
    if (strcmp(s.name, name) == 0) return true;
  }
  return false;
}

const char* option_values(const char* name) {
  for (const OptionSpec& s : kSpecs) {
    if (strcmp(s.name, name) == 0) return s.values;
  }
  return "";
}

const char* option_nearest(const char* name) {
  const char* nearest = nullptr;
  size_t best = SIZE_MAX;
  for (const OptionSpec& s : kSpecs) {
    size_t d = name_distance(name, s.name);
    if (d < best) best = d, nearest = s.name;
  }
  // Close: a few edits, and fewer than a third of the name's length.
  if (nearest != nullptr && best <= 3 && best * 3 <= strlen(nearest)) return nearest;
  return nullptr;
}

namespace {

// Every POOLGUARD_* variable of the environment that is not an option gets one line naming the
// nearest option, if one is close: a misspelling would otherwise be ignored without a word.
void warn_unknown_names() {
  constexpr char kPrefix[] = "POOLGUARD_";
  constexpr size_t kPrefixLen = sizeof kPrefix - 1;
  for (char** e = os::environment(); e != nullptr && *e != nullptr; ++e) {
    if (strncmp(*e, kPrefix, kPrefixLen) != 0) continue;
    const char* name = *e + kPrefixLen;
    const char* eq = strchr(name, '=');
    if (eq == nullptr) continue;
    char given[64];
    size_t len = static_cast<size_t>(eq - name);
    if (len >= sizeof given) len = sizeof given - 1;
    memcpy(given, name, len);
    given[len] = '\0';
    bool known = option_known(given);
    for (const char* n : kNotOptions) known = known || strcmp(n, given) == 0;
    if (known) continue;
    const char* nearest = option_nearest(given);
    TextBuffer<512> line;
    line.str("poolguard: POOLGUARD_").str(given).str(" is not an option");
    if (nearest != nullptr) line.str(" (did you mean POOLGUARD_").str(nearest).str("?)");
    line.str("; ignored (docs/OPTIONS.md lists the options)\n");
    line.flush(STDERR_FILENO);
  }
}

}  // namespace

void options_load() {
  g_options = make_defaults();
  warn_unknown_names();
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

namespace {

// Text for roff (the man page): a backslash is written \e, and `code` in bold.
template <size_t N>
void roff_text(TextBuffer<N>& out, const char* text) {
  bool code = false;
  for (const char* t = text; *t; ++t) {
    if (*t == '\\') {
      out.str("\\e");
    } else if (*t == '`') {
      out.str(code ? "\\fR" : "\\fB");
      code = !code;
    } else {
      out.chr(*t);
    }
  }
  if (code) out.str("\\fR");
}

}  // namespace

void options_write_man(int fd) {
  TextBuffer<16384> out;
  for (const OptionSpec& s : kSpecs) {
    // .TP, then the tag line "POOLGUARD_NAME=values (default d)", then the meaning; "\&" keeps a
    // line from starting with a control character.
    out.str(".TP\n\\fBPOOLGUARD_").str(s.name).str("=\\fI");
    roff_text(out, s.values);
    out.str("\\fR (default ");
    if (*s.def == '\0') {
      out.str("empty");
    } else {
      out.str("\\fB");
      roff_text(out, s.def);
      out.str("\\fR");
    }
    out.str(")\n\\&");
    roff_text(out, s.doc);
    out.str("\n");
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
