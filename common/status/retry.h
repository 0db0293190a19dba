// Retry of transient failures: by default only UNAVAILABLE, ABORTED and CANCELLED are retried,
// with exponential backoff and jitter, and never past the deadline.
#ifndef VJEPA_COMMON_STATUS_RETRY_H_
#define VJEPA_COMMON_STATUS_RETRY_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace vjepa {

struct RetryOptions {
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(5);
  double multiplier = 2.0;
  // Which failures are tried again; unset: IsRetriable.
  std::function<bool(const absl::Status&)> retriable;
  // Injected for tests; the real clock and sleep by default.
  std::function<absl::Time()> now = [] { return absl::Now(); };
  std::function<void(absl::Duration)> sleep = [](absl::Duration d) { absl::SleepFor(d); };
};

bool IsRetriable(const absl::Status& s);

// Calls `f` until it succeeds, fails with a non-retriable code, or `deadline` would pass before
// the next try. `description` names the operation in the final error
// ("RegisterWorker: gave up after 7 attempts in 10s: UNAVAILABLE: ...").
absl::Status RetryWithDeadline(const std::function<absl::Status()>& f,
                               const std::string& description, absl::Time deadline,
                               const RetryOptions& options = RetryOptions());

}  // namespace vjepa

#endif  // VJEPA_COMMON_STATUS_RETRY_H_
