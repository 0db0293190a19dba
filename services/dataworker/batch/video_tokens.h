// The evaluation clips of one video file as uint8 tokens, for tools outside the dataworker
// (vjepa-embed --video). The same transforms as a probe job's batches (sampling.h): temporal
// segments × spatial views, no randomness. The interface is plain C++ so that LibTorch tools
// can include it without Abseil.
#ifndef VJEPA_SERVICES_DATAWORKER_BATCH_VIDEO_TOKENS_H_
#define VJEPA_SERVICES_DATAWORKER_BATCH_VIDEO_TOKENS_H_

#include <cstdint>
#include <string>
#include <vector>

namespace vjepa::dataworker {

struct VideoTokensOptions {
  int frames = 16;
  int crop = 224;
  int patch = 16;
  int tubelet = 2;
  int frame_step = 4;
  int segments = 1;
  int views = 1;
};

struct VideoTokens {
  // segments × views clips in (segment, view) order, each N·P uint8 values: tokens (t, h, w)
  // row-major, values (dt, dy, dx, c).
  std::vector<std::string> clips;
  std::string codec;
  int width = 0;
  int height = 0;
  int64_t frames = 0;
  double fps = 0;
};

// false with `error` naming the file and the reason when the video cannot be read.
bool ReadVideoTokens(const std::string& path, const VideoTokensOptions& options, VideoTokens* out,
                     std::string* error);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_BATCH_VIDEO_TOKENS_H_
