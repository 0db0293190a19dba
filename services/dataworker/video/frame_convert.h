// Colour conversion of decoded frames straight toward a crop box: swscale runs on a region a
// little larger than the box (aligned to the chroma grid and to swscale's SIMD blocks), which gives
// the same pixels as converting the whole frame (as libavfilter's scale filter does with
// flags=bilinear and the frame's colour matrix and range) and then cropping.
#ifndef VJEPA_SERVICES_DATAWORKER_VIDEO_FRAME_CONVERT_H_
#define VJEPA_SERVICES_DATAWORKER_VIDEO_FRAME_CONVERT_H_

#include <string>

#include "absl/status/status.h"
#include "opencv2/core/mat.hpp"
#include "services/dataworker/video/video_reader.h"

extern "C" {
struct AVFrame;
struct SwsContext;
}

namespace vjepa::dataworker {

// Not thread-safe: one per reader.
class RgbConverter {
 public:
  explicit RgbConverter(std::string path);  // `path` names the video in errors
  ~RgbConverter();
  RgbConverter(const RgbConverter&) = delete;
  RgbConverter& operator=(const RgbConverter&) = delete;

  // The box (x, y, w, h), in the coordinates of `frame` scaled to target_w x target_h (normally
  // its own size), as RGB24. `out` is a view into an internal buffer, valid until the next call.
  absl::Status Crop(const AVFrame& frame, int target_w, int target_h, int x, int y, int w, int h,
                    cv::Mat* out);

 private:
  struct Key {
    int src_w = 0, src_h = 0, src_format = -1, dst_w = 0, dst_h = 0, colorspace = -1, range = -1;
    bool operator==(const Key& o) const {
      return src_w == o.src_w && src_h == o.src_h && src_format == o.src_format &&
             dst_w == o.dst_w && dst_h == o.dst_h && colorspace == o.colorspace && range == o.range;
    }
  };
  absl::Status Prepare(const Key& key);

  const std::string path_;
  SwsContext* sws_ = nullptr;
  Key key_;
  cv::Mat buffer_;
};

// A decoded frame in display orientation: `rotation` clockwise degrees (0, 90, 180, 270) turn the
// coded frame (scaled to coded_w x coded_h when the decoder changed its size) into the display.
class AvFrameView final : public FrameView {
 public:
  AvFrameView(const AVFrame* frame, int coded_w, int coded_h, int rotation, RgbConverter* converter)
      : frame_(frame),
        coded_w_(coded_w),
        coded_h_(coded_h),
        rotation_(rotation),
        converter_(converter) {}

  int width() const override { return rotation_ % 180 == 0 ? coded_w_ : coded_h_; }
  int height() const override { return rotation_ % 180 == 0 ? coded_h_ : coded_w_; }
  absl::Status CropToRgb(int x, int y, int w, int h, cv::Mat* out) const override;

 private:
  const AVFrame* frame_;
  int coded_w_, coded_h_, rotation_;
  RgbConverter* converter_;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_VIDEO_FRAME_CONVERT_H_
