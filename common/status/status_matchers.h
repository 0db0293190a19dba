// gMock matchers for absl::Status and absl::StatusOr<T>:
//   EXPECT_THAT(s, IsOk());
//   EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("optim.lr")));
//   ASSERT_OK_AND_ASSIGN(auto v, F());
#ifndef VJEPA_COMMON_STATUS_STATUS_MATCHERS_H_
#define VJEPA_COMMON_STATUS_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/status/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = ::vjepa::testing::GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has code " + ::testing::PrintToString(code) + " and a message that " +
               ::testing::DescribeMatcher<std::string>(message_matcher)) {
  const absl::Status& s = ::vjepa::testing::GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code && ::testing::Matches(message_matcher)(std::string(s.message()));
}

}  // namespace vjepa::testing

#define ASSERT_OK(expr) ASSERT_THAT(expr, ::vjepa::testing::IsOk())
#define EXPECT_OK(expr) EXPECT_THAT(expr, ::vjepa::testing::IsOk())
#define ASSERT_OK_AND_ASSIGN(lhs, expr)                                                          \
  auto VJEPA_STATUS_CONCAT(_vjepa_assert_, __LINE__) = (expr);                                   \
  ASSERT_THAT(VJEPA_STATUS_CONCAT(_vjepa_assert_, __LINE__).status(), ::vjepa::testing::IsOk()); \
  lhs = std::move(VJEPA_STATUS_CONCAT(_vjepa_assert_, __LINE__)).value()

#endif  // VJEPA_COMMON_STATUS_STATUS_MATCHERS_H_
