#include "services/trainer/checkpoint/json.h"

#include <limits>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::checkpoint {
namespace {

using ::testing::HasSubstr;

TEST(JsonTest, ParsesAndWritesBackCompactly) {
  const struct {
    std::string in;
    std::string out;
  } cases[] = {
      {"{}", "{}"},
      {" [ ] ", "[]"},
      {"{\"a\" : [1, -2, 3.5e+2, 0], \"b\":{\"c\":null,\"d\":true,\"e\":false}}",
       "{\"a\":[1,-2,3.5e+2,0],\"b\":{\"c\":null,\"d\":true,\"e\":false}}"},
      {"\"tab\\there \\\"q\\\" \\\\ \\/ \\u0001\"", "\"tab\\u0009here \\\"q\\\" \\\\ / \\u0001\""},
      {"\"\\u00e9\\ud83d\\ude00\"", "\"\xc3\xa9\xf0\x9f\x98\x80\""},
      {"\"caf\xc3\xa9\"", "\"caf\xc3\xa9\""},
      {"-0", "-0"},
      {"\t{\"x\":1}\r\n  ", "{\"x\":1}"},
  };
  for (const auto& c : cases) {
    auto value = ParseJson(c.in);
    ASSERT_TRUE(value.ok()) << c.in << ": " << value.status();
    EXPECT_EQ(ToJson(*value), c.out) << c.in;
  }
}

TEST(JsonTest, KeepsMemberOrderAndFindsMembers) {
  auto value = ParseJson("{\"z\":1,\"a\":\"x\"}");
  ASSERT_TRUE(value.ok());
  ASSERT_EQ(value->members().size(), 2u);
  EXPECT_EQ(value->members()[0].first, "z");
  EXPECT_EQ(value->Find("a")->text(), "x");
  EXPECT_EQ(value->Find("b"), nullptr);
}

TEST(JsonTest, RefusesMalformedInput) {
  const struct {
    std::string in;
    std::string reason;
  } cases[] = {
      {"", "unexpected end"},
      {"{", "expected a member name"},
      {"{\"a\":1,}", "expected a member name"},
      {"[1,]", "unexpected character ']'"},
      {"[1 2]", "expected ',' or ']'"},
      {"{\"a\" 1}", "expected ':'"},
      {"{\"a\":1}x", "after the JSON value"},
      {"{\"a\":1,\"a\":2}", "duplicate key \"a\""},
      {"01", "leading zeros"},
      {"1.", "digits after '.'"},
      {"1e", "exponent"},
      {"-", "expected digits"},
      {"+1", "unexpected character '+'"},
      {"nul", "unexpected character 'n'"},
      {"\"abc", "unterminated string"},
      {"\"a\nb\"", "control character"},
      {"\"\\x\"", "unknown escape"},
      {"\"\\u12g4\"", "bad hex digit"},
      {"\"\\ud83d\"", "high surrogate"},
      {"\"\\ude00\"", "lone low surrogate"},
      {"\"\xff\"", "invalid UTF-8"},
      {"\"\xc3\"", "invalid UTF-8"},
      {"\"\xc0\xaf\"", "invalid UTF-8"},      // overlong
      {"\"\xed\xa0\x80\"", "invalid UTF-8"},  // encoded surrogate
      {"'a'", "unexpected character"},
  };
  for (const auto& c : cases) {
    auto value = ParseJson(c.in);
    ASSERT_FALSE(value.ok()) << c.in;
    EXPECT_EQ(value.status().code(), core::Code::kInvalidArgument);
    EXPECT_THAT(value.status().message(), HasSubstr(c.reason)) << c.in;
  }
}

TEST(JsonTest, EnforcesDepthAndValueLimits) {
  JsonLimits limits;
  limits.max_depth = 3;
  EXPECT_TRUE(ParseJson("[[[1]]]", limits).ok());
  auto deep = ParseJson("[[[[1]]]]", limits);
  ASSERT_FALSE(deep.ok());
  EXPECT_THAT(deep.status().message(), HasSubstr("nesting deeper than 3"));
  // The default depth stops runaway nesting before the stack does.
  EXPECT_FALSE(ParseJson(std::string(100000, '[')).ok());

  limits.max_values = 4;
  EXPECT_TRUE(ParseJson("[1,2,3]", limits).ok());
  auto many = ParseJson("[1,2,3,4]", limits);
  ASSERT_FALSE(many.ok());
  EXPECT_THAT(many.status().message(), HasSubstr("more than 4 values"));
}

TEST(JsonTest, InterpretsNumbers) {
  EXPECT_EQ(ParseJson("9223372036854775807")->AsInt64(), std::numeric_limits<int64_t>::max());
  EXPECT_EQ(ParseJson("-9223372036854775808")->AsInt64(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(ParseJson("9223372036854775808")->AsInt64(), std::nullopt);
  EXPECT_EQ(ParseJson("1.0")->AsInt64(), std::nullopt);
  EXPECT_EQ(ParseJson("1e3")->AsInt64(), std::nullopt);
  EXPECT_EQ(ParseJson("\"1\"")->AsInt64(), std::nullopt);
  EXPECT_EQ(ParseJson("1.5e-3")->AsDouble(), 1.5e-3);
  EXPECT_EQ(ParseJson("1e999")->AsDouble(), std::nullopt);
}

TEST(JsonTest, WritesDoublesThatReadBackExactly) {
  for (const double x : {0.0, 0.1, 1.0 / 3.0, 6.25e-4, 2.000354e-4, 0.998, 1e-8, -1e300, 5e-324}) {
    auto value = JsonValue::Double(x);
    ASSERT_TRUE(value.ok());
    auto back = ParseJson(ToJson(*value));
    ASSERT_TRUE(back.ok()) << ToJson(*value);
    EXPECT_EQ(back->AsDouble(), x) << ToJson(*value);
  }
  EXPECT_EQ(ToJson(*JsonValue::Double(0.1)), "0.1");
  EXPECT_FALSE(JsonValue::Double(std::numeric_limits<double>::quiet_NaN()).ok());
  EXPECT_FALSE(JsonValue::Double(std::numeric_limits<double>::infinity()).ok());
}

}  // namespace
}  // namespace vjepa::checkpoint
