#include "services/dataworker/batch/sampling.h"

#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::dataworker {
namespace {

using masking::DrawKind;
using masking::RandomStream;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

using Indices = std::vector<int64_t>;

// Expected values: the reference's loadvideo_decord (facebookresearch/jepa,
// src/datasets/video_dataset.py, num_clips 1, no overlap) evaluated by hand-checked float64
// arithmetic: linspace element i = i·((stop − start)/(num − 1)) + start, last = stop; clip, then
// truncate. 16 frames, frame step 4 (window 64) unless said otherwise.
struct ShortCase {
  int64_t len;
  Indices expected;
};

TEST(ClipIndicesTest, ShortVideosFollowTheReference) {
  const std::vector<ShortCase> cases = {
      {1, Indices(16, 0)},
      {3, Indices(16, 2)},  // below frame_step: every index is the last frame
      {4, {0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3}},
      {5, {0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}},
      {8, {0, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7}},
      {36, {0, 4, 9, 13, 18, 22, 27, 31, 35, 35, 35, 35, 35, 35, 35, 35}},
      {63, {0, 4, 9, 13, 18, 22, 27, 31, 36, 40, 45, 49, 54, 58, 62, 62}},
      {64, {0, 4, 8, 12, 17, 21, 25, 29, 34, 38, 42, 46, 51, 55, 59, 63}},
  };
  for (const ShortCase& c : cases) {
    SCOPED_TRACE(c.len);
    EXPECT_THAT(ShortVideoIndices(c.len, 16, 4), ElementsAreArray(c.expected));
    // The training path takes the short-video rule up to the window and draws nothing.
    RandomStream rng = RandomStream::Root(7);
    RandomStream untouched = rng;
    EXPECT_THAT(TrainingClipIndices(c.len, 16, 4, rng), ElementsAreArray(c.expected));
    EXPECT_EQ(rng.NextU64(), untouched.NextU64());
  }
}

TEST(ClipIndicesTest, WindowsFollowTheReference) {
  // (len, end) → indices of the window [end − 64, end).
  EXPECT_THAT(WindowIndices(0, 64, 16),
              ElementsAre(0, 4, 8, 12, 17, 21, 25, 29, 34, 38, 42, 46, 51, 55, 59, 63));
  EXPECT_THAT(WindowIndices(35, 99, 16),
              ElementsAre(35, 39, 43, 47, 52, 56, 60, 64, 69, 73, 77, 81, 86, 90, 94, 98));
  EXPECT_THAT(WindowIndices(436, 500, 16), ElementsAre(436, 440, 444, 448, 453, 457, 461, 465, 470,
                                                       474, 478, 482, 487, 491, 495, 499));
  EXPECT_THAT(WindowIndices(59, 123, 16),
              ElementsAre(59, 63, 67, 71, 76, 80, 84, 88, 93, 97, 101, 105, 110, 114, 118, 122));
  // 8 frames, step 2: window 16.
  EXPECT_THAT(WindowIndices(0, 16, 8), ElementsAre(0, 2, 4, 6, 9, 11, 13, 15));
  EXPECT_THAT(ShortVideoIndices(10, 8, 2), ElementsAre(0, 2, 5, 7, 9, 9, 9, 9));
}

TEST(ClipIndicesTest, SixtyFiveFramesHaveOneWindow) {
  // randint(64, 65) can only give 64: the window [0, 64).
  for (uint64_t seed = 0; seed < 20; ++seed) {
    RandomStream rng = RandomStream::Root(seed);
    EXPECT_THAT(TrainingClipIndices(65, 16, 4, rng),
                ElementsAre(0, 4, 8, 12, 17, 21, 25, 29, 34, 38, 42, 46, 51, 55, 59, 63));
  }
}

TEST(ClipIndicesTest, LongVideosDrawTheWindowEndUniformly) {
  const int64_t len = 100;  // ends 64..99: 36 values
  std::vector<int> count(100, 0);
  const int draws = 36 * 200;
  for (int i = 0; i < draws; ++i) {
    RandomStream rng = RandomStream::ForBatch(234, DrawKind::kClipStart, 0, i);
    RandomStream copy = rng;
    const int64_t end = copy.UniformInt(64, len - 1);
    const Indices got = TrainingClipIndices(len, 16, 4, rng);
    ASSERT_EQ(got, WindowIndices(end - 64, end, 16));
    ASSERT_EQ(got.size(), 16u);
    EXPECT_GE(got.front(), end - 64);
    EXPECT_LE(got.back(), end - 1);
    EXPECT_TRUE(std::is_sorted(got.begin(), got.end()));
    ++count[end];
  }
  for (int end = 0; end < 100; ++end) {
    if (end < 64) {
      EXPECT_EQ(count[end], 0) << end;
    } else {
      // 200 expected per value; 6 sigma ≈ 84.
      EXPECT_NEAR(count[end], 200, 84) << end;
    }
  }
}

TEST(ClipIndicesTest, EvalSegmentsAreDeterministicAndSpread) {
  // Partitions longer than the window: the centred window of each partition.
  EXPECT_THAT(EvalClipIndices(1000, 16, 4, 2),
              ElementsAre(ElementsAre(217, 221, 225, 229, 234, 238, 242, 246, 251, 255, 259, 263,
                                      268, 272, 276, 280),
                          ElementsAre(717, 721, 725, 729, 734, 738, 742, 746, 751, 755, 759, 763,
                                      768, 772, 776, 780)));
  EXPECT_THAT(EvalClipIndices(500, 16, 4, 1),
              ElementsAre(ElementsAre(217, 221, 225, 229, 234, 238, 242, 246, 251, 255, 259, 263,
                                      268, 272, 276, 280)));
  // Shorter partitions: the reference's overlapping segments, (300 − 64) // 7 = 33 apart.
  const auto eight = EvalClipIndices(300, 16, 4, 8);
  ASSERT_EQ(eight.size(), 8u);
  EXPECT_THAT(eight[0], ElementsAre(0, 4, 9, 13, 18, 22, 27, 31, 36, 40, 45, 49, 54, 58, 62, 62));
  EXPECT_THAT(eight[7], ElementsAre(231, 235, 240, 244, 249, 253, 258, 262, 267, 271, 276, 280, 285,
                                    289, 293, 293));
  for (int s = 1; s < 8; ++s) {
    for (int t = 0; t < 16; ++t) EXPECT_EQ(eight[s][t], eight[0][t] + 33 * s);
  }
  EXPECT_THAT(
      EvalClipIndices(100, 16, 4, 2),
      ElementsAre(ElementsAre(0, 4, 9, 13, 18, 22, 27, 31, 36, 40, 45, 49, 54, 58, 62, 62),
                  ElementsAre(36, 40, 45, 49, 54, 58, 63, 67, 72, 76, 81, 85, 90, 94, 98, 98)));
  // Not longer than the window: every segment is the same spread over the video.
  EXPECT_THAT(
      EvalClipIndices(30, 16, 4, 1),
      ElementsAre(ElementsAre(0, 4, 9, 14, 19, 24, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28)));
  const auto three = EvalClipIndices(64, 16, 4, 3);
  EXPECT_EQ(three[0], three[1]);
  EXPECT_EQ(three[1], three[2]);
  EXPECT_THAT(EvalClipIndices(1, 16, 4, 2), ElementsAre(Indices(16, 0), Indices(16, 0)));
}

TEST(LinspaceTest, MatchesNumpy) {
  EXPECT_THAT(Linspace(0, 4, 1), ElementsAre(0.0));
  EXPECT_TRUE(Linspace(0, 4, 0).empty());
  EXPECT_THAT(Linspace(3, 3, 3), ElementsAre(3.0, 3.0, 3.0));
  const std::vector<double> v = Linspace(0, 64, 16);
  EXPECT_EQ(v[15], 64.0);
  EXPECT_EQ(v[1], 64.0 / 15.0);
  EXPECT_EQ(v[7], 7 * (64.0 / 15.0));
}

// --- Random-resized-crop -------------------------------------------------------------------

TEST(RandomResizedCropTest, RoundsHalfToEven) {
  EXPECT_EQ(RoundHalfEven(2.5), 2);
  EXPECT_EQ(RoundHalfEven(3.5), 4);
  EXPECT_EQ(RoundHalfEven(-0.5), 0);
  EXPECT_EQ(RoundHalfEven(7.49), 7);
}

TEST(RandomResizedCropTest, TrySizeFollowsTheFormula) {
  const RrcParams p;  // scale [0.3, 1], ratio [0.75, 1.35]
  int w = 0;
  int h = 0;
  // u = 0: scale 0.3, ratio 0.75 on 640×360: A = 69120, w = round(√51840) = 228,
  // h = round(√92160) = 304.
  RrcTrySize(640, 360, p, 0.0, 0.0, &w, &h);
  EXPECT_EQ(w, 228);
  EXPECT_EQ(h, 304);
  // u_scale → 1, u_ratio = 0.5: ratio √(0.75·1.35) ≈ 1.00623, A ≈ 230400.
  RrcTrySize(640, 360, p, 1.0, 0.5, &w, &h);
  EXPECT_EQ(w, static_cast<int>(RoundHalfEven(std::sqrt(230400 * std::sqrt(0.75 * 1.35)))));
  EXPECT_EQ(h, static_cast<int>(RoundHalfEven(std::sqrt(230400 / std::sqrt(0.75 * 1.35)))));
  EXPECT_EQ(w, 481);
  EXPECT_EQ(h, 479);
}

TEST(RandomResizedCropTest, FallbackIsTheRatioClampedCentre) {
  const RrcParams p;
  // 16:9: h = H, w = round(1.35·H).
  EXPECT_EQ(RrcFallback(1920, 1080, p), (CropBox{(1920 - 1458) / 2, 0, 1458, 1080}));
  // Tall: w = W, h = round(W / 0.75).
  EXPECT_EQ(RrcFallback(300, 1000, p), (CropBox{0, (1000 - 400) / 2, 300, 400}));
  // Inside the range: the whole frame.
  EXPECT_EQ(RrcFallback(400, 400, p), (CropBox{0, 0, 400, 400}));
}

TEST(RandomResizedCropTest, BoxesStayInsideWithTheRightStatistics) {
  const RrcParams p;
  const int widths[] = {640, 1280, 360, 224, 17};
  const int heights[] = {360, 720, 640, 224, 9};
  for (int f = 0; f < 5; ++f) {
    const int W = widths[f];
    const int H = heights[f];
    SCOPED_TRACE(::testing::Message() << W << "x" << H);
    int fallbacks = 0;
    double log_ratio_sum = 0;
    int accepted = 0;
    std::set<int> xs;
    for (int i = 0; i < 4000; ++i) {
      RandomStream rng = RandomStream::ForBatch(99, DrawKind::kCrop, f, i);
      const CropBox b = RandomResizedCrop(W, H, p, rng);
      ASSERT_GT(b.w, 0);
      ASSERT_GT(b.h, 0);
      ASSERT_GE(b.x, 0);
      ASSERT_GE(b.y, 0);
      ASSERT_LE(b.x + b.w, W);
      ASSERT_LE(b.y + b.h, H);
      if (b == RrcFallback(W, H, p)) {
        ++fallbacks;
        continue;
      }
      ++accepted;
      xs.insert(b.x);
      // Some w0 ∈ w ± 1/2, h0 ∈ h ± 1/2 has area w0·h0 in [0.3, 1]·W·H and w0/h0 in
      // [0.75, 1.35].
      const double full = static_cast<double>(W) * H;
      EXPECT_GE((b.w + 0.5) * (b.h + 0.5), 0.3 * full);
      EXPECT_LE((b.w - 0.5) * (b.h - 0.5), full);
      EXPECT_GE((b.w + 0.5) / (b.h - 0.5), 0.75);
      EXPECT_LE((b.w - 0.5) / (b.h + 0.5), 1.35);
      const double ratio = static_cast<double>(b.w) / b.h;
      log_ratio_sum += std::log(ratio);
    }
    if (W == H && W >= 200) {
      // A square frame accepts a try with probability > 0.5: the fallback is rare, and the
      // accepted ratios are symmetric in log space around the middle of [log 0.75, log 1.35].
      EXPECT_LT(fallbacks, 40);
      EXPECT_NEAR(log_ratio_sum / accepted, 0.5 * (std::log(0.75) + std::log(1.35)), 0.03);
    }
    if (W > 200) {
      EXPECT_GT(xs.size(), 20u);  // offsets vary
    }
  }
}

TEST(RandomResizedCropTest, ExtremeAspectFramesFallBack) {
  const RrcParams p;
  // A 10:1 frame rejects every try (h = √(A/r) > H whenever scale ≥ 0.3, r ≤ 1.35).
  for (int i = 0; i < 50; ++i) {
    RandomStream rng = RandomStream::ForBatch(1, DrawKind::kCrop, 0, i);
    EXPECT_EQ(RandomResizedCrop(2000, 200, p, rng), (CropBox{865, 0, 270, 200}));
    RandomStream tall = RandomStream::ForBatch(2, DrawKind::kCrop, 0, i);
    EXPECT_EQ(RandomResizedCrop(200, 2000, p, tall), (CropBox{0, 866, 200, 267}));
  }
}

TEST(RandomResizedCropTest, DrawOrderIsScaleRatioThenRowThenColumn) {
  const RrcParams p;
  RandomStream rng = RandomStream::ForBatch(5, DrawKind::kCrop, 0, 0);
  RandomStream replay = rng;
  const CropBox box = RandomResizedCrop(1000, 1000, p, rng);
  int w = 0;
  int h = 0;
  for (int attempt = 0; attempt < kRrcTries; ++attempt) {
    const double us = replay.Uniform();
    const double ur = replay.Uniform();
    RrcTrySize(1000, 1000, p, us, ur, &w, &h);
    if (w <= 1000 && h <= 1000) break;
  }
  const int y = static_cast<int>(replay.UniformInt(0, 1000 - h));
  const int x = static_cast<int>(replay.UniformInt(0, 1000 - w));
  EXPECT_EQ(box, (CropBox{x, y, w, h}));
}

// --- Evaluation views ----------------------------------------------------------------------

TEST(EvalViewsTest, OneViewIsTheReferenceCentreCrop) {
  // 640×360 → short side int(224·256/224) = 256, long int(256·640/360) = 455; centre 224.
  const EvalGeometry g = EvalViews(640, 360, 224, 1);
  EXPECT_EQ(g.resized_w, 455);
  EXPECT_EQ(g.resized_h, 256);
  // x = round((455 − 224)/2 = 115.5) = 116 (half to even), y = round(16) = 16.
  EXPECT_THAT(g.views, ElementsAre(CropBox{116, 16, 224, 224}));
  const EvalGeometry tall = EvalViews(360, 640, 224, 1);
  EXPECT_EQ(tall.resized_w, 256);
  EXPECT_EQ(tall.resized_h, 455);
  EXPECT_THAT(tall.views, ElementsAre(CropBox{16, 116, 224, 224}));
  // 384: short side int(438.86) = 438.
  EXPECT_EQ(EvalViews(1000, 1000, 384, 1).resized_w, 438);
}

TEST(EvalViewsTest, ThreeViewsRunAlongTheLongSide) {
  // 640×360 → 224 high, int(224·640/360) = 398 wide; step (398 − 224) // 2 = 87.
  const EvalGeometry g = EvalViews(640, 360, 224, 3);
  EXPECT_EQ(g.resized_w, 398);
  EXPECT_EQ(g.resized_h, 224);
  EXPECT_THAT(g.views, ElementsAre(CropBox{0, 0, 224, 224}, CropBox{87, 0, 224, 224},
                                   CropBox{174, 0, 224, 224}));
  const EvalGeometry tall = EvalViews(360, 640, 224, 3);
  EXPECT_THAT(tall.views, ElementsAre(CropBox{0, 0, 224, 224}, CropBox{0, 87, 224, 224},
                                      CropBox{0, 174, 224, 224}));
  const EvalGeometry square = EvalViews(500, 500, 224, 3);
  EXPECT_THAT(square.views, ElementsAre(CropBox{0, 0, 224, 224}, CropBox{0, 0, 224, 224},
                                        CropBox{0, 0, 224, 224}));
}

}  // namespace
}  // namespace vjepa::dataworker
