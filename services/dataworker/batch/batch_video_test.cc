// BatchBuilder over the real FFmpeg reader: an H.264 file whose frame i is a flat grey of
// luma 16 + 2i, so every token tells which frame it came from.
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/masking/random.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/dataworker/batch/batch_builder.h"
#include "services/dataworker/batch/sampling.h"
#include "services/dataworker/batch/transforms.h"
#include "services/dataworker/video/bad_video.h"

namespace vjepa::dataworker {
namespace {

using masking::DrawKind;
using masking::RandomStream;
using ::vjepa::testing::ScratchDir;

constexpr int kFrames = 90;

// The frame whose flat RGB value is `v`: BT.601 limited range, luma 16 + 2i → 2i·255/219.
double FrameOfValue(int v) { return v * 219.0 / (2.0 * 255.0); }

class BatchVideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string cmd = absl::StrCat(
        "ffmpeg -nostdin -v error -y -f lavfi -i "
        "\"nullsrc=s=64x48:r=25,geq=lum='16+2*N':cb=128:cr=128\" -frames:v ",
        kFrames, " -c:v libx264 -preset ultrafast -crf 4 -g 12 -bf 2 -pix_fmt yuv420p '",
        dir_.File("flat.mp4"), "' 2>'", dir_.File("ffmpeg.log"), "'");
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    dir_.Write("garbage.mp4", std::string(4096, 'g'));
    dir_.Write("m.csv", "flat.mp4 0\ngarbage.mp4 1\nflat.mp4 2\n");
    absl::StatusOr<spec::JobSpec> spec = spec::ParseJobSpec(
        "name: v\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\ndata: {frame_step: 2}\n"
        "optim: {batch_size: 1}\n");
    ASSERT_OK(spec.status());
    spec_ = *spec;
    ASSERT_OK_AND_ASSIGN(roots_, DataRoots::Create({dir_.path()}));
  }

  std::unique_ptr<BatchBuilder> MakeBuilder() {
    absl::StatusOr<std::shared_ptr<Dataset>> ds = Dataset::Load(roots_, "m.csv", "");
    EXPECT_OK(ds.status());
    absl::StatusOr<std::unique_ptr<BatchBuilder>> b =
        BatchBuilder::Create(spec_, *ds, BuilderOptions{});
    EXPECT_OK(b.status());
    return b.ok() ? std::move(b).value() : nullptr;
  }

  ScratchDir dir_;
  spec::JobSpec spec_;
  DataRoots roots_;
};

TEST_F(BatchVideoTest, ClipsHoldTheSampledFramesAndBadFilesAreReplaced) {
  auto builder = MakeBuilder();
  ASSERT_NE(builder, nullptr);
  const ClipGeometry g{4, 32, 16, 2};
  const std::vector<int64_t> perm = EpochPermutation(234, 0, 3);
  int replaced = 0;
  for (int64_t b = 0; b < 3; ++b) {
    ASSERT_OK_AND_ASSIGN(BuiltBatch built, builder->Build(0, b));
    ASSERT_EQ(built.clips.size(), 1u);
    int64_t offset = 0;
    if (perm[b] == 1) {  // garbage.mp4: replaced by the next entry
      offset = 1;
      EXPECT_EQ(built.header.sample_ids(0), perm[(b + 1) % 3]);
      EXPECT_EQ(built.replaced, 1);
      ++replaced;
    } else {
      EXPECT_EQ(built.header.sample_ids(0), perm[b]);
    }
    RandomStream start =
        RandomStream::ForBatch(234, DrawKind::kClipStart, 0, b).Derive(0).Derive(offset);
    const std::vector<int64_t> indices = TrainingClipIndices(kFrames, 4, 2, start);
    const auto* tokens = reinterpret_cast<const uint8_t*>(built.clips[0].data());
    for (int t = 0; t < 4; ++t) {
      for (int y = 0; y < 32; y += 7) {
        for (int x = 0; x < 32; x += 5) {
          const int v = tokens[TokenByteOffset(g, t, y, x, 1)];
          EXPECT_NEAR(FrameOfValue(v), static_cast<double>(indices[t]), 0.5)
              << "batch " << b << " frame slot " << t << " pixel " << x << "," << y;
        }
      }
    }
  }
  EXPECT_EQ(replaced, 1);
  const std::vector<QuarantinedVideo> q = builder->dataset().Quarantined();
  ASSERT_EQ(q.size(), 1u);
  EXPECT_EQ(q[0].sample, 1);
  EXPECT_EQ(q[0].path, "garbage.mp4");

  // A second worker produces the same bytes.
  auto other = MakeBuilder();
  for (int64_t b = 0; b < 3; ++b) {
    ASSERT_OK_AND_ASSIGN(BuiltBatch x, builder->Build(0, b));
    ASSERT_OK_AND_ASSIGN(BuiltBatch y, other->Build(0, b));
    EXPECT_EQ(x.header.SerializeAsString(), y.header.SerializeAsString());
    EXPECT_TRUE(x.clips[0] == y.clips[0]) << "batch " << b;
  }
}

}  // namespace
}  // namespace vjepa::dataworker
