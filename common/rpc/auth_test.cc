#include "common/rpc/auth.h"

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::rpc {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

constexpr char kTokens[] =
    "# token principal role\n"
    "admin-token-0123456789 root admin\n"
    "\n"
    "alice-token-0123456789 alice user\n"
    "worker-token-012345678 dw-0 worker\n";

TEST(Authenticator, MapsTokensToPrincipalsAndRoles) {
  ASSERT_OK_AND_ASSIGN(Authenticator auth, Authenticator::FromText(kTokens, "tokens"));
  EXPECT_EQ(auth.size(), 3u);
  ASSERT_OK_AND_ASSIGN(Principal p,
                       auth.AuthenticateToken("alice-token-0123456789", {Role::kUser}));
  EXPECT_EQ(p.name, "alice");
  EXPECT_EQ(p.role, Role::kUser);
  ASSERT_OK_AND_ASSIGN(Principal root,
                       auth.AuthenticateToken("admin-token-0123456789", {Role::kAdmin}));
  EXPECT_TRUE(root.is_admin());
}

TEST(Authenticator, RefusesUnknownTokensAndWrongRoles) {
  ASSERT_OK_AND_ASSIGN(Authenticator auth, Authenticator::FromText(kTokens, "tokens"));
  EXPECT_THAT(auth.AuthenticateToken("alice-token-012345678X", {Role::kUser}),
              StatusIs(absl::StatusCode::kUnauthenticated, "unknown bearer token"));
  EXPECT_THAT(auth.AuthenticateToken("", {Role::kUser}),
              StatusIs(absl::StatusCode::kUnauthenticated, "unknown bearer token"));
  EXPECT_THAT(auth.AuthenticateToken("worker-token-012345678", {Role::kUser, Role::kAdmin}),
              StatusIs(absl::StatusCode::kPermissionDenied,
                       "principal dw-0 (role worker) may not call this method"));
}

TEST(Authenticator, ReportsBadTokenFilesByLine) {
  struct Case {
    const char* text;
    const char* message;
  } cases[] = {
      {"a-long-token-0123456 alice\n", "t:1: expected TOKEN PRINCIPAL ROLE, got 2 fields"},
      {"\nx-long-token-0123456 bob boss\n",
       "t:2: role must be admin, user or worker, got \"boss\""},
      {"short bob user\n", "t:1: token of bob must be at least 16 characters, got 5"},
      {"a-long-token-0123456 a user\na-long-token-0123456 b user\n", "t:2: duplicate token (of b)"},
      {"# only a comment\n", "t: no tokens"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(Authenticator::FromText(c.text, "t"),
                StatusIs(absl::StatusCode::kInvalidArgument, c.message))
        << c.text;
  }
  EXPECT_THAT(Authenticator::FromFile("/nonexistent/tokens"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/tokens")));
}

}  // namespace
}  // namespace vjepa::rpc
