#include "services/dataworker/batch/sampling.h"

#include <algorithm>
#include <cmath>

namespace vjepa::dataworker {
namespace {

int64_t Clamp(int64_t v, int64_t lo, int64_t hi) { return std::max(lo, std::min(v, hi)); }

// float → int64 as numpy's astype(np.int64) on the (non-negative) values used here.
int64_t Truncate(double v) { return static_cast<int64_t>(v); }

}  // namespace

std::vector<double> Linspace(double start, double stop, int64_t num) {
  std::vector<double> out;
  if (num <= 0) return out;
  out.reserve(static_cast<size_t>(num));
  if (num == 1) {
    out.push_back(start);
    return out;
  }
  const double delta = stop - start;
  const double step = delta / static_cast<double>(num - 1);
  for (int64_t i = 0; i < num; ++i) {
    // numpy computes i·step + start, except for a zero step (i/div·delta: start again here).
    out.push_back(step == 0 ? start : static_cast<double>(i) * step + start);
  }
  out.back() = stop;
  return out;
}

std::vector<int64_t> WindowIndices(int64_t start, int64_t end, int frames) {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(std::max(frames, 0)));
  for (double v : Linspace(static_cast<double>(start), static_cast<double>(end), frames)) {
    // np.clip(indices, start, end − 1).astype(np.int64): clip in float, then truncate.
    out.push_back(
        Truncate(std::clamp(v, static_cast<double>(start), static_cast<double>(end - 1))));
  }
  return out;
}

std::vector<int64_t> ShortVideoIndices(int64_t video_frames, int frames, int frame_step) {
  const int64_t points = std::min<int64_t>(video_frames / frame_step, frames);
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(std::max(frames, 0)));
  const double last = static_cast<double>(video_frames - 1);
  for (double v : Linspace(0, static_cast<double>(video_frames), points)) {
    out.push_back(Truncate(std::clamp(v, 0.0, last)));
  }
  while (static_cast<int64_t>(out.size()) < frames) {
    out.push_back(Truncate(std::clamp(static_cast<double>(video_frames), 0.0, last)));
  }
  return out;
}

std::vector<int64_t> TrainingClipIndices(int64_t video_frames, int frames, int frame_step,
                                         masking::RandomStream& rng) {
  const int64_t window = static_cast<int64_t>(frames) * frame_step;
  if (video_frames > window) {
    const int64_t end = rng.UniformInt(window, video_frames - 1);
    return WindowIndices(end - window, end, frames);
  }
  std::vector<int64_t> out = ShortVideoIndices(video_frames, frames, frame_step);
  for (int64_t& v : out) v = Clamp(v, 0, video_frames - 1);
  return out;
}

std::vector<std::vector<int64_t>> EvalClipIndices(int64_t video_frames, int frames, int frame_step,
                                                  int segments) {
  const int64_t window = static_cast<int64_t>(frames) * frame_step;
  const int64_t partition = video_frames / segments;
  std::vector<std::vector<int64_t>> out;
  out.reserve(static_cast<size_t>(segments));
  for (int s = 0; s < segments; ++s) {
    std::vector<int64_t> indices;
    if (partition > window) {
      const int64_t end = window + (partition - 1 - window) / 2;
      indices = WindowIndices(end - window, end, frames);
      for (int64_t& v : indices) v += s * partition;
    } else {
      const int64_t sample_len = std::min(window, video_frames) - 1;
      const int64_t points = std::min<int64_t>(sample_len / frame_step, frames);
      const double hi = static_cast<double>(sample_len - 1);
      auto clip = [hi](double v) { return Truncate(std::max(0.0, std::min(v, hi))); };
      for (double v : Linspace(0, static_cast<double>(sample_len), points)) {
        indices.push_back(clip(v));
      }
      while (static_cast<int64_t>(indices.size()) < frames) {
        indices.push_back(clip(static_cast<double>(sample_len)));
      }
      const int64_t clip_step =
          (video_frames > window && segments > 1) ? (video_frames - window) / (segments - 1) : 0;
      for (int64_t& v : indices) v += s * clip_step;
    }
    for (int64_t& v : indices) v = Clamp(v, 0, video_frames - 1);
    out.push_back(std::move(indices));
  }
  return out;
}

