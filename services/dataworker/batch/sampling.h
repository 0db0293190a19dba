// Where a clip comes from: which frames of a video (temporal sampling) and which box of them
// (spatial sampling), for training (docs/vjepa-spec.md §5, §9) and for evaluation (§6).
//
// Training (pretrain jobs), one clip per video:
//   window = frames × frame_step. A video of more than `window` frames gets a window end drawn
//   uniformly in [window, len − 1] (the reference's np.random.randint(window, len)), start =
//   end − window, and indices = linspace(start, end, frames) truncated to integers and clipped to
//   [start, end − 1]. A video of at most `window` frames gets len // frame_step points of
//   linspace(0, len) followed by copies of len, all clipped to len − 1: the clip spreads over
//   the whole video and is padded with its last frame (all frames are the last one when
//   len < frame_step).
//   The box is a random-resized-crop: scale ~ U(scale.min, scale.max) of the frame area, ratio
//   r = w/h log-uniform in [ratio.min, ratio.max], w = round(√(A·r)), h = round(√(A/r)) (round
//   half to even, as Python's round), accepted when 0 < w ≤ W and 0 < h ≤ H with offsets
//   y ~ U{0..H−h} then x ~ U{0..W−w}; after 10 rejected tries the fallback is the centre crop
//   of the ratio-clamped box. The whole clip shares one box and one flip (p = data.flip).
//
// Evaluation (probe jobs): no randomness at all.
//   Temporal: the video is split into `segments` partitions of len // segments frames. When a
//   partition is longer than the window, the segment is the window centred in its partition:
//   end = window + (partition − 1 − window) // 2 (the midpoint of the reference's random range),
//   then the training linspace rule, shifted by segment·partition. Otherwise the reference's
//   overlapping-segment rule: s = min(window, len) − 1, s // frame_step points of linspace(0, s)
//   followed by copies of s, clipped to [0, s − 1], shifted by
//   segment·((len − window) // (segments − 1)) when len > window (by 0 otherwise).
//   Spatial: with one view, the short side is resized to int(crop·256/224) and the centre
//   crop×crop box kept (offsets round((size − crop)/2), half to even); with V > 1 views, the
//   short side is resized to crop and view i starts at i·((long − crop) // (V − 1)) along the
//   long side (along the width for a square frame). Resized sizes follow the reference: the
//   long side becomes int(size·long/short).
//   Every index is finally clamped to [0, len − 1].
//
// Draws (docs/architecture.md §4): the caller passes the streams; BatchBuilder uses
//   ForBatch(seed, kClipStart | kCrop | kFlip, epoch, batch).Derive(slot).Derive(offset)
// where `offset` is the candidate's distance in the epoch permutation from the slot's own
// position (0 unless the slot's video was bad and replaced).
#ifndef VJEPA_SERVICES_DATAWORKER_BATCH_SAMPLING_H_
#define VJEPA_SERVICES_DATAWORKER_BATCH_SAMPLING_H_

#include <cstdint>
#include <vector>

#include "common/masking/random.h"

namespace vjepa::dataworker {

// numpy.linspace(start, stop, num) with endpoint: element i is i·((stop − start)/(num − 1)) +
// start and the last is exactly stop; num == 1 gives {start}; num <= 0 gives {}.
std::vector<double> Linspace(double start, double stop, int64_t num);

// The `frames` indices of the window [start, end): linspace(start, end, frames) truncated and
// clipped to [start, end − 1].
std::vector<int64_t> WindowIndices(int64_t start, int64_t end, int frames);

// The short-video rule: len // frame_step points of linspace(0, len), then copies of len, all
// clipped to [0, len − 1]; `frames` values.
std::vector<int64_t> ShortVideoIndices(int64_t video_frames, int frames, int frame_step);

// The training clip of a video of `video_frames` frames (> 0), drawing the window end from
// `rng` (one UniformInt, only when the video is longer than the window). Ascending.
std::vector<int64_t> TrainingClipIndices(int64_t video_frames, int frames, int frame_step,
                                         masking::RandomStream& rng);

// The evaluation clips: `segments` lists of `frames` indices each.
std::vector<std::vector<int64_t>> EvalClipIndices(int64_t video_frames, int frames, int frame_step,
                                                  int segments);

// A box in frame coordinates: columns [x, x + w), rows [y, y + h).
struct CropBox {
  int x = 0;
  int y = 0;
  int w = 0;
  int h = 0;
};
bool operator==(const CropBox& a, const CropBox& b);

struct RrcParams {
  double scale_min = 0.3;
  double scale_max = 1.0;
  double ratio_min = 0.75;  // width / height
  double ratio_max = 1.35;
};
inline constexpr int kRrcTries = 10;

// Round half to even, as Python's round().
int64_t RoundHalfEven(double x);

// The (w, h) of one random-resized-crop try with uniforms u_scale, u_ratio in [0, 1).
void RrcTrySize(int width, int height, const RrcParams& params, double u_scale, double u_ratio,
                int* w, int* h);
// The fallback: the centre crop of the frame clamped to the ratio range.
CropBox RrcFallback(int width, int height, const RrcParams& params);
// A random-resized-crop box of a width×height frame (both > 0): per try two Uniform()s (scale,
// ratio) and, for the accepted try, UniformInt(0, H − h) then UniformInt(0, W − w).
CropBox RandomResizedCrop(int width, int height, const RrcParams& params,
                          masking::RandomStream& rng);

// Evaluation geometry of a width×height frame: the whole frame is resized to
// resized_w×resized_h, then each view is a crop×crop box of the resized frame.
struct EvalGeometry {
  int resized_w = 0;
  int resized_h = 0;
  std::vector<CropBox> views;
};
EvalGeometry EvalViews(int width, int height, int crop, int views);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_BATCH_SAMPLING_H_
