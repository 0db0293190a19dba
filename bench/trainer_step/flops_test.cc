#include "bench/trainer_step/flops.h"

#include "gtest/gtest.h"

namespace vjepa::bench {
namespace {

TEST(StepFlops, CountsEveryMatrixProductOnce) {
  model::VitConfig v = *model::VitPreset("vit_tiny");  // D 192, depth 12
  // One block on n tokens: 24 n D^2 + 4 n^2 D (MLP ratio 4).
  const double n = 100, d = 192;
  EXPECT_DOUBLE_EQ(EncoderForwardFlops(v, 1, 100),
                   2 * n * 1536 * d + 12 * (24 * n * d * d + 4 * n * n * d));
  EXPECT_DOUBLE_EQ(EncoderAttentionFlops(v, 2, 100), 12 * 4 * 2 * n * n * d);
  model::PredictorConfig p;
  p.width = 192;
  p.depth = 6;
  p.heads = 3;
  const double w = 192, m = 30 + 70;
  EXPECT_DOUBLE_EQ(PredictorForwardFlops(v, p, 1, 30, 70),
                   2 * 30 * d * w + 6 * (24 * m * w * w + 4 * m * m * w) + 2 * 70 * w * d);
  auto terms = StepFlops(v, p, 8, {{30, 70}, {10, 90}});
  ASSERT_EQ(terms.size(), 6u);
  double sum = 0;
  for (size_t i = 0; i + 1 < terms.size(); ++i) sum += terms[i].flops;
  EXPECT_EQ(terms.back().name, "total");
  EXPECT_DOUBLE_EQ(terms.back().flops, sum);
  EXPECT_DOUBLE_EQ(terms[1].flops, 3 * EncoderForwardFlops(v, 8, 30));
}

}  // namespace
}  // namespace vjepa::bench
