// The input format of options_fuzzer and the option table it reads from base/options.inc, shared
// with make_seeds.cpp (one definition, so that the seeds mean what they say).
//
// The first byte picks the target, modulo kNumTargets: an option of the table (the rest of the
// input is its value), parse_size, a name made from the input (up to the first '=', the value
// after it), or a real name changed slightly (the value's first byte picks the name, by its
// remainder modulo kNumSpecs, and the change, by the quotient; the rest is the value).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace pg_fuzz::opt {

enum class Kind { Enum, Size, Percents, Path };

struct Spec {
  const char* name;
  Kind kind;
  const char* def;
  const char* values;
};

inline constexpr Spec kSpecs[] = {
#define POOLGUARD_OPTION(kind, name, def, values, doc) {#name, Kind::kind, def, values},
#include "base/options.inc"
#undef POOLGUARD_OPTION
};
inline constexpr size_t kNumSpecs = sizeof kSpecs / sizeof kSpecs[0];

inline constexpr size_t kTargetParseSize = kNumSpecs;
inline constexpr size_t kTargetInventedName = kNumSpecs + 1;
inline constexpr size_t kTargetNearName = kNumSpecs + 2;
inline constexpr size_t kNumTargets = kNumSpecs + 3;
inline constexpr int kNumNearNameChanges = 5;

// Real names changed slightly: other case, the variable's full name, a character added or removed.
inline std::string near_name(const char* name, uint8_t how) {
  std::string n(name);
  switch (how % kNumNearNameChanges) {
    case 0:
      for (char& c : n) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
      return n;
    case 1:
      return "POOLGUARD_" + n;
    case 2:
      return n + " ";
    case 3:
      return n.substr(0, n.size() - 1);
    default:
      return n + "_";
  }
}

}  // namespace pg_fuzz::opt
