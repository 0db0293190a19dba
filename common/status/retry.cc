#include "common/status/retry.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"

namespace vjepa {

bool IsRetriable(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsAborted(s) || absl::IsCancelled(s);
}

absl::Status RetryWithDeadline(const std::function<absl::Status()>& f,
                               const std::string& description, absl::Time deadline,
                               const RetryOptions& options) {
  const absl::Time start = options.now();
  absl::Duration backoff = options.initial_backoff;
  std::minstd_rand jitter(static_cast<unsigned>(absl::ToUnixNanos(start)));
  for (int attempt = 1;; ++attempt) {
    absl::Status s = f();
    if (s.ok() || !(options.retriable ? options.retriable(s) : IsRetriable(s))) return s;
    // Full jitter in [backoff/2, backoff].
    const double scale = 0.5 + 0.5 * (jitter() % 1000) / 1000.0;
    const absl::Duration wait = backoff * scale;
    if (options.now() + wait >= deadline) {
      return absl::Status(
          s.code(), absl::StrCat(description, ": gave up after ", attempt, " attempts in ",
                                 absl::FormatDuration(options.now() - start), ": ", s.message()));
    }
    options.sleep(wait);
    backoff = std::min(options.max_backoff, backoff * options.multiplier);
  }
}

}  // namespace vjepa
