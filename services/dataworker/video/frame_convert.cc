#include "services/dataworker/video/frame_convert.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "opencv2/core.hpp"
#include "services/dataworker/video/bad_video.h"

extern "C" {
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <libavutil/pixfmt.h>
#include <libswscale/swscale.h>
}

namespace vjepa::dataworker {
namespace {

// The region converted around a box: this many pixels of margin on every side (covers the
// chroma interpolation taps of swscale's general path), the left edge and the width aligned to
// kAlignX pixels (whole SIMD blocks, 16-byte aligned plane pointers), rows to the chroma grid.
constexpr int kMargin = 8;
constexpr int kAlignX = 32;
constexpr int kSwsFlags = SWS_BILINEAR;

int FloorTo(int v, int a) { return v / a * a; }
int CeilTo(int v, int a) { return (v + a - 1) / a * a; }

const char* PixelFormatName(int format) {
  const char* name = av_get_pix_fmt_name(static_cast<AVPixelFormat>(format));
  return name != nullptr ? name : "unknown";
}

}  // namespace

RgbConverter::RgbConverter(std::string path) : path_(std::move(path)) {}

RgbConverter::~RgbConverter() { sws_freeContext(sws_); }

absl::Status RgbConverter::Prepare(const Key& key) {
  if (sws_ != nullptr && key == key_) return absl::OkStatus();
  sws_freeContext(sws_);
  key_ = Key();
  sws_ = sws_getContext(key.src_w, key.src_h, static_cast<AVPixelFormat>(key.src_format), key.dst_w,
                        key.dst_h, AV_PIX_FMT_RGB24, kSwsFlags, nullptr, nullptr, nullptr);
  if (sws_ == nullptr) {
    return BadVideo(BadVideoReason::kUnsupportedCodec, path_,
                    absl::StrCat("cannot convert ", key.src_w, "x", key.src_h, " ",
                                 PixelFormatName(key.src_format), " frames to RGB"));
  }
  // As libavfilter's scale filter: the frame's colour matrix, and its range when it has one.
  int* inv_table = nullptr;
  int* table = nullptr;
  int src_full = 0, dst_full = 0, brightness = 0, contrast = 0, saturation = 0;
  if (sws_getColorspaceDetails(sws_, &inv_table, &src_full, &table, &dst_full, &brightness,
                               &contrast, &saturation) >= 0) {
    const int* coefficients = sws_getCoefficients(key.colorspace);
    if (key.range != AVCOL_RANGE_UNSPECIFIED) src_full = key.range == AVCOL_RANGE_JPEG;
    sws_setColorspaceDetails(sws_, coefficients, src_full, coefficients, dst_full, brightness,
                             contrast, saturation);
  }
  key_ = key;
  return absl::OkStatus();
}

absl::Status RgbConverter::Crop(const AVFrame& frame, int target_w, int target_h, int x, int y,
                                int w, int h, cv::Mat* out) {
  if (w <= 0 || h <= 0 || x < 0 || y < 0 || x + w > target_w || y + h > target_h) {
    return absl::InvalidArgumentError(absl::StrCat(path_, ": crop box ", x, ",", y, " ", w, "x", h,
                                                   " outside the ", target_w, "x", target_h,
                                                   " frame"));
  }
  const auto format = static_cast<AVPixelFormat>(frame.format);
  const AVPixFmtDescriptor* desc = av_pix_fmt_desc_get(format);
  if (desc == nullptr || frame.width <= 0 || frame.height <= 0) {
    return BadVideo(BadVideoReason::kDecodeError, path_, "decoder returned an invalid frame");
  }
  const bool scaled = frame.width != target_w || frame.height != target_h;
  if (!scaled && format == AV_PIX_FMT_RGB24) {
    // Already RGB24: the box's rows as they are (swscale's packed copy would read whole strides
    // from the box's left edge, past the end of the last row).
    if (buffer_.rows < h || buffer_.cols < w) {
      buffer_.create(std::max(h, buffer_.rows), std::max(w, buffer_.cols), CV_8UC3);
    }
    for (int r = 0; r < h; ++r) {
      std::memcpy(buffer_.ptr(r),
                  frame.data[0] + static_cast<ptrdiff_t>(y + r) * frame.linesize[0] + x * 3,
                  static_cast<size_t>(w) * 3);
    }
    *out = buffer_(cv::Rect(0, 0, w, h));
    return absl::OkStatus();
  }
  // swscale places chroma samples by the ratio of chroma to luma size, which differs between a
  // region and the frame when a subsampled dimension is odd: those frames (rare) and 4:1
  // subsampling are converted whole.
  const bool regional =
      !scaled && desc->nb_components > 0 &&
      (desc->flags & (AV_PIX_FMT_FLAG_HWACCEL | AV_PIX_FMT_FLAG_BITSTREAM)) == 0 &&
      desc->log2_chroma_w <= 1 && desc->log2_chroma_h <= 1 &&
      (desc->log2_chroma_w == 0 || frame.width % 2 == 0) &&
      (desc->log2_chroma_h == 0 || frame.height % 2 == 0);
  int x0 = 0, y0 = 0, x1 = target_w, y1 = target_h;
  if (regional) {
    const int align_y = 2;
    x0 = FloorTo(std::max(0, x - kMargin), kAlignX);
    x1 = std::min(frame.width, CeilTo(x + w + kMargin, kAlignX));
    y0 = FloorTo(std::max(0, y - kMargin), align_y);
    y1 = std::min(frame.height, CeilTo(y + h + kMargin, align_y));
    // swscale picks its unscaled YUV->RGB path only for an even number of rows: keep the parity
    // of the whole frame so that the region takes the same path.
    if ((y1 - y0) % 2 != frame.height % 2) y1 = std::min(frame.height, y1 + 1);
  }
  const int rw = x1 - x0, rh = y1 - y0;

  const uint8_t* src[4] = {frame.data[0], frame.data[1], frame.data[2], frame.data[3]};
  int src_stride[4] = {frame.linesize[0], frame.linesize[1], frame.linesize[2], frame.linesize[3]};
  if (regional && (x0 != 0 || y0 != 0)) {
    for (int plane = 0; plane < 4; ++plane) {
      // The component that sets this plane's geometry: luma or alpha (full resolution) first.
      int c = -1;
      for (int i = 0; i < desc->nb_components; ++i) {
        if (desc->comp[i].plane != plane) continue;
        const bool full = i == 0 || i == 3;
        if (c < 0 || full) c = i;
        if (full) break;
      }
      if (c < 0 || src[plane] == nullptr) continue;
      const bool chroma = (c == 1 || c == 2) && (desc->flags & AV_PIX_FMT_FLAG_RGB) == 0;
      const int sx = chroma ? desc->log2_chroma_w : 0;
      const int sy = chroma ? desc->log2_chroma_h : 0;
      src[plane] += static_cast<ptrdiff_t>(y0 >> sy) * src_stride[plane] +
                    static_cast<ptrdiff_t>(x0 >> sx) * desc->comp[c].step;
    }
  }

  Key key;
  key.src_w = scaled ? frame.width : rw;
  key.src_h = scaled ? frame.height : rh;
  key.src_format = frame.format;
  key.dst_w = rw;
  key.dst_h = rh;
  key.colorspace = frame.colorspace;
  key.range = frame.color_range;
  if (absl::Status s = Prepare(key); !s.ok()) return s;

  // Room past the row end: swscale's SIMD paths write whole blocks.
  const int cols = CeilTo(rw, kAlignX) + kAlignX;
  if (buffer_.rows < rh || buffer_.cols < cols) {
    buffer_.create(std::max(rh, buffer_.rows), std::max(cols, buffer_.cols), CV_8UC3);
  }
  uint8_t* dst[4] = {buffer_.data, nullptr, nullptr, nullptr};
  const int dst_stride[4] = {static_cast<int>(buffer_.step[0]), 0, 0, 0};
  const int rows = sws_scale(sws_, src, src_stride, 0, key.src_h, dst, dst_stride);
  if (rows != rh) {
    return BadVideo(BadVideoReason::kDecodeError, path_,
                    absl::StrCat("colour conversion produced ", rows, " of ", rh, " rows"));
  }
  *out = buffer_(cv::Rect(x - x0, y - y0, w, h));
  return absl::OkStatus();
}

absl::Status AvFrameView::CropToRgb(int x, int y, int w, int h, cv::Mat* out) const {
  const int dw = width(), dh = height();
  if (w <= 0 || h <= 0 || x < 0 || y < 0 || x + w > dw || y + h > dh) {
    return absl::InvalidArgumentError(absl::StrCat("crop box ", x, ",", y, " ", w, "x", h,
                                                   " outside the ", dw, "x", dh, " frame"));
  }
  // The box in coded coordinates (the display is the coded frame turned `rotation_` degrees
  // clockwise).
  int cx = x, cy = y, cw = w, ch = h;
  switch (rotation_) {
    case 90:
      cx = y, cy = coded_h_ - x - w, cw = h, ch = w;
      break;
    case 180:
      cx = coded_w_ - x - w, cy = coded_h_ - y - h;
      break;
    case 270:
      cx = coded_w_ - y - h, cy = x, cw = h, ch = w;
      break;
    default:
      break;
  }
  cv::Mat region;
  if (absl::Status s = converter_->Crop(*frame_, coded_w_, coded_h_, cx, cy, cw, ch, &region);
      !s.ok()) {
    return s;
  }
  switch (rotation_) {
    case 90:
      cv::rotate(region, *out, cv::ROTATE_90_CLOCKWISE);
      break;
    case 180:
      cv::rotate(region, *out, cv::ROTATE_180);
      break;
    case 270:
      cv::rotate(region, *out, cv::ROTATE_90_COUNTERCLOCKWISE);
      break;
    default:
      region.copyTo(*out);
      break;
  }
  return absl::OkStatus();
}

}  // namespace vjepa::dataworker