bool operator==(const CropBox& a, const CropBox& b) {
  return a.x == b.x && a.y == b.y && a.w == b.w && a.h == b.h;
}

int64_t RoundHalfEven(double x) { return static_cast<int64_t>(std::nearbyint(x)); }

void RrcTrySize(int width, int height, const RrcParams& params, double u_scale, double u_ratio,
                int* w, int* h) {
  const double area = static_cast<double>(width) * static_cast<double>(height);
  // random.uniform(a, b) = a + (b − a)·u.
  const double target_area =
      (params.scale_min + (params.scale_max - params.scale_min) * u_scale) * area;
  const double log_min = std::log(params.ratio_min);
  const double log_max = std::log(params.ratio_max);
  const double ratio = std::exp(log_min + (log_max - log_min) * u_ratio);
  // Bounded before the conversion: sizes beyond any frame are rejected anyway.
  const double limit = 4.0 * (static_cast<double>(width) + static_cast<double>(height)) + 4.0;
  *w = static_cast<int>(RoundHalfEven(std::min(std::sqrt(target_area * ratio), limit)));
  *h = static_cast<int>(RoundHalfEven(std::min(std::sqrt(target_area / ratio), limit)));
}

CropBox RrcFallback(int width, int height, const RrcParams& params) {
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  const double lo = std::min(params.ratio_min, params.ratio_max);
  const double hi = std::max(params.ratio_min, params.ratio_max);
  int w = width;
  int h = height;
  if (in_ratio < lo) {
    h = static_cast<int>(RoundHalfEven(static_cast<double>(w) / lo));
  } else if (in_ratio > hi) {
    w = static_cast<int>(RoundHalfEven(static_cast<double>(h) * hi));
  }
  w = std::clamp(w, 1, width);
  h = std::clamp(h, 1, height);
  return CropBox{(width - w) / 2, (height - h) / 2, w, h};
}

CropBox RandomResizedCrop(int width, int height, const RrcParams& params,
                          masking::RandomStream& rng) {
  for (int attempt = 0; attempt < kRrcTries; ++attempt) {
    const double u_scale = rng.Uniform();
    const double u_ratio = rng.Uniform();
    int w = 0;
    int h = 0;
    RrcTrySize(width, height, params, u_scale, u_ratio, &w, &h);
    if (0 < w && w <= width && 0 < h && h <= height) {
      const int y = static_cast<int>(rng.UniformInt(0, height - h));
      const int x = static_cast<int>(rng.UniformInt(0, width - w));
      return CropBox{x, y, w, h};
    }
  }
  return RrcFallback(width, height, params);
}

EvalGeometry EvalViews(int width, int height, int crop, int views) {
  EvalGeometry g;
  // One view: short side → int(crop·256/224), centre crop. Several: short side → crop.
  const int64_t size = views == 1 ? (int64_t{crop} * 256) / 224 : crop;
  // get_resize_sizes of the reference: the long side is int(size·long/short) in float.
  if (width < height) {
    g.resized_w = static_cast<int>(size);
    g.resized_h = static_cast<int>(static_cast<double>(size * height) / width);
  } else {
    g.resized_h = static_cast<int>(size);
    g.resized_w = static_cast<int>(static_cast<double>(size * width) / height);
  }
  if (views == 1) {
    const int x = static_cast<int>(RoundHalfEven((g.resized_w - crop) / 2.0));
    const int y = static_cast<int>(RoundHalfEven((g.resized_h - crop) / 2.0));
    g.views.push_back(CropBox{x, y, crop, crop});
    return g;
  }
  const int long_side = std::max(g.resized_w, g.resized_h);
  const int step = (long_side - crop) / (views - 1);
  for (int i = 0; i < views; ++i) {
    if (g.resized_h > g.resized_w) {
      g.views.push_back(CropBox{0, i * step, crop, crop});
    } else {
      g.views.push_back(CropBox{i * step, 0, crop, crop});
    }
  }
  return g;
}

}  // namespace vjepa::dataworker
