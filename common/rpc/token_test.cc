#include "common/rpc/token.h"

#include <cstdlib>
#include <fstream>

#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::rpc {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

TEST(TokenTest, FileThenFlagThenEnvironment) {
  vjepa::testing::ScratchDir dir;
  const std::string file = dir.File("token");
  std::ofstream(file) << "  file-token-0123456789  \nsecond line\n";
  ASSERT_OK_AND_ASSIGN(std::string a, ResolveToken("", file, "VJEPA_TOKEN_TEST"));
  EXPECT_EQ(a, "file-token-0123456789");
  ASSERT_OK_AND_ASSIGN(std::string b, ResolveToken("flag-token", "", "VJEPA_TOKEN_TEST"));
  EXPECT_EQ(b, "flag-token");
  setenv("VJEPA_TOKEN_TEST", "env-token", 1);
  ASSERT_OK_AND_ASSIGN(std::string c, ResolveToken("", "", "VJEPA_TOKEN_TEST"));
  EXPECT_EQ(c, "env-token");
  unsetenv("VJEPA_TOKEN_TEST");
}

TEST(TokenTest, RefusesAmbiguousMissingAndUnreadable) {
  EXPECT_THAT(ResolveToken("t", "/some/file", "VJEPA_TOKEN_TEST"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not both")));
  unsetenv("VJEPA_TOKEN_TEST");
  EXPECT_THAT(ResolveToken("", "", "VJEPA_TOKEN_TEST"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("$VJEPA_TOKEN_TEST")));
  EXPECT_THAT(ResolveToken("", "/nonexistent/vjepa-token", "VJEPA_TOKEN_TEST"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/nonexistent/vjepa-token")));
}

}  // namespace
}  // namespace vjepa::rpc
