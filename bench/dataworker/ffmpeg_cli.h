// The ffmpeg command-line tool as the dataworker benchmark's ceiling and input generator.
#ifndef VJEPA_BENCH_DATAWORKER_FFMPEG_CLI_H_
#define VJEPA_BENCH_DATAWORKER_FFMPEG_CLI_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace vjepa::bench {

// Frames [first, last] of a video, in presentation order.
struct FrameRange {
  int64_t first = 0;
  int64_t last = 0;
};

// Runs `argv` (argv[0] looked up on PATH), returns its exit code and its stderr+stdout.
absl::StatusOr<std::pair<int, std::string>> RunCommand(const std::vector<std::string>& argv);

// The CPU seconds (user + system, from -benchmark) that one `ffmpeg -threads 1` invocation
// takes to decode every range of `path` to -f null: each range is one input with input seeking
// (-ss/-to in seconds at `fps`, so the decoder starts at the key frame before it, as the
// dataworker does).
absl::StatusOr<double> FfmpegDecodeCpuSeconds(const std::string& path, double fps,
                                              const std::vector<FrameRange>& ranges);

// The default inputs, generated once into `cache` from the Debian test clips fetched by
// scripts/fetch_test_videos.sh: (configuration name, files).
absl::StatusOr<std::vector<std::pair<std::string, std::vector<std::string>>>> GenerateDefaultInputs(
    const std::string& cache);

}  // namespace vjepa::bench

#endif  // VJEPA_BENCH_DATAWORKER_FFMPEG_CLI_H_
