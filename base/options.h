// Runtime options (POOLGUARD_* environment variables), generated from base/options.inc.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pg {

struct Options {
#define POOLGUARD_OPTION(kind, name, def, values, doc) uint64_t name;
#include "base/options.inc"
#undef POOLGUARD_OPTION
};

namespace option_detail {
struct Declared {
  const char* name;
  const char* values;
};
inline constexpr Declared kDeclared[] = {
#define POOLGUARD_OPTION(kind, name, def, values, doc) {#name, values},
#include "base/options.inc"
#undef POOLGUARD_OPTION
};
constexpr bool same(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}
// Not constexpr: reaching it in option_value's compile-time evaluation is the compile error.
inline void no_such_option_value() {}
}  // namespace option_detail

// The stored number of value `value` of the Enum option `name` (its index in the option's
// `values` list in base/options.inc), computed from the table at compile time: a name or value
// the table does not declare does not compile.
consteval uint64_t option_value(const char* name, const char* value) {
  for (const option_detail::Declared& d : option_detail::kDeclared) {
    if (!option_detail::same(d.name, name)) continue;
    uint64_t index = 0;
    const char* v = d.values;
    for (;;) {
      const char* a = value;
      const char* b = v;
      while (*a != '\0' && *a == *b) ++a, ++b;
      if (*a == '\0' && (*b == '|' || *b == '\0')) return index;
      while (*v != '|' && *v != '\0') ++v;
      if (*v == '\0') break;
      ++v;
      ++index;
    }
  }
  option_detail::no_such_option_value();
  return 0;
}

inline constexpr uint64_t kStatsExit = option_value("STATS", "exit");
inline constexpr uint64_t kOnErrorReport = option_value("ON_ERROR", "report");
inline constexpr uint64_t kOnLimitNull = option_value("ON_LIMIT", "null");
inline constexpr uint64_t kOnLimitAbort = option_value("ON_LIMIT", "abort");
inline constexpr uint64_t kOnLimitWarn = option_value("ON_LIMIT", "warn");
inline constexpr uint64_t kGuardOff = option_value("GUARD", "off");
inline constexpr uint64_t kGuardRedzone = option_value("GUARD", "redzone");
inline constexpr uint64_t kGuardPage = option_value("GUARD", "page");
inline constexpr uint64_t kGuardFillOn = option_value("GUARD_FILL", "on");
inline constexpr uint64_t kLeaksOn = option_value("LEAKS", "on");
inline constexpr uint64_t kLeaksReachableOn = option_value("LEAKS_REACHABLE", "on");
inline constexpr uint64_t kSegmentOn = option_value("SEGMENT", "on");

// Kinds of values (see options.inc): Enum and Size are stored as numbers; Percents packs up to 8
// values of 1..100 one per byte, lowest byte first, 0 ending the list; Path holds a pointer to
// the string (the environment's, or the default literal): read it with option_string().
inline const char* option_string(uint64_t v) {
  return reinterpret_cast<const char*>(v);
}
inline int option_percent(uint64_t packed, int i) {
  return static_cast<int>((packed >> (8 * i)) & 0xff);
}

// The options in force (defaults until options_load runs).
const Options& options();

// Reads every POOLGUARD_* variable from the environment (ignored in AT_SECURE processes). A
// malformed value prints one line on stderr naming the variable and keeps the default.
void options_load();

// Parses `text` as the option `name` would; false if it is malformed. For tests and tools.
bool option_parse(const char* name, const char* text, uint64_t* out);

// Whether NAME (without the POOLGUARD_ prefix) is an option of the table.
bool option_known(const char* name);
// The values NAME takes, as options.inc writes them ("off|exit", "SIZE", ...); "" if unknown.
const char* option_values(const char* name);
// The option nearest to NAME, for "did you mean": a few edits away (see name_distance) and fewer
// than a third of its length; null if none is that close.
const char* option_nearest(const char* name);
// Edit distance between a and b (insertions, deletions, substitutions and transpositions of
// adjacent characters, ignoring case), for names of up to 63 characters; SIZE_MAX beyond.
size_t name_distance(const char* a, const char* b);

// Writes the options as a Markdown table (docs/OPTIONS.md), as the roff list of the man page's
// ENVIRONMENT section (docs/poolguard.1) or as --help text to fd.
void options_write_markdown(int fd);
void options_write_man(int fd);
void options_write_help(int fd);

// Parses a size with an optional K/M/G/T suffix (powers of 1024). false if malformed or too big.
bool parse_size(const char* text, uint64_t* out);

}  // namespace pg
