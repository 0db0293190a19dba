#include "services/dataworker/batch/transforms.h"

#include <cstdint>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "opencv2/imgproc.hpp"
#include "services/dataworker/batch/fake_video.h"

namespace vjepa::dataworker {
namespace {

using fakes::MatFrameView;
using fakes::PatternFrame;
using ::testing::ElementsAre;

std::vector<uint8_t> RandomClip(const ClipGeometry& g, uint32_t seed) {
  std::vector<uint8_t> clip(static_cast<size_t>(g.frames) * g.crop * g.crop * 3);
  uint32_t x = seed * 2654435761u + 1;
  for (uint8_t& v : clip) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    v = static_cast<uint8_t>(x);
  }
  return clip;
}

TEST(PatchifyTest, UnpatchifyGivesTheClipBack) {
  for (const ClipGeometry& g : {ClipGeometry{16, 224, 16, 2}, ClipGeometry{4, 32, 8, 2},
                                ClipGeometry{3, 12, 4, 1}, ClipGeometry{6, 10, 5, 3}}) {
    ASSERT_TRUE(ValidateGeometry(g).ok());
    const std::vector<uint8_t> clip = RandomClip(g, static_cast<uint32_t>(g.crop));
    std::vector<uint8_t> tokens(static_cast<size_t>(g.clip_bytes()), 0);
    ASSERT_EQ(tokens.size(), clip.size());
    Patchify(clip.data(), g, tokens.data());
    EXPECT_NE(tokens, clip);  // the layout differs from [T, H, W, 3]
    std::vector<uint8_t> back(clip.size(), 0);
    Unpatchify(tokens.data(), g, back.data());
    EXPECT_EQ(back, clip);
  }
}

TEST(PatchifyTest, KnownPixelLandsWhereTheWireFormatSays) {
  // frames 4, crop 32, patch 16, tubelet 2: grid 2 × 2 × 2, P = 2·16·16·3 = 1536.
  const ClipGeometry g{4, 32, 16, 2};
  EXPECT_EQ(g.tokens(), 8);
  EXPECT_EQ(g.token_bytes(), 1536);
  std::vector<uint8_t> clip(static_cast<size_t>(4) * 32 * 32 * 3, 0);
  // Pixel t = 3, y = 17, x = 9, channel 2 (blue).
  clip[((3 * 32 + 17) * 32 + 9) * 3 + 2] = 200;
  std::vector<uint8_t> tokens(static_cast<size_t>(g.clip_bytes()), 0);
  Patchify(clip.data(), g, tokens.data());
  // Token (t/2, y/16, x/16) = (1, 1, 0) → 1·4 + 1·2 + 0 = 6; value (dt, dy, dx, c) =
  // (1, 1, 9, 2) → ((1·16 + 1)·16 + 9)·3 + 2 = 845.
  const size_t expected = 6 * 1536 + 845;
  EXPECT_EQ(TokenByteOffset(g, 3, 17, 9, 2), static_cast<int64_t>(expected));
  for (size_t i = 0; i < tokens.size(); ++i) {
    ASSERT_EQ(tokens[i], i == expected ? 200 : 0) << i;
  }
}

TEST(PatchifyTest, ValidateGeometryRefusesBadShapes) {
  EXPECT_FALSE(ValidateGeometry(ClipGeometry{15, 224, 16, 2}).ok());
  EXPECT_FALSE(ValidateGeometry(ClipGeometry{16, 225, 16, 2}).ok());
  EXPECT_FALSE(ValidateGeometry(ClipGeometry{16, 224, 0, 2}).ok());
}

TEST(ScatterFrameTest, FlipMirrorsColumns) {
  const ClipGeometry g{2, 24, 8, 2};
  cv::Mat frame(24, 24, CV_8UC3);
  for (int y = 0; y < 24; ++y) {
    for (int x = 0; x < 24; ++x) frame.at<cv::Vec3b>(y, x) = cv::Vec3b(x, y, 77);
  }
  std::vector<uint8_t> tokens(static_cast<size_t>(g.clip_bytes()), 0);
  ScatterFrame(frame, 0, /*flip=*/false, g, tokens.data());
  ScatterFrame(frame, 1, /*flip=*/true, g, tokens.data());
  std::vector<uint8_t> clip(static_cast<size_t>(2) * 24 * 24 * 3);
  Unpatchify(tokens.data(), g, clip.data());
  for (int y = 0; y < 24; ++y) {
    for (int x = 0; x < 24; ++x) {
      const uint8_t* plain = &clip[((0 * 24 + y) * 24 + x) * 3];
      const uint8_t* flipped = &clip[((1 * 24 + y) * 24 + x) * 3];
      ASSERT_EQ(plain[0], x);
      ASSERT_EQ(plain[1], y);
      ASSERT_EQ(plain[2], 77);
      ASSERT_EQ(flipped[0], 23 - x);
      ASSERT_EQ(flipped[1], y);
      ASSERT_EQ(flipped[2], 77);
    }
  }
}

TEST(ScatterFrameTest, AcceptsARegionOfALargerImage) {
  const ClipGeometry g{1, 8, 4, 1};
  cv::Mat big(20, 30, CV_8UC3, cv::Scalar(1, 2, 3));
  big(cv::Rect(5, 6, 8, 8)).setTo(cv::Scalar(9, 8, 7));
  std::vector<uint8_t> tokens(static_cast<size_t>(g.clip_bytes()), 0);
  ScatterFrame(big(cv::Rect(5, 6, 8, 8)), 0, false, g, tokens.data());
  for (size_t i = 0; i < tokens.size(); i += 3) {
    ASSERT_EQ(tokens[i], 9);
    ASSERT_EQ(tokens[i + 1], 8);
    ASSERT_EQ(tokens[i + 2], 7);
  }
}

TEST(ResizeTest, BilinearWithHalfPixelCentres) {
  // Upscaling 2 → 4: source x = (x + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25 → 0, 25, 75, 100.
  cv::Mat two(2, 2, CV_8UC3);
  for (int y = 0; y < 2; ++y) {
    two.at<cv::Vec3b>(y, 0) = cv::Vec3b(0, 0, 0);
    two.at<cv::Vec3b>(y, 1) = cv::Vec3b(100, 100, 100);
  }
  cv::Mat four;
  ResizeLinear(two, 4, 4, &four);
  ASSERT_EQ(four.cols, 4);
  for (int y = 0; y < 4; ++y) {
    EXPECT_EQ(four.at<cv::Vec3b>(y, 0)[0], 0);
    EXPECT_EQ(four.at<cv::Vec3b>(y, 1)[0], 25);
    EXPECT_EQ(four.at<cv::Vec3b>(y, 2)[0], 75);
    EXPECT_EQ(four.at<cv::Vec3b>(y, 3)[0], 100);
  }
}

TEST(ResizeTest, DownscalingDoesNotAntialias) {
  // 6 → 2: source x = (x + 0.5)·3 − 0.5 = 1, 4: the pixels 1 and 4 alone (an area or
  // antialiasing filter would average three).
  cv::Mat six(3, 6, CV_8UC3);
  const uint8_t row[6] = {0, 90, 0, 0, 90, 0};
  for (int y = 0; y < 3; ++y) {
    for (int x = 0; x < 6; ++x) six.at<cv::Vec3b>(y, x) = cv::Vec3b(row[x], row[x], row[x]);
  }
  cv::Mat two;
  ResizeLinear(six, 2, 1, &two);
  EXPECT_EQ(two.at<cv::Vec3b>(0, 0)[0], 90);
  EXPECT_EQ(two.at<cv::Vec3b>(0, 1)[1], 90);
}

TEST(ConvertTest, TrainingFrameIsTheResizedBox) {
  const cv::Mat source = PatternFrame(64, 48, 5, 3);
  const MatFrameView view(source);
  FrameScratch scratch;
  const CropBox box{10, 4, 30, 40};
  ASSERT_TRUE(ConvertTrainingFrame(view, box, 16, &scratch).ok());
  cv::Mat expected;
  cv::resize(source(cv::Rect(10, 4, 30, 40)), expected, cv::Size(16, 16), 0, 0, cv::INTER_LINEAR);
  ASSERT_EQ(scratch.resized.size(), expected.size());
  EXPECT_EQ(cv::norm(scratch.resized, expected, cv::NORM_INF), 0);
  // A box outside the frame is an error, not a crash.
  EXPECT_FALSE(ConvertTrainingFrame(view, CropBox{40, 0, 30, 10}, 16, &scratch).ok());
}

TEST(ConvertTest, EvalFrameIsTheWholeFrameResized) {
  const cv::Mat source = PatternFrame(64, 36, 2, 1);
  const MatFrameView view(source);
  const EvalGeometry g = EvalViews(64, 36, 16, 3);
  EXPECT_EQ(g.resized_h, 16);
  EXPECT_EQ(g.resized_w, 28);  // int(16·64/36)
  FrameScratch scratch;
  ASSERT_TRUE(ConvertEvalFrame(view, g, &scratch).ok());
  cv::Mat expected;
  cv::resize(source, expected, cv::Size(28, 16), 0, 0, cv::INTER_LINEAR);
  EXPECT_EQ(cv::norm(scratch.resized, expected, cv::NORM_INF), 0);
  EXPECT_THAT(g.views,
              ElementsAre(CropBox{0, 0, 16, 16}, CropBox{6, 0, 16, 16}, CropBox{12, 0, 16, 16}));
}

}  // namespace
}  // namespace vjepa::dataworker
