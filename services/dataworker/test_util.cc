#include "services/dataworker/test_util.h"

#include <unistd.h>

#include <cstdlib>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "tests/process.h"

namespace vjepa::dataworker {

std::unique_ptr<ProducedBatch> TakeBatch(StreamHandle& stream, absl::Status* end,
                                         absl::Duration timeout) {
  absl::Status ignored;
  if (end == nullptr) end = &ignored;
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    auto woke = std::make_shared<absl::Notification>();
    std::unique_ptr<ProducedBatch> batch;
    switch (stream.TakeNext(&batch, end, [woke] { woke->Notify(); })) {
      case StreamHandle::NextResult::kReady:
        return batch;
      case StreamHandle::NextResult::kEnded:
        return nullptr;
      case StreamHandle::NextResult::kWaiting:
        if (!woke->WaitForNotificationWithDeadline(deadline)) {
          *end = absl::DeadlineExceededError("no batch in time");
          return nullptr;
        }
    }
  }
}

bool WaitUntil(const std::function<bool()>& ready, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!ready()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

double MetricValue(const metrics::Registry& registry, const std::string& series) {
  std::istringstream text(metrics::Render(registry));
  std::string line;
  while (std::getline(text, line)) {
    if (absl::StartsWith(line, series + " ")) {
      return std::strtod(line.c_str() + series.size() + 1, nullptr);
    }
  }
  return -1;
}

std::string SyntheticClip(const SyntheticOptions& options, int64_t epoch, int64_t batch_index,
                          int clip) {
  const int64_t n = int64_t{options.num_tokens} * options.token_bytes;
  std::string out(static_cast<size_t>(n), '\0');
  for (int64_t i = 0; i < n; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>(SyntheticClipByte(epoch, batch_index, clip, i));
  }
  return out;
}

namespace {

// The full path of `program` found on $PATH, or `program` itself.
std::string FindProgram(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/" + program;
    if (!dir.empty() && access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return program;
}

}  // namespace

bool MakeTestVideo(const std::string& path, int width, int height, int frames, int fps, int gop) {
  testing::RunResult r =
      testing::Run({FindProgram("ffmpeg"),
                    "-nostdin",
                    "-v",
                    "error",
                    "-f",
                    "lavfi",
                    "-i",
                    absl::StrCat("testsrc=size=", width, "x", height, ":rate=", fps),
                    "-frames:v",
                    absl::StrCat(frames),
                    "-c:v",
                    "libx264",
                    "-preset",
                    "ultrafast",
                    "-pix_fmt",
                    "yuv420p",
                    "-g",
                    absl::StrCat(gop),
                    "-threads",
                    "1",
                    "-y",
                    path},
                   absl::Seconds(60));
  if (r.exit_code != 0) {
    std::cerr << "ffmpeg failed (" << r.exit_code << ") for " << path << ": " << r.err << "\n";
    return false;
  }
  return true;
}

}  // namespace vjepa::dataworker
