// The strict JSON parser of tools/json.h: recursive descent over the text, one function per
// grammar rule of RFC 8259, stopping at the first error.
#include "tools/json.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace pg::json {

double Value::as_double() const {
  return kind_ == Kind::kNumber ? double_ : 0.0;
}

bool Value::to_u64(uint64_t* out) const {
  if (kind_ != Kind::kNumber || int_kind_ == Int::kNone) return false;
  if (int_kind_ == Int::kSigned) return false;  // negative
  *out = uint_;
  return true;
}

bool Value::to_i64(int64_t* out) const {
  if (kind_ != Kind::kNumber || int_kind_ == Int::kNone) return false;
  if (int_kind_ == Int::kSigned) {
    *out = int_;
    return true;
  }
  if (uint_ > static_cast<uint64_t>(INT64_MAX)) return false;
  *out = static_cast<int64_t>(uint_);
  return true;
}

const Value* Value::find(std::string_view key) const {
  for (const Member& m : members_) {
    if (m.first == key) return &m.second;
  }
  return nullptr;
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  bool parse_document(Value* out, Error* error) {
    skip_space();
    if (at_ == s_.size()) return fail("no value (empty text)", error);
    if (!value(out, 0)) return fail(message_, error);
    skip_space();
    if (at_ != s_.size()) return fail("text after the value", error);
    return true;
  }

 private:
  std::string_view s_;
  size_t at_ = 0;
  std::string message_;

  bool fail(const std::string& message, Error* error) {
    error->offset = at_;
    error->message = message;
    return false;
  }
  bool wrong(std::string message) {
    message_ = std::move(message);
    return false;
  }
  // What stands at the current position, for messages: "'x'", "byte 0xff", "the end".
  std::string here() const {
    if (at_ >= s_.size()) return "the end of the text";
    unsigned char c = static_cast<unsigned char>(s_[at_]);
    if (c >= 0x20 && c < 0x7f) return std::string("'") + static_cast<char>(c) + "'";
    char buf[16];
    snprintf(buf, sizeof buf, "byte 0x%02x", c);
    return buf;
  }

  void skip_space() {
    while (at_ < s_.size() &&
           (s_[at_] == ' ' || s_[at_] == '\t' || s_[at_] == '\n' || s_[at_] == '\r')) {
      ++at_;
    }
  }

  bool literal(std::string_view word) {
    if (s_.substr(at_, word.size()) != word) {
      return wrong("unexpected " + here() + " (expected a value)");
    }
    at_ += word.size();
    return true;
  }

  bool value(Value* v, int depth) {
    if (at_ >= s_.size()) return wrong("unexpected end of the text (expected a value)");
    switch (s_[at_]) {
      case '{':
        return object(v, depth + 1);
      case '[':
        return array(v, depth + 1);
      case '"':
        v->kind_ = Value::Kind::kString;
        return string(&v->string_);
      case 't':
        v->kind_ = Value::Kind::kBool;
        v->bool_ = true;
        return literal("true");
      case 'f':
        v->kind_ = Value::Kind::kBool;
        v->bool_ = false;
        return literal("false");
      case 'n':
        v->kind_ = Value::Kind::kNull;
        return literal("null");
      default:
        if (s_[at_] == '-' || (s_[at_] >= '0' && s_[at_] <= '9')) return number(v);
        return wrong("unexpected " + here() + " (expected a value)");
    }
  }

  bool object(Value* v, int depth) {
    if (depth > kMaxDepth) return wrong("nested too deeply");
    v->kind_ = Value::Kind::kObject;
    ++at_;  // '{'
    skip_space();
    if (at_ < s_.size() && s_[at_] == '}') {
      ++at_;
      return true;
    }
    std::vector<size_t> key_offsets;
    for (;;) {
      skip_space();
      if (at_ >= s_.size() || s_[at_] != '"') {
        return wrong("unexpected " + here() + " (expected a key string)");
      }
      key_offsets.push_back(at_);
      Value::Member m;
      if (!string(&m.first)) return false;
      skip_space();
      if (at_ >= s_.size() || s_[at_] != ':')
        return wrong("unexpected " + here() + ", expected ':'");
      ++at_;
      skip_space();
      if (!value(&m.second, depth)) return false;
      v->members_.push_back(std::move(m));
      skip_space();
      if (at_ < s_.size() && s_[at_] == ',') {
        ++at_;
        continue;
      }
      if (at_ < s_.size() && s_[at_] == '}') {
        ++at_;
        return unique_keys(*v, key_offsets);
      }
      return wrong("unexpected " + here() + ", expected ',' or '}'");
    }
  }

  // Duplicate keys: RFC 8259 leaves their meaning open, so a reader could not know which one the
  // writer meant. Sorted rather than compared pairwise, so that a huge object costs n log n.
  bool unique_keys(const Value& v, const std::vector<size_t>& key_offsets) {
    const std::vector<Value::Member>& m = v.members_;
    if (m.size() < 2) return true;
    std::vector<size_t> order(m.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      return m[a].first != m[b].first ? m[a].first < m[b].first : a < b;
    });
    for (size_t k = 1; k < order.size(); ++k) {
      if (m[order[k]].first == m[order[k - 1]].first) {
        at_ = key_offsets[order[k]];
        return wrong("duplicate key \"" + m[order[k]].first + "\"");
      }
    }
    return true;
  }

  bool array(Value* v, int depth) {
    if (depth > kMaxDepth) return wrong("nested too deeply");
    v->kind_ = Value::Kind::kArray;
    ++at_;  // '['
    skip_space();
    if (at_ < s_.size() && s_[at_] == ']') {
      ++at_;
      return true;
    }
    for (;;) {
      skip_space();
      v->items_.emplace_back();
      if (!value(&v->items_.back(), depth)) return false;
      skip_space();
      if (at_ < s_.size() && s_[at_] == ',') {
        ++at_;
        continue;
      }
      if (at_ < s_.size() && s_[at_] == ']') {
        ++at_;
        return true;
      }
      return wrong("unexpected " + here() + ", expected ',' or ']'");
    }
  }

  static void put_utf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      *out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *out += static_cast<char>(0xc0 | (cp >> 6));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
      *out += static_cast<char>(0xe0 | (cp >> 12));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (cp >> 18));
      *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }

  // Four hex digits after "\u" (at_ on the 'u').
  bool hex4(uint32_t* cp) {
    if (at_ + 5 > s_.size()) {
      at_ = s_.size();
      return wrong("\\u needs four hex digits");
    }
    uint32_t v = 0;
    for (size_t k = 1; k <= 4; ++k) {
      char c = s_[at_ + k];
      int d = c >= '0' && c <= '9'   ? c - '0'
              : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                     : -1;
      if (d < 0) return wrong("\\u needs four hex digits");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    at_ += 5;
    *cp = v;
    return true;
  }

  // The length of the well-formed UTF-8 sequence at at_ (0 if it is not one): no overlong forms,
  // no surrogates, nothing above U+10FFFF.
  size_t utf8_length() const {
    unsigned char c = static_cast<unsigned char>(s_[at_]);
    size_t len = c >= 0xc2 && c <= 0xdf   ? 2
                 : c >= 0xe0 && c <= 0xef ? 3
                 : c >= 0xf0 && c <= 0xf4 ? 4
                                          : 0;
    if (len == 0 || at_ + len > s_.size()) return 0;
    for (size_t k = 1; k < len; ++k) {
      if ((static_cast<unsigned char>(s_[at_ + k]) & 0xc0) != 0x80) return 0;
    }
    unsigned char c1 = static_cast<unsigned char>(s_[at_ + 1]);
    if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0) || (c == 0xf0 && c1 < 0x90) ||
        (c == 0xf4 && c1 >= 0x90)) {
      return 0;
    }
    return len;
  }

  bool string(std::string* out) {
    ++at_;  // '"'
    for (;;) {
      if (at_ >= s_.size()) return wrong("unterminated string");
      unsigned char c = static_cast<unsigned char>(s_[at_]);
      if (c == '"') {
        ++at_;
        return true;
      }
      if (c < 0x20) return wrong("control character " + here() + " in a string (must be escaped)");
      if (c >= 0x80) {
        size_t len = utf8_length();
        if (len == 0) return wrong("invalid UTF-8 (" + here() + ") in a string");
        out->append(s_.substr(at_, len));
        at_ += len;
        continue;
      }
      if (c != '\\') {
        *out += static_cast<char>(c);
        ++at_;
        continue;
      }
      size_t escape_at = at_;
      ++at_;
      if (at_ >= s_.size()) return wrong("unterminated string");
      char e = s_[at_];
      const char* simple = nullptr;
      switch (e) {
        case '"':
          simple = "\"";
          break;
        case '\\':
          simple = "\\";
          break;
        case '/':
          simple = "/";
          break;
        case 'b':
          simple = "\b";
          break;
        case 'f':
          simple = "\f";
          break;
        case 'n':
          simple = "\n";
          break;
        case 'r':
          simple = "\r";
          break;
        case 't':
          simple = "\t";
          break;
        case 'u':
          break;
        default:
          at_ = escape_at;
          return wrong("invalid escape '\\" + std::string(1, e) + "'");
      }
      if (simple != nullptr) {
        *out += simple;
        ++at_;
        continue;
      }
      uint32_t cp;
      if (!hex4(&cp)) return false;
      if (cp >= 0xdc00 && cp <= 0xdfff) {
        at_ = escape_at;
        return wrong("lone low surrogate \\u" + hex_of(cp));
      }
      if (cp >= 0xd800 && cp <= 0xdbff) {
        // A high surrogate must be followed by "\u" and a low one: together one code point.
        uint32_t low = 0;
        if (s_.substr(at_, 2) != "\\u") {
          at_ = escape_at;
          return wrong("high surrogate \\u" + hex_of(cp) + " without a low one after it");
        }
        ++at_;
        if (!hex4(&low)) return false;
        if (low < 0xdc00 || low > 0xdfff) {
          at_ = escape_at;
          return wrong("high surrogate \\u" + hex_of(cp) + " followed by \\u" + hex_of(low) +
                       ", not a low surrogate");
        }
        cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
      }
      put_utf8(cp, out);
    }
  }

  static std::string hex_of(uint32_t v) {
    char buf[8];
    snprintf(buf, sizeof buf, "%04x", v);
    return buf;
  }

  bool number(Value* v) {
    size_t start = at_;
    bool negative = s_[at_] == '-';
    if (negative) ++at_;
    auto digit = [&]() { return at_ < s_.size() && s_[at_] >= '0' && s_[at_] <= '9'; };
    if (!digit()) return wrong("a digit must follow '-'");
    if (s_[at_] == '0') {
      ++at_;
      if (digit()) {
        at_ = start;
        return wrong("a number may not start with 0 (leading zero)");
      }
    } else {
      while (digit()) ++at_;
    }
    bool integer = true;
    if (at_ < s_.size() && s_[at_] == '.') {
      integer = false;
      ++at_;
      if (!digit()) return wrong("a digit must follow the decimal point");
      while (digit()) ++at_;
    }
    if (at_ < s_.size() && (s_[at_] == 'e' || s_[at_] == 'E')) {
      integer = false;
      ++at_;
      if (at_ < s_.size() && (s_[at_] == '+' || s_[at_] == '-')) ++at_;
      if (!digit()) return wrong("a digit must follow the exponent");
      while (digit()) ++at_;
    }
    const char* first = s_.data() + start;
    const char* last = s_.data() + at_;
    v->kind_ = Value::Kind::kNumber;
    // from_chars reads the same grammar (less the leading '+' JSON forbids anyway) without the
    // locale, and reports values out of a double's range.
    auto [end, ec] = std::from_chars(first, last, v->double_);
    if (ec == std::errc::result_out_of_range) {
      // Too small for a double is valid JSON that reads as (nearly) zero, which strtod gives
      // ("C" locale: the tools never set another); too large is refused.
      v->double_ = strtod(std::string(first, last).c_str(), nullptr);
      if (!std::isfinite(v->double_)) {
        at_ = start;
        return wrong("number out of range");
      }
      ec = std::errc();
      end = last;
    }
    if (ec != std::errc() || end != last) {
      at_ = start;
      return wrong("malformed number");
    }
    if (integer) {
      if (negative) {
        int64_t i;
        auto r = std::from_chars(first, last, i);
        if (r.ec == std::errc() && r.ptr == last) v->int_kind_ = Value::Int::kSigned, v->int_ = i;
      } else {
        uint64_t u;
        auto r = std::from_chars(first, last, u);
        if (r.ec == std::errc() && r.ptr == last)
          v->int_kind_ = Value::Int::kUnsigned, v->uint_ = u;
      }
      // -0 is an integer 0 that fits both ways.
      if (v->int_kind_ == Value::Int::kSigned && v->int_ == 0) {
        v->int_kind_ = Value::Int::kUnsigned;
        v->uint_ = 0;
      }
    }
    return true;
  }
};

bool parse(std::string_view text, Value* out, Error* error) {
  Value v;
  Parser p(text);
  if (!p.parse_document(&v, error)) return false;
  *out = std::move(v);
  return true;
}

}  // namespace pg::json
