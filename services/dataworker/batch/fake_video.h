// Test doubles of the video reader: frames are synthetic images, failures scripted.
#ifndef VJEPA_SERVICES_DATAWORKER_BATCH_FAKE_VIDEO_H_
#define VJEPA_SERVICES_DATAWORKER_BATCH_FAKE_VIDEO_H_

#include <cstdint>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "opencv2/core.hpp"
#include "services/dataworker/video/video_reader.h"

namespace vjepa::dataworker::fakes {

// A frame held in an RGB cv::Mat.
class MatFrameView : public FrameView {
 public:
  explicit MatFrameView(cv::Mat rgb) : rgb_(std::move(rgb)) {}
  int width() const override { return rgb_.cols; }
  int height() const override { return rgb_.rows; }
  absl::Status CropToRgb(int x, int y, int w, int h, cv::Mat* out) const override {
    if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > rgb_.cols || y + h > rgb_.rows) {
      return absl::InvalidArgumentError(
          absl::StrCat("box ", x, ",", y, " ", w, "x", h, " outside the frame"));
    }
    rgb_(cv::Rect(x, y, w, h)).copyTo(*out);
    return absl::OkStatus();
  }

 private:
  cv::Mat rgb_;
};

// Pixel (x, y) of frame i of a video with pattern seed s: a deterministic function of all four.
inline cv::Mat PatternFrame(int width, int height, int64_t index, uint32_t seed) {
  cv::Mat m(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    uint8_t* row = m.ptr<uint8_t>(y);
    for (int x = 0; x < width; ++x) {
      const uint32_t v =
          static_cast<uint32_t>(x * 7 + y * 13) + static_cast<uint32_t>(index) * 31 + seed * 101;
      row[3 * x + 0] = static_cast<uint8_t>(v);
      row[3 * x + 1] = static_cast<uint8_t>(v >> 3);
      row[3 * x + 2] = static_cast<uint8_t>(index * 9 + seed);
    }
  }
  return m;
}

// A video of `frames` frames of width×height; DecodeFrames may be scripted to fail.
class FakeVideoReader : public VideoReader {
 public:
  FakeVideoReader(int width, int height, int64_t frames, uint32_t seed) : seed_(seed) {
    info_.codec = "fake";
    info_.pixel_format = "rgb24";
    info_.width = width;
    info_.height = height;
    info_.frames = frames;
    info_.fps = 30;
    info_.duration_s = static_cast<double>(frames) / 30.0;
  }
  const VideoInfo& info() const override { return info_; }
  // Every DecodeFrames call returns `status` (after delivering nothing) when set.
  void FailDecodeWith(absl::Status status) { decode_error_ = std::move(status); }

  absl::Status DecodeFrames(absl::Span<const int64_t> indices, const FrameSink& sink,
                            absl::Time deadline, DecodeStats* stats) override {
    if (!decode_error_.ok()) return decode_error_;
    if (absl::Now() > deadline) return absl::DeadlineExceededError("fake decode: past deadline");
    int64_t last = -1;
    for (int64_t index : indices) {
      if (index < 0 || index >= info_.frames || index < last) {
        return absl::InvalidArgumentError(absl::StrCat("fake decode: bad index ", index));
      }
      if (index == last) continue;
      last = index;
      const MatFrameView view(PatternFrame(info_.width, info_.height, index, seed_));
      if (absl::Status s = sink(index, view); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  VideoInfo info_;
  uint32_t seed_;
  absl::Status decode_error_;
};

}  // namespace vjepa::dataworker::fakes

#endif  // VJEPA_SERVICES_DATAWORKER_BATCH_FAKE_VIDEO_H_
