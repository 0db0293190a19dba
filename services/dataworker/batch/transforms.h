// From decoded frames to the tokens on the wire (docs/architecture.md §3): a clip of T frames of
// crop×crop RGB becomes N = (T/tubelet)·(crop/patch)² tokens in (t, h, w) row-major order, each of
// P = tubelet·patch·patch·3 uint8 values in (dt, dy, dx, c) order.
//
// A sampled frame is cropped to its box and converted to RGB by the reader (FrameView::CropToRgb),
// resized to crop×crop with OpenCV's INTER_LINEAR on 8-bit values (bilinear, half-pixel centres,
// no antialiasing: docs/vjepa-spec.md §9), and scattered straight into the token buffer,
// mirrored when the clip is flipped. No clip-shaped intermediate exists.
#ifndef VJEPA_SERVICES_DATAWORKER_BATCH_TRANSFORMS_H_
#define VJEPA_SERVICES_DATAWORKER_BATCH_TRANSFORMS_H_

#include <cstdint>

#include "absl/status/status.h"
#include "opencv2/core/mat.hpp"
#include "services/dataworker/batch/sampling.h"
#include "services/dataworker/video/video_reader.h"

namespace vjepa::dataworker {

// Shape of one clip and of its tokens.
struct ClipGeometry {
  int frames = 16;
  int crop = 224;
  int patch = 16;
  int tubelet = 2;

  int64_t grid_t() const { return frames / tubelet; }
  int64_t grid_hw() const { return crop / patch; }
  int64_t tokens() const { return grid_t() * grid_hw() * grid_hw(); }
  int64_t token_bytes() const { return int64_t{tubelet} * patch * patch * 3; }
  int64_t clip_bytes() const { return tokens() * token_bytes(); }
};

// INVALID_ARGUMENT unless every size is positive, frames is a multiple of tubelet and crop of
// patch.
absl::Status ValidateGeometry(const ClipGeometry& g);

// Where value c of pixel (y, x) of frame t lands in the token buffer: token index · P + value
// index.
int64_t TokenByteOffset(const ClipGeometry& g, int t, int y, int x, int c);

// Writes frame `t` (a crop×crop CV_8UC3 RGB image, any row stride) into `tokens` (N·P bytes),
// mirrored left-right when `flip`.
void ScatterFrame(const cv::Mat& rgb, int t, bool flip, const ClipGeometry& g, uint8_t* tokens);

// A clip [T, crop, crop, 3] uint8 (contiguous) → tokens [N, P]; and back.
void Patchify(const uint8_t* clip, const ClipGeometry& g, uint8_t* tokens);
void Unpatchify(const uint8_t* tokens, const ClipGeometry& g, uint8_t* clip);

// Reusable images of one producer thread.
struct FrameScratch {
  cv::Mat rgb;      // the box as RGB, from the reader
  cv::Mat resized;  // after the resize
};

// `rgb` (CV_8UC3) resized to width×height with INTER_LINEAR into `out` (a copy when the size
// is unchanged).
void ResizeLinear(const cv::Mat& rgb, int width, int height, cv::Mat* out);

// Training path of one decoded frame: CropToRgb(box), then resized to crop×crop into
// scratch->resized. The caller scatters it into the clip's frame slots (ScatterFrame).
absl::Status ConvertTrainingFrame(const FrameView& frame, const CropBox& box, int crop,
                                  FrameScratch* scratch);

// Evaluation path of one decoded frame: the whole frame, resized to
// geometry.resized_w×resized_h into scratch->resized; views are boxes of it.
absl::Status ConvertEvalFrame(const FrameView& frame, const EvalGeometry& geometry,
                              FrameScratch* scratch);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_BATCH_TRANSFORMS_H_
