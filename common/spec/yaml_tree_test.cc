#include "common/spec/yaml_tree.h"

#include <cstdlib>
#include <string>

#include "common/spec/job_spec.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::spec::internal {
namespace {

using ::vjepa::testing::StatusIs;

TEST(LoadYaml, KeepsOrderQuotingAndPositions) {
  ASSERT_OK_AND_ASSIGN(Node root, LoadYaml("b: 1\na: \"x\"\nc:\n  - 2\n  - ~\n", "spec"));
  ASSERT_TRUE(root.is_map());
  EXPECT_EQ(root.keys, (std::vector<std::string>{"b", "a", "c"}));
  EXPECT_TRUE(root.items[0].plain);
  EXPECT_FALSE(root.Find("a")->plain);
  EXPECT_EQ(root.Find("a")->scalar, "x");
  const Node* c = root.Find("c");
  ASSERT_TRUE(c->is_list());
  EXPECT_EQ(c->items[0].scalar, "2");
  EXPECT_EQ(c->items[0].line, 4);
  EXPECT_TRUE(c->items[1].is_null());
}

TEST(LoadYaml, EmptyDocumentsAreNull) {
  for (const char* text : {"", "# only a comment\n", "---\n", "  \n"}) {
    ASSERT_OK_AND_ASSIGN(Node root, LoadYaml(text, "spec"));
    EXPECT_TRUE(root.is_null()) << text;
  }
}

TEST(LoadYaml, ExpandsAliasesIntoIndependentCopies) {
  ASSERT_OK_AND_ASSIGN(Node root, LoadYaml("a: &x {k: 1}\nb: *x\n", "spec"));
  root.Find("b")->Find("k")->scalar = "2";
  EXPECT_EQ(root.Find("a")->Find("k")->scalar, "1");
}

struct BadYaml {
  std::string text;
  absl::StatusCode code;
  std::string message;
};

class LoadYamlErrors : public ::testing::TestWithParam<BadYaml> {};

TEST_P(LoadYamlErrors, ExactMessage) {
  EXPECT_THAT(LoadYaml(GetParam().text, "spec"), StatusIs(GetParam().code, GetParam().message));
}

std::string BillionLaughs() {
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 9; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) text += (k ? ", *a" : "*a") + std::to_string(i - 1);
    text += "]\n";
  }
  return text;
}

INSTANTIATE_TEST_SUITE_P(
    All, LoadYamlErrors,
    ::testing::Values(
        BadYaml{"name: a\xff\n", absl::StatusCode::kInvalidArgument,
                "spec: not valid UTF-8 at byte 7"},
        BadYaml{"name: \xc0\xaf\n", absl::StatusCode::kInvalidArgument,
                "spec: not valid UTF-8 at byte 6"},
        BadYaml{"a: \xed\xa0\x80\n", absl::StatusCode::kInvalidArgument,
                "spec: not valid UTF-8 at byte 3"},
        BadYaml{"a: \xe2\x82\n", absl::StatusCode::kInvalidArgument,
                "spec: not valid UTF-8 at byte 3"},
        BadYaml{std::string("a: b\x01\n"), absl::StatusCode::kInvalidArgument,
                "spec: control character 0x01 at byte 4 is not allowed in YAML"},
        BadYaml{"name: [a\n", absl::StatusCode::kInvalidArgument,
                "spec: invalid YAML at line 2, column 1: end of sequence flow not found"},
        BadYaml{"a: b: c\n", absl::StatusCode::kInvalidArgument,
                "spec: invalid YAML at line 1, column 5: illegal map value"},
        BadYaml{"a: 1\n---\nb: 2\n", absl::StatusCode::kInvalidArgument,
                "spec: expected one YAML document, got 2"},
        BadYaml{"name: a\nname: b\n", absl::StatusCode::kInvalidArgument,
                "name: duplicate key (lines 1 and 2)"},
        BadYaml{"optim:\n  steps: 1\n  lr: {}\n  steps: 2\n", absl::StatusCode::kInvalidArgument,
                "optim.steps: duplicate key (lines 2 and 4)"},
        BadYaml{"? [a]\n: 1\n", absl::StatusCode::kInvalidArgument,
                "spec: keys must be strings (line 1)"},
        BadYaml{BillionLaughs(), absl::StatusCode::kResourceExhausted,
                "spec: more than 100000 YAML nodes (each use of an alias counts)"},
        BadYaml{std::string(kMaxSpecBytes + 1, '#'), absl::StatusCode::kResourceExhausted,
                "spec: 1048577 bytes is over the limit of 1048576"}));

