// A small, strict JSON parser (RFC 8259) for the files the tools read back, such as recordings
// (docs/TIMELINE.md): objects, arrays, strings with every escape (\uXXXX with surrogate pairs),
// numbers, true, false and null. Integers are kept exactly as 64-bit values (byte counts and
// addresses do not survive a trip through a double); other numbers are doubles. Anything RFC 8259
// does not allow is an error with its byte offset: comments, trailing commas, single quotes,
// leading zeros, lone surrogates, invalid UTF-8, control characters in strings, duplicate keys,
// text after the value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pg::json {

class Value {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  using Member = std::pair<std::string, Value>;

  Value() = default;

  Kind kind() const { return kind_; }
  bool is_null() const { return kind_ == Kind::kNull; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_number() const { return kind_ == Kind::kNumber; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_object() const { return kind_ == Kind::kObject; }

  bool as_bool() const { return bool_; }  // false unless a bool
  // A number as a double (integers above 2^53 rounded); 0 unless a number.
  double as_double() const;
  // The exact value of an integer literal (no fraction or exponent) within range: false for
  // anything else, so that 1.5, 1e3, -1 (for u64) and 2^64 are refused rather than rounded.
  bool to_u64(uint64_t* out) const;
  bool to_i64(int64_t* out) const;
  const std::string& as_string() const { return string_; }         // empty unless a string
  const std::vector<Value>& items() const { return items_; }       // an array's, in order
  const std::vector<Member>& members() const { return members_; }  // an object's, in order
  // An object's member named `key`, or null when there is none (or this is not an object).
  const Value* find(std::string_view key) const;

 private:
  friend class Parser;
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  // Numbers: an integer literal that fits is exact in int_ (negative) or uint_ (not negative);
  // every number also has its double.
  enum class Int { kNone, kSigned, kUnsigned } int_kind_ = Int::kNone;
  int64_t int_ = 0;
  uint64_t uint_ = 0;
  double double_ = 0;
  std::string string_;
  std::vector<Value> items_;
  std::vector<Member> members_;
};

struct Error {
  size_t offset = 0;    // bytes from the start of the text to where it went wrong
  std::string message;  // "expected ',' or '}'", "invalid escape '\\q'", ...
};

// The deepest nesting of arrays and objects accepted (the parser recurses once per level).
constexpr int kMaxDepth = 200;

// Parses `text`, which must hold exactly one value (whitespace around it allowed). Returns true
// and sets *out, or returns false and sets *error.
bool parse(std::string_view text, Value* out, Error* error);

}  // namespace pg::json
