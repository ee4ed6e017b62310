// tools/json: the strict parser on valid text (every kind of value, escapes, exact 64-bit
// integers) and on text RFC 8259 refuses, with where the error is.
#include <gtest/gtest.h>

#include <string>

#include "tools/json.h"

namespace {

using pg::json::Value;

Value parse_ok(const std::string& text) {
  Value v;
  pg::json::Error e;
  EXPECT_TRUE(pg::json::parse(text, &v, &e)) << text << ": " << e.message << " at " << e.offset;
  return v;
}

pg::json::Error parse_bad(const std::string& text) {
  Value v;
  pg::json::Error e;
  EXPECT_FALSE(pg::json::parse(text, &v, &e)) << text << " was accepted";
  EXPECT_FALSE(e.message.empty()) << text;
  return e;
}

TEST(Json, Scalars) {
  EXPECT_TRUE(parse_ok("null").is_null());
  EXPECT_TRUE(parse_ok(" true ").as_bool());
  Value f = parse_ok("false");
  EXPECT_TRUE(f.is_bool());
  EXPECT_FALSE(f.as_bool());
  EXPECT_EQ(parse_ok("\"hi\"").as_string(), "hi");
  EXPECT_DOUBLE_EQ(parse_ok("0.1").as_double(), 0.1);
  EXPECT_DOUBLE_EQ(parse_ok("-2.5e-3").as_double(), -0.0025);
  EXPECT_DOUBLE_EQ(parse_ok("1E+2").as_double(), 100);
  EXPECT_TRUE(parse_ok("\t\r\n 7 \n").is_number());
  EXPECT_EQ(parse_ok("1e-400").as_double(), 0.0);  // below a double's range: zero, not an error
}

TEST(Json, IntegersAreExact) {
  uint64_t u = 0;
  int64_t i = 0;
  ASSERT_TRUE(parse_ok("18446744073709551615").to_u64(&u));
  EXPECT_EQ(u, UINT64_MAX);
  ASSERT_TRUE(parse_ok("9007199254740993").to_u64(&u));  // 2^53 + 1: a double would round it
  EXPECT_EQ(u, 9007199254740993ull);
  ASSERT_TRUE(parse_ok("-9223372036854775808").to_i64(&i));
  EXPECT_EQ(i, INT64_MIN);
  ASSERT_TRUE(parse_ok("42").to_i64(&i));
  EXPECT_EQ(i, 42);
  ASSERT_TRUE(parse_ok("-0").to_u64(&u));
  EXPECT_EQ(u, 0u);
  // Not integers, or out of range: refused rather than rounded or wrapped.
  EXPECT_FALSE(parse_ok("1.5").to_u64(&u));
  EXPECT_FALSE(parse_ok("1e3").to_u64(&u));
  EXPECT_FALSE(parse_ok("1.0").to_i64(&i));
  EXPECT_FALSE(parse_ok("-1").to_u64(&u));
  EXPECT_FALSE(parse_ok("9223372036854775808").to_i64(&i));
  Value big = parse_ok("18446744073709551616");  // 2^64
  EXPECT_FALSE(big.to_u64(&u));
  EXPECT_DOUBLE_EQ(big.as_double(), 18446744073709551616.0);
  EXPECT_FALSE(parse_ok("\"1\"").to_u64(&u));
}

TEST(Json, StringEscapes) {
  EXPECT_EQ(parse_ok(R"("a\"b\\c\/d\be\ff\ng\rh\ti")").as_string(), "a\"b\\c/d\be\ff\ng\rh\ti");
  EXPECT_EQ(parse_ok(R"("caf\u00e9 \u20AC")").as_string(), "caf\xc3\xa9 \xe2\x82\xac");
  // A surrogate pair is one code point, U+1F600, in four bytes of UTF-8.
  EXPECT_EQ(parse_ok(R"("\ud83d\ude00")").as_string(), "\xf0\x9f\x98\x80");
  EXPECT_EQ(parse_ok(R"("\uDBFF\uDFFF")").as_string(), "\xf4\x8f\xbf\xbf");
  EXPECT_EQ(parse_ok(R"("a\u0000b")").as_string(), std::string("a\0b", 3));
  EXPECT_EQ(parse_ok("\"raw \xc3\xa9 \xf0\x9f\x98\x80\"").as_string(),
            "raw \xc3\xa9 \xf0\x9f\x98\x80");
  EXPECT_EQ(parse_ok("\"\"").as_string(), "");
}

TEST(Json, ArraysAndObjects) {
  Value v = parse_ok(R"({"b":[1,[2,{}],[]],"a":{"x":null},"c":"s"})");
  ASSERT_TRUE(v.is_object());
  ASSERT_EQ(v.members().size(), 3u);
  EXPECT_EQ(v.members()[0].first, "b");  // in the order written
  EXPECT_EQ(v.members()[1].first, "a");
  const Value* b = v.find("b");
  ASSERT_TRUE(b && b->is_array());
  ASSERT_EQ(b->items().size(), 3u);
  EXPECT_TRUE(b->items()[1].items()[1].is_object());
  EXPECT_TRUE(b->items()[2].items().empty());
  ASSERT_TRUE(v.find("a") && v.find("a")->find("x"));
  EXPECT_TRUE(v.find("a")->find("x")->is_null());
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(b->find("b"), nullptr);  // not an object
  EXPECT_TRUE(parse_ok("[ ]").is_array());
  EXPECT_TRUE(parse_ok("{ }").is_object());
}

TEST(Json, NestingLimit) {
  std::string ok(pg::json::kMaxDepth, '['), too_deep(pg::json::kMaxDepth + 1, '[');
  ok += std::string(pg::json::kMaxDepth, ']');
  too_deep += std::string(pg::json::kMaxDepth + 1, ']');
  parse_ok(ok);
  EXPECT_EQ(parse_bad(too_deep).message, "nested too deeply");
}

TEST(Json, Refused) {
  for (const char* text : {
           "",
           "   ",
           "{",
           "[",
           "[1,]",
           "[,1]",
           "{\"a\":1,}",
           "{\"a\" 1}",
           "{1:2}",
           "{'a':1}",
           "[1 2]",
           "01",
           "-01",
           "1.",
           ".5",
           "+1",
           "-",
           "1e",
           "1e+",
           "0x10",
           "NaN",
           "Infinity",
           "1e400",
           "tru",
           "nul",
           "True",
           "\"abc",
           "\"\\x\"",
           "\"\\u12\"",
           "\"\\u12g4\"",
           "\"\\ud800\"",
           "\"\\udc00\"",
           "\"\\ud800\\u0041\"",
           "\"\\ud800x\"",
           "\"tab\there\"",
           "\"nl\nhere\"",
           "\"\xff\"",
           "\"\xc0\xaf\"",
           "\"\xed\xa0\x80\"",
           "\"\xe2\x82\"",
           "// c\n1",
           "/* c */ 1",
           "1 2",
           "{} x",
           "\"a\" \"b\"",
           "{\"a\":1,\"a\":2}",
       }) {
    SCOPED_TRACE(text);
    parse_bad(text);
  }
}

TEST(Json, ErrorsSayWhere) {
  // The offset of the byte the error is about, and a piece of its message ("" for any message).
  struct Case {
    const char* text;
    size_t offset;
    const char* says;
  };
  const Case cases[] = {
      {"[1,]", 3, "']'"},
      {"{\"a\":1,}", 7, "key"},
      {"{\"a\":1 \"b\":2}", 7, "expected ',' or '}'"},
      {"1 2", 2, "text after the value"},
      {"[\"ok\", \"\\q\"]", 8, "invalid escape '\\q'"},
      {"{\"k\":1,\"j\":2,\"k\":3}", 13, "duplicate key \"k\""},  // the second "k"
      {"\"\\ud83d\"", 1, "surrogate"},
      {"[0012]", 1, "leading zero"},
      {"", 0, ""},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    pg::json::Error e = parse_bad(c.text);
    EXPECT_EQ(e.offset, c.offset);
    EXPECT_NE(e.message.find(c.says), std::string::npos) << e.message;
  }
  EXPECT_EQ(parse_bad("1 2").message, "text after the value");
}

}  // namespace
