#include "services/dataworker/batch/transforms.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "opencv2/imgproc.hpp"

namespace vjepa::dataworker {

absl::Status ValidateGeometry(const ClipGeometry& g) {
  if (g.frames <= 0 || g.crop <= 0 || g.patch <= 0 || g.tubelet <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip geometry: sizes must be positive, got frames ", g.frames, ", crop ",
                     g.crop, ", patch ", g.patch, ", tubelet ", g.tubelet));
  }
  if (g.frames % g.tubelet != 0 || g.crop % g.patch != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("clip geometry: frames (", g.frames, ") must be a multiple of tubelet (",
                     g.tubelet, ") and crop (", g.crop, ") of patch (", g.patch, ")"));
  }
  return absl::OkStatus();
}

int64_t TokenByteOffset(const ClipGeometry& g, int t, int y, int x, int c) {
  const int64_t side = g.grid_hw();
  const int64_t token = (int64_t{t / g.tubelet} * side + y / g.patch) * side + x / g.patch;
  const int64_t value =
      ((int64_t{t % g.tubelet} * g.patch + y % g.patch) * g.patch + x % g.patch) * 3 + c;
  return token * g.token_bytes() + value;
}

void ScatterFrame(const cv::Mat& rgb, int t, bool flip, const ClipGeometry& g, uint8_t* tokens) {
  const int64_t side = g.grid_hw();
  const int64_t token_bytes = g.token_bytes();
  const int patch = g.patch;
  const size_t patch_row_bytes = static_cast<size_t>(patch) * 3;
  const int64_t t_base = int64_t{t / g.tubelet} * side;
  const int64_t dt_offset = int64_t{t % g.tubelet} * patch * patch * 3;
  for (int y = 0; y < g.crop; ++y) {
    const uint8_t* row = rgb.ptr<uint8_t>(y);
    const int64_t row_token = (t_base + y / patch) * side;
    uint8_t* dst = tokens + row_token * token_bytes + dt_offset +
                   int64_t{y % patch} * static_cast<int64_t>(patch_row_bytes);
    if (!flip) {
      for (int64_t w = 0; w < side; ++w) {
        std::memcpy(dst + w * token_bytes, row + w * static_cast<int64_t>(patch_row_bytes),
                    patch_row_bytes);
      }
    } else {
      // Output column x takes source column crop − 1 − x.
      const uint8_t* last = row + static_cast<int64_t>(g.crop - 1) * 3;
      for (int64_t w = 0; w < side; ++w) {
        uint8_t* out = dst + w * token_bytes;
        const uint8_t* in = last - w * static_cast<int64_t>(patch_row_bytes);
        for (int dx = 0; dx < patch; ++dx) {
          out[0] = in[0];
          out[1] = in[1];
          out[2] = in[2];
          out += 3;
          in -= 3;
        }
      }
    }
  }
}

void Patchify(const uint8_t* clip, const ClipGeometry& g, uint8_t* tokens) {
  const size_t frame_bytes = static_cast<size_t>(g.crop) * g.crop * 3;
  for (int t = 0; t < g.frames; ++t) {
    const cv::Mat frame(g.crop, g.crop, CV_8UC3, const_cast<uint8_t*>(clip + t * frame_bytes));
    ScatterFrame(frame, t, /*flip=*/false, g, tokens);
  }
}

void Unpatchify(const uint8_t* tokens, const ClipGeometry& g, uint8_t* clip) {
  const int64_t side = g.grid_hw();
  const int64_t token_bytes = g.token_bytes();
  const size_t patch_row_bytes = static_cast<size_t>(g.patch) * 3;
  const int64_t row_bytes = int64_t{g.crop} * 3;
  for (int t = 0; t < g.frames; ++t) {
    for (int y = 0; y < g.crop; ++y) {
      uint8_t* row = clip + (int64_t{t} * g.crop + y) * row_bytes;
      const int64_t row_token = (int64_t{t / g.tubelet} * side + y / g.patch) * side;
      const uint8_t* src = tokens + row_token * token_bytes +
                           int64_t{t % g.tubelet} * g.patch * g.patch * 3 +
                           int64_t{y % g.patch} * static_cast<int64_t>(patch_row_bytes);
      for (int64_t w = 0; w < side; ++w) {
        std::memcpy(row + w * static_cast<int64_t>(patch_row_bytes), src + w * token_bytes,
                    patch_row_bytes);
      }
    }
  }
}

void ResizeLinear(const cv::Mat& rgb, int width, int height, cv::Mat* out) {
  cv::resize(rgb, *out, cv::Size(width, height), 0, 0, cv::INTER_LINEAR);
}

namespace {

absl::Status CheckBox(const FrameView& frame, const CropBox& box) {
  if (box.w <= 0 || box.h <= 0 || box.x < 0 || box.y < 0 || box.x + box.w > frame.width() ||
      box.y + box.h > frame.height()) {
    return absl::InternalError(absl::StrCat("crop box (", box.x, ", ", box.y, ", ", box.w, "x",
                                            box.h, ") outside the ", frame.width(), "x",
                                            frame.height(), " frame"));
  }
  return absl::OkStatus();
}

absl::Status CheckRgb(const cv::Mat& rgb, int w, int h) {
  if (rgb.type() != CV_8UC3 || rgb.cols != w || rgb.rows != h) {
    return absl::InternalError(absl::StrCat("frame conversion returned a ", rgb.cols, "x", rgb.rows,
                                            " image of type ", rgb.type(), ", expected ", w, "x", h,
                                            " RGB24"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ConvertTrainingFrame(const FrameView& frame, const CropBox& box, int crop,
                                  FrameScratch* scratch) {
  if (absl::Status s = CheckBox(frame, box); !s.ok()) return s;
  if (absl::Status s = frame.CropToRgb(box.x, box.y, box.w, box.h, &scratch->rgb); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckRgb(scratch->rgb, box.w, box.h); !s.ok()) return s;
  ResizeLinear(scratch->rgb, crop, crop, &scratch->resized);
  return absl::OkStatus();
}

absl::Status ConvertEvalFrame(const FrameView& frame, const EvalGeometry& geometry,
                              FrameScratch* scratch) {
  const CropBox whole{0, 0, frame.width(), frame.height()};
  if (absl::Status s = CheckBox(frame, whole); !s.ok()) return s;
  if (absl::Status s = frame.CropToRgb(0, 0, whole.w, whole.h, &scratch->rgb); !s.ok()) return s;
  if (absl::Status s = CheckRgb(scratch->rgb, whole.w, whole.h); !s.ok()) return s;
  ResizeLinear(scratch->rgb, geometry.resized_w, geometry.resized_h, &scratch->resized);
  return absl::OkStatus();
}

}  // namespace vjepa::dataworker
