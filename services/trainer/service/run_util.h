// Small helpers shared by the trainer's runs (training_run.cc, probe_run.cc,
// coordinator_session.cc): status conversion and annotation, a monotonic clock in seconds, and
// compact number formatting for log lines.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_RUN_UTIL_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_RUN_UTIL_H_

#include <chrono>
#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/core/status.h"

namespace vjepa::trainer {

// The core library's status as an absl::Status with the same code and message.
inline absl::Status ToAbsl(const core::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(static_cast<int>(s.code())), s.message());
}

// `s` with "what: " in front of its message.
inline absl::Status Annotate(const absl::Status& s, const std::string& what) {
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

// Seconds on the steady clock.
inline double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// `v` with 4 significant digits.
inline std::string Num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4g", v);
  return buf;
}

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_RUN_UTIL_H_
