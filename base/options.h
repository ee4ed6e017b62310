// Runtime options (POOLGUARD_* environment variables), generated from base/options.inc.
#pragma once

#include <cstdint>

namespace pg {

struct Options {
#define POOLGUARD_OPTION(kind, name, def, values, doc) uint64_t name;
#include "base/options.inc"
#undef POOLGUARD_OPTION
};

// Index of each Enum option's values, in the order of their `values` string.
enum StatsMode : uint64_t { kStatsOff = 0, kStatsExit = 1 };
enum OnErrorMode : uint64_t { kOnErrorAbort = 0, kOnErrorReport = 1 };
enum OnLimitMode : uint64_t { kOnLimitNull = 0, kOnLimitAbort = 1, kOnLimitWarn = 2 };
enum GuardOption : uint64_t { kGuardOff = 0, kGuardRedzone = 1, kGuardPage = 2 };  // = GuardMode
enum GuardFillMode : uint64_t { kGuardFillOff = 0, kGuardFillOn = 1 };
enum LeaksMode : uint64_t { kLeaksOff = 0, kLeaksOn = 1 };
enum SegmentMode : uint64_t { kSegmentOn = 0, kSegmentOff = 1 };

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

// Writes the options as a Markdown table (docs/OPTIONS.md) or as --help text to fd.
void options_write_markdown(int fd);
void options_write_help(int fd);

// Parses a size with an optional K/M/G/T suffix (powers of 1024). false if malformed or too big.
bool parse_size(const char* text, uint64_t* out);

}  // namespace pg
