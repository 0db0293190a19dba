#include <vector>

#include "common/status/grpc_status.h"
#include "common/status/retry.h"
#include "common/status/status_macros.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::IsOk;
using ::vjepa::testing::StatusIs;

absl::StatusOr<int> Half(int x) {
  if (x % 2) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::StatusOr<int> Quarter(int x) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

absl::Status CheckEven(int x) {
  RETURN_IF_ERROR(Half(x));
  return absl::OkStatus();
}

TEST(StatusMacros, PropagateErrorsAndValues) {
  EXPECT_THAT(Quarter(8), IsOk());
  EXPECT_EQ(*Quarter(8), 2);
  EXPECT_THAT(Quarter(6), StatusIs(absl::StatusCode::kInvalidArgument, "odd"));
  EXPECT_THAT(CheckEven(3), StatusIs(absl::StatusCode::kInvalidArgument, "odd"));
  EXPECT_OK(CheckEven(4));
}

TEST(GrpcStatus, RoundTripsEveryCode) {
  for (int c = 0; c <= 16; ++c) {
    absl::Status s(static_cast<absl::StatusCode>(c), c ? "message" : "");
    grpc::Status g = ToGrpcStatus(s);
    EXPECT_EQ(static_cast<int>(g.error_code()), c);
    EXPECT_EQ(FromGrpcStatus(g), s);
  }
  EXPECT_STREQ(StatusCodeName(absl::StatusCode::kUnauthenticated), "UNAUTHENTICATED");
}

struct FakeClock {
  absl::Time t = absl::UnixEpoch();
  std::vector<absl::Duration> sleeps;
  RetryOptions Options() {
    RetryOptions o;
    o.now = [this] { return t; };
    o.sleep = [this](absl::Duration d) {
      sleeps.push_back(d);
      t += d;
    };
    return o;
  }
};

TEST(Retry, RetriesOnlyTransientCodes) {
  FakeClock clock;
  int calls = 0;
  absl::Status s = RetryWithDeadline(
      [&] { return ++calls < 3 ? absl::UnavailableError("down") : absl::OkStatus(); }, "op",
      clock.t + absl::Seconds(10), clock.Options());
  EXPECT_OK(s);
  EXPECT_EQ(calls, 3);

  calls = 0;
  s = RetryWithDeadline(
      [&] {
        ++calls;
        return absl::InvalidArgumentError("bad");
      },
      "op", clock.t + absl::Seconds(10), clock.Options());
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument, "bad"));
  EXPECT_EQ(calls, 1);
}

TEST(Retry, RetriesWhatTheCallerCallsTransient) {
  FakeClock clock;
  RetryOptions options = clock.Options();
  options.retriable = [](const absl::Status& s) { return absl::IsDeadlineExceeded(s); };
  int calls = 0;
  absl::Status s = RetryWithDeadline(
      [&] { return ++calls < 3 ? absl::DeadlineExceededError("slow") : absl::OkStatus(); }, "op",
      clock.t + absl::Seconds(10), options);
  EXPECT_OK(s);
  EXPECT_EQ(calls, 3);

  calls = 0;
  s = RetryWithDeadline(
      [&] {
        ++calls;
        return absl::UnavailableError("down");
      },
      "op", clock.t + absl::Seconds(10), options);
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, "down"));
  EXPECT_EQ(calls, 1);
}

TEST(Retry, BacksOffExponentiallyAndStopsAtTheDeadline) {
  FakeClock clock;
  const absl::Time deadline = clock.t + absl::Seconds(2);
  int calls = 0;
  absl::Status s = RetryWithDeadline(
      [&] {
        ++calls;
        return absl::AbortedError("conflict");
      },
      "LeaseBatches", deadline, clock.Options());
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kAborted, HasSubstr("LeaseBatches: gave up after")));
  EXPECT_LE(clock.t, deadline);
  ASSERT_GE(clock.sleeps.size(), 3u);
  for (size_t i = 1; i < clock.sleeps.size(); ++i) {
    // Each wait is drawn from [b/2, b] with b doubling: never more than 4x the previous one.
    EXPECT_LE(clock.sleeps[i], clock.sleeps[i - 1] * 4);
  }
  EXPECT_GT(clock.sleeps.back(), clock.sleeps.front());
  EXPECT_EQ(calls, static_cast<int>(clock.sleeps.size()) + 1);
}

}  // namespace
}  // namespace vjepa