TEST(FormatNumber, ShortestTextThatReadsBack) {
  EXPECT_EQ(FormatNumber(6.25e-4), "0.000625");
  EXPECT_EQ(FormatNumber(1e-6), "1e-06");
  EXPECT_EQ(FormatNumber(-1), "-1");
  EXPECT_EQ(FormatNumber(0.1), "0.1");
  EXPECT_EQ(FormatNumber(0.998), "0.998");
  EXPECT_EQ(FormatNumber(10), "10");
  EXPECT_EQ(FormatNumber(90000), "90000");
  EXPECT_EQ(FormatNumber(1.5e6), "1500000");
  EXPECT_EQ(FormatNumber(1e20), "1e+20");
  const double giant = 48.0 / 11.0;
  EXPECT_EQ(std::strtod(FormatNumber(giant).c_str(), nullptr), giant);
}

TEST(QuoteString, EscapesWhatYamlCannotHoldLiterally) {
  EXPECT_EQ(QuoteString("a\"b\\c\nd\te\x01"), R"("a\"b\\c\nd\te\x01")");
  EXPECT_EQ(QuoteString("h\xc3\xa9"), "\"h\xc3\xa9\"");
  EXPECT_EQ(QuoteString("\xc2\x85"), R"("\u0085")");
  EXPECT_EQ(QuoteString("abcdef", 3), R"("abc"...)");
  // Cut at a character boundary: "é" is two bytes.
  EXPECT_EQ(QuoteString("a\xc3\xa9", 2), R"("a"...)");
}

TEST(RenderYaml, ReadsBackAsTheSameTree) {
  Node root = Node::Map();
  root.Add("name", Node::String("a b: c"));
  root.Add("null", Node::String("null"));
  Node list = Node::List();
  list.items = {Node::Scalar("1", true), Node::Scalar("2.5", true)};
  root.Add("pair", list);
  Node entry = Node::Map();
  entry.Add("k", Node::Scalar("v", true));
  Node maps = Node::List();
  maps.items = {entry, entry};
  root.Add("maps", maps);
  const std::string text = RenderYaml(root);
  EXPECT_EQ(text,
            "name: \"a b: c\"\n"
            "\"null\": \"null\"\n"
            "pair: [1, 2.5]\n"
            "maps:\n"
            "  - k: v\n"
            "  - k: v\n");
  ASSERT_OK_AND_ASSIGN(Node back, LoadYaml(text, "spec"));
  EXPECT_EQ(back.Find("name")->scalar, "a b: c");
  EXPECT_EQ(back.Find("null")->scalar, "null");
  EXPECT_EQ(back.Find("maps")->items[1].Find("k")->scalar, "v");
}

TEST(Describe, ShowsValuesAsWritten) {
  ASSERT_OK_AND_ASSIGN(Node root, LoadYaml("a: abc\nb: -3\nc: [1, x]\nd: \"7\"\ne: ~\n", "s"));
  EXPECT_EQ(Describe(*root.Find("a")), "\"abc\"");
  EXPECT_EQ(Describe(*root.Find("b")), "-3");
  EXPECT_EQ(Describe(*root.Find("c")), "[1, x]");
  EXPECT_EQ(Describe(*root.Find("d")), "\"7\"");
  EXPECT_EQ(Describe(*root.Find("e")), "null");
}

}  // namespace
}  // namespace vjepa::spec::internal
