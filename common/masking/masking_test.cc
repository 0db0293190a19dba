#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "common/masking/mask.h"
#include "common/masking/multiblock3d.h"
#include "common/masking/pack.h"
#include "common/masking/random_tube.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::masking {
namespace {

using ::testing::ElementsAre;

constexpr Grid k224{8, 14, 14};  // 16 frames / tubelet 2, 224 / 16
constexpr int kTokens = 1568;

MaskConfig ShortRange() { return MaskConfig{}; }  // the defaults: 8 blocks of 0.15
MaskConfig LongRange() {
  MaskConfig c;
  c.num_blocks = 2;
  c.spatial_scale = {0.7, 0.7};
  return c;
}

std::unique_ptr<MaskGenerator> Make(const MaskConfig& config, Grid grid = k224,
                                    bool share = false) {
  auto made = MakeMaskGenerator(config, grid, share);
  EXPECT_TRUE(made.ok()) << made.status();
  return made.ok() ? std::move(made).value() : nullptr;
}

BatchMasks Gen(const MaskGenerator& g, BatchKey key, int mask_index, int batch) {
  auto masks = g.Generate(key, mask_index, batch);
  EXPECT_TRUE(masks.ok()) << masks.status();
  return masks.ok() ? std::move(masks).value() : BatchMasks{};
}

std::vector<int32_t> Row(const std::vector<int32_t>& v, int length, int b) {
  return {v.begin() + static_cast<ptrdiff_t>(b) * length,
          v.begin() + static_cast<ptrdiff_t>(b + 1) * length};
}

uint64_t Fnv1a(const std::string& bytes, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

uint64_t Digest(const BatchMasks& m) {
  const PackedMasks p = PackMasks(m);
  return Fnv1a(p.target, Fnv1a(p.context));
}

// ---------------------------------------------------------------------------------------------
// multiblock3d: block sizes (docs/vjepa-spec.md §3 step 2).

TEST(RoundHalfEvenTest, RoundsLikePython) {
  EXPECT_EQ(RoundHalfEven(0.5), 0);
  EXPECT_EQ(RoundHalfEven(1.5), 2);
  EXPECT_EQ(RoundHalfEven(2.5), 2);
  EXPECT_EQ(RoundHalfEven(2.4999), 2);
  EXPECT_EQ(RoundHalfEven(2.5001), 3);
  EXPECT_EQ(RoundHalfEven(13.5), 14);
  EXPECT_EQ(RoundHalfEven(0.0), 0);
}

TEST(BlockSizeTest, ExtremesOfTheAspectRatio) {
  struct Case {
    MaskConfig config;
    double u3;
    BlockSize want;
  };
  const double below_one = 1.0 - 1e-12;
  const Case cases[] = {
      {ShortRange(), 0.0, {8, 5, 6}},         // keep 29, ar 0.75: √21.75, √38.67
      {ShortRange(), below_one, {8, 7, 4}},   // ar 1.5: √43.5, √19.3
      {LongRange(), 0.0, {8, 10, 14}},        // keep 137: √102.75, √182.7
      {LongRange(), below_one, {8, 14, 10}},  // √205.5 → 14 (clipped), √91.3
  };
  for (const Case& c : cases) {
    EXPECT_EQ(BlockSizeFromUniforms(c.config, k224, 0.3, 0.6, c.u3), c.want) << c.u3;
  }
  MaskConfig temporal = ShortRange();
  temporal.temporal_scale = {0.1, 0.5};
  EXPECT_EQ(BlockSizeFromUniforms(temporal, k224, 0.0, 0, 0).t, 1);   // max(1, int(0.8))
  EXPECT_EQ(BlockSizeFromUniforms(temporal, k224, 0.99, 0, 0).t, 3);  // int(8 · 0.496)
}

std::set<BlockSize> BlockSizes(const MaskConfig& config, int batches, bool share = false) {
  Multiblock3dGenerator g(config, k224, share);
  std::set<BlockSize> sizes;
  for (int b = 0; b < batches; ++b) sizes.insert(g.BlockSizeFor({234, 0, b}, 1));
  return sizes;
}

TEST(BlockSizeTest, SetsAt224MatchTheSpec) {
  const std::set<BlockSize> short_sizes = {{8, 5, 5}, {8, 5, 6}, {8, 6, 4}, {8, 6, 5}, {8, 7, 4}};
  const std::set<BlockSize> long_sizes = {{8, 10, 13}, {8, 10, 14}, {8, 11, 12},
                                          {8, 11, 13}, {8, 12, 11}, {8, 12, 12},
                                          {8, 13, 10}, {8, 13, 11}, {8, 14, 10}};
  // 8×10×14 needs ar in [0.75, 0.7517] (0.2 % of batches), hence the 4000 batches.
  EXPECT_EQ(BlockSizes(ShortRange(), 4000), short_sizes);
  EXPECT_EQ(BlockSizes(LongRange(), 4000), long_sizes);
  EXPECT_EQ(BlockSizes(LongRange(), 4000, /*share=*/true), long_sizes);
}

TEST(BlockSizeTest, SharedBlockSizeUsesTheSameUniformsForEveryConfig) {
  Multiblock3dGenerator own(ShortRange(), k224, false);
  Multiblock3dGenerator shared0(ShortRange(), k224, true);
  MaskConfig other = ShortRange();
  other.num_blocks = 3;  // block size does not depend on it
  Multiblock3dGenerator shared1(other, k224, true);
  int differ = 0;
  for (int b = 0; b < 200; ++b) {
    const BatchKey key{7, 1, b};
    EXPECT_EQ(shared0.BlockSizeFor(key, 0), shared1.BlockSizeFor(key, 1));
    differ += !(own.BlockSizeFor(key, 0) == own.BlockSizeFor(key, 1));
  }
  EXPECT_GT(differ, 50);  // without sharing, the configs' sizes are independent
  // Shared: the long config's aspect ratio follows the short one's (same u3).
  Multiblock3dGenerator long_shared(LongRange(), k224, true);
  for (int b = 0; b < 200; ++b) {
    const BatchKey key{7, 1, b};
    const BlockSize s = shared0.BlockSizeFor(key, 0), l = long_shared.BlockSizeFor(key, 1);
    if (s == BlockSize{8, 7, 4}) {
      EXPECT_EQ(l, (BlockSize{8, 14, 10}));
    }
    if (s == BlockSize{8, 5, 6}) {
      EXPECT_LE(l.h, 11);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// multiblock3d: statistics at 16×224² (docs/vjepa-spec.md §3).

struct Measured {
  double full_context_fraction = 0;  // before truncation, of 1568 tokens
  double context_length = 0;         // after truncation, mean over batches
  double target_length = 0;
  double redraw_rate = 0;  // redraws per sample
};

Measured Measure(const MaskGenerator& g, int mask_index, int batches, int batch_size) {
  Measured m;
  int64_t samples = 0, redraws = 0;
  double full_context = 0;
  for (int b = 0; b < batches; ++b) {
    const BatchMasks masks = Gen(g, {234, 0, b}, mask_index, batch_size);
    EXPECT_EQ(masks.context_length % 8, 0);
    EXPECT_EQ(masks.target_length % 8, 0);
    for (int s = 0; s < batch_size; ++s) {
      const int32_t c = masks.stats.full_context_lengths[s];
      EXPECT_EQ(c % 8, 0);
      EXPECT_EQ(c + masks.stats.full_target_lengths[s], kTokens);
      full_context += c;
    }
    m.context_length += masks.context_length;
    m.target_length += masks.target_length;
    samples += batch_size;
    redraws += masks.stats.redraws;
  }
  m.full_context_fraction = full_context / samples / kTokens;
  m.context_length /= batches;
  m.target_length /= batches;
  m.redraw_rate = static_cast<double>(redraws) / samples;
  return m;
}

TEST(Multiblock3dTest, StatisticsAt224MatchTheSpec) {
  // 800 batches of 24 (19,200 samples) per config, as in the spec. Tolerance: ±1 percentage
  // point of the 1568 tokens (±15.68 tokens).
  const double pp = kTokens / 100.0;
  const Measured s = Measure(*Make(ShortRange()), 0, 800, 24);
  const Measured l = Measure(*Make(LongRange()), 1, 800, 24);
  std::printf("short: context %.2f %% before truncation; after: context %.1f, target %.1f\n",
              100 * s.full_context_fraction, s.context_length, s.target_length);
  std::printf(
      "long:  context %.2f %% before truncation; after: context %.1f, target %.1f; "
      "redraws %.2f %% of samples\n",
      100 * l.full_context_fraction, l.context_length, l.target_length, 100 * l.redraw_rate);
  EXPECT_NEAR(s.full_context_fraction, 0.374, 0.01);
  EXPECT_NEAR(l.full_context_fraction, 0.189, 0.01);
  EXPECT_NEAR(s.context_length, 363, pp);
  EXPECT_NEAR(l.context_length, 101, pp);
  EXPECT_NEAR(s.target_length, 748, pp);
  EXPECT_NEAR(l.target_length, 1102, pp);
  // The spec reports 2.7 %. Uniform aspect ratios give ≈ 2.0 %: only 8×14×10 (23 % of
  // batches) and 8×10×14 (0.2 %) can cover the grid, with 2 of 25 position pairs, i.e.
  // 0.08 / 0.92 redraws per sample.
  EXPECT_GT(l.redraw_rate, 0.01);
  EXPECT_LT(l.redraw_rate, 0.04);
  EXPECT_EQ(s.redraw_rate, 0.0);
}

// ---------------------------------------------------------------------------------------------
// multiblock3d: structure of one batch.

TEST(Multiblock3dTest, RowsAreAscendingDisjointPrefixes) {
  const auto g = Make(ShortRange());
  const BatchMasks m = Gen(*g, {1, 2, 3}, 0, 6);
  ASSERT_EQ(m.batch, 6);
  ASSERT_EQ(m.context.size(), 6u * m.context_length);
  ASSERT_EQ(m.target.size(), 6u * m.target_length);
  EXPECT_EQ(m.context_length, *std::min_element(m.stats.full_context_lengths.begin(),
                                                m.stats.full_context_lengths.end()));
  EXPECT_EQ(m.target_length, *std::min_element(m.stats.full_target_lengths.begin(),
                                               m.stats.full_target_lengths.end()));
  // Each sample again, alone (batch 1 keeps everything): the batch rows are its prefixes.
  for (int s = 0; s < 6; ++s) {
    const std::vector<int32_t> ctx = Row(m.context, m.context_length, s);
    const std::vector<int32_t> tgt = Row(m.target, m.target_length, s);
    EXPECT_TRUE(std::is_sorted(ctx.begin(), ctx.end()));
    EXPECT_TRUE(std::is_sorted(tgt.begin(), tgt.end()));
    std::vector<int32_t> both;
    std::set_intersection(ctx.begin(), ctx.end(), tgt.begin(), tgt.end(), std::back_inserter(both));
    EXPECT_TRUE(both.empty());
  }
}

TEST(Multiblock3dTest, OneBlockIsOneFullLengthBox) {
  MaskConfig c = LongRange();
  c.num_blocks = 1;
  Multiblock3dGenerator g(c, k224, false);
  for (int b = 0; b < 20; ++b) {
    const BatchKey key{3, 0, b};
    const BlockSize size = g.BlockSizeFor(key, 0);
    const BatchMasks m = Gen(g, key, 0, 1);
    ASSERT_EQ(m.target_length, size.t * size.h * size.w);
    ASSERT_EQ(m.context_length + m.target_length, kTokens);
    int t0 = 99, t1 = -1, y0 = 99, y1 = -1, x0 = 99, x1 = -1;
    for (int32_t i : m.target) {
      const int t = i / 196, y = i / 14 % 14, x = i % 14;
      t0 = std::min(t0, t), t1 = std::max(t1, t), y0 = std::min(y0, y), y1 = std::max(y1, y);
      x0 = std::min(x0, x), x1 = std::max(x1, x);
    }
    EXPECT_EQ((BlockSize{t1 - t0 + 1, y1 - y0 + 1, x1 - x0 + 1}), size);
  }
}

TEST(Multiblock3dTest, TargetsAreSpatialTubesAt224) {
  const auto g = Make(ShortRange());
  for (int b = 0; b < 10; ++b) {
    const BatchMasks m = Gen(*g, {5, 0, b}, 0, 1);
    std::vector<int> per_position(196);
    for (int32_t i : m.target) ++per_position[i % 196];
    for (int n : per_position) EXPECT_TRUE(n == 0 || n == 8) << n;
  }
}

TEST(Multiblock3dTest, MaxTemporalKeepLeavesLaterStepsToTheTargets) {
  MaskConfig c = ShortRange();
  c.max_temporal_keep = 0.5;  // context only in time steps 0..3
  const auto g = Make(c);
  for (int b = 0; b < 5; ++b) {
    const BatchMasks m = Gen(*g, {5, 0, b}, 0, 1);
    for (int32_t i : m.context) EXPECT_LT(i / 196, 4);
    EXPECT_EQ(std::count_if(m.target.begin(), m.target.end(), [](int32_t i) { return i >= 784; }),
              784);
  }
}

TEST(Multiblock3dTest, MaxKeepCapsTheContext) {
  MaskConfig c = ShortRange();
  c.max_keep = 100;
  const BatchMasks m = Gen(*Make(c), {1, 0, 0}, 0, 4);
  EXPECT_EQ(m.context_length, 100);
  EXPECT_GT(m.stats.full_context_lengths[0], 100);
  EXPECT_EQ(m.context.size(), 400u);
}

TEST(Multiblock3dTest, DeterministicPerKey) {
  const auto a = Make(ShortRange());
  const auto b = Make(ShortRange());  // another instance, as on another dataworker
  const BatchKey key{234, 3, 41};
  const BatchMasks first = Gen(*a, key, 0, 24);
  EXPECT_EQ(PackMasks(first).context, PackMasks(Gen(*a, key, 0, 24)).context);
  EXPECT_EQ(Digest(first), Digest(Gen(*b, key, 0, 24)));
  EXPECT_EQ(first.stats.full_context_lengths, Gen(*b, key, 0, 24).stats.full_context_lengths);
  EXPECT_NE(Digest(first), Digest(Gen(*a, {235, 3, 41}, 0, 24)));
  EXPECT_NE(Digest(first), Digest(Gen(*a, {234, 4, 41}, 0, 24)));
  EXPECT_NE(Digest(first), Digest(Gen(*a, {234, 3, 42}, 0, 24)));
  EXPECT_NE(Digest(first), Digest(Gen(*a, key, 1, 24)));
  // A sample's masks do not depend on the batch size (before truncation).
  const BatchMasks alone = Gen(*a, key, 0, 1);
  EXPECT_EQ(alone.stats.full_context_lengths[0], first.stats.full_context_lengths[0]);
}

// Fixed bytes for a fixed key: any change of the draws changes every batch.
TEST(Multiblock3dTest, KnownBatch) {
  const BatchKey key{234, 0, 0};
  Multiblock3dGenerator s(ShortRange(), k224, false), l(LongRange(), k224, false);
  EXPECT_EQ(s.BlockSizeFor(key, 0), (BlockSize{8, 5, 6}));
  EXPECT_EQ(l.BlockSizeFor(key, 1), (BlockSize{8, 13, 11}));
  const BatchMasks ms = Gen(s, key, 0, 4), ml = Gen(l, key, 1, 4);
  EXPECT_EQ(ms.context_length, 464);
  EXPECT_EQ(ml.context_length, 112);
  EXPECT_EQ(Digest(ms), 0x4a5118e3455c38b0ULL);
  EXPECT_EQ(Digest(ml), 0x00cb3b5be3c4e53bULL);
}

TEST(Multiblock3dTest, ConfigThatAlwaysCoversTheGridFailsAfterBoundedRedraws) {
  MaskConfig c;
  c.num_blocks = 64;
  c.spatial_scale = {0.5, 0.5};  // 1 of the 2 cells per box
  c.aspect_ratio = {1, 1};
  const auto g = Make(c, {1, 1, 2});
  const auto got = g->Generate({1, 2, 3}, 0, 2);
  EXPECT_EQ(got.status().code(), core::Code::kInvalidArgument);
  EXPECT_EQ(got.status().message(),
            "multiblock3d: every one of 1000 draws of sample 0 (seed 1, epoch 2, batch 3, mask 0) "
            "left no context: 64 boxes of 1 × 1 × 1 cover the 1 × 1 × 2 grid; lower num_blocks "
            "or spatial_scale");
}

TEST(MaskGeneratorTest, GenerateArgumentErrors) {
  const auto mb = Make(ShortRange());
  EXPECT_EQ(mb->Generate({}, 0, 0).status().message(),
            "multiblock3d: batch_size must be >= 1, got 0");
  EXPECT_EQ(mb->Generate({}, -1, 2).status().message(),
            "multiblock3d: mask_index must be >= 0, got -1");
  MaskConfig tube;
  tube.type = MaskType::kRandomTube;
  EXPECT_EQ(Make(tube)->Generate({}, 0, -3).status().message(),
            "random_tube: batch_size must be >= 1, got -3");
}

// ---------------------------------------------------------------------------------------------
// causal_multiblock (docs/vjepa-spec.md §8).

TEST(CausalMultiblockTest, ContextOnlyInEarlySlotsAndEveryLaterTokenATarget) {
  MaskConfig causal = ShortRange();
  causal.type = MaskType::kCausalMultiblock;
  causal.context_frames = 8;  // slots t < 4
  causal.tubelet = 2;
  const auto cg = Make(causal);
  const auto mg = Make(ShortRange());
  for (int b = 0; b < 30; ++b) {
    const BatchKey key{11, 0, b};
    // One sample per batch: no truncation, so the lists are the whole definition.
    const BatchMasks c = Gen(*cg, key, 0, 1);
    const BatchMasks m = Gen(*mg, key, 0, 1);  // same boxes (same streams, no redraw)
    ASSERT_EQ(c.stats.redraws, 0);
    std::vector<int32_t> want_context, want_target;
    std::set<int32_t> boxes(m.target.begin(), m.target.end());
    for (int32_t i = 0; i < kTokens; ++i) {
      const bool in_box = boxes.count(i) > 0;
      (i / 196 < 4 && !in_box ? want_context : want_target).push_back(i);
    }
    EXPECT_EQ(c.context, want_context);
    EXPECT_EQ(c.target, want_target);
  }
  // Whole batches keep the property after truncation.
  const BatchMasks batch = Gen(*cg, {11, 0, 0}, 0, 24);
  for (int32_t i : batch.context) EXPECT_LT(i, 784);
  for (int32_t n : batch.stats.full_target_lengths) EXPECT_GE(n, 784);
}

TEST(CausalMultiblockTest, RedrawsWhenTheEarlySlotsAreCovered) {
  // Long-range boxes over only 1 context slot: some samples lose all of it.
  MaskConfig c = LongRange();
  c.type = MaskType::kCausalMultiblock;
  c.context_frames = 2;
  c.tubelet = 2;
  const auto g = Make(c);
  int redraws = 0;
  for (int b = 0; b < 50; ++b) {
    const BatchMasks m = Gen(*g, {1, 0, b}, 0, 24);
    redraws += m.stats.redraws;
    EXPECT_GT(m.context_length, 0);
    for (int32_t i : m.context) EXPECT_LT(i, 196);
  }
  EXPECT_GT(redraws, 0);
}

// ---------------------------------------------------------------------------------------------
// random_tube (docs/vjepa-spec.md §8).

TEST(RandomTubeTest, ExactFractionsAndTubes) {
  struct Case {
    double ratio;
    int context_positions;  // int(196 · (1 − ratio))
  };
  for (const Case& c : {Case{0.9, 19}, Case{0.5, 98}, Case{0.75, 49}}) {
    MaskConfig config;
    config.type = MaskType::kRandomTube;
    config.ratio = c.ratio;
    const auto g = Make(config);
    ASSERT_EQ(RandomTubeContextPositions(c.ratio, k224), c.context_positions);
    const BatchMasks m = Gen(*g, {3, 1, 4}, 2, 8);
    EXPECT_EQ(m.context_length, 8 * c.context_positions);
    EXPECT_EQ(m.target_length, 8 * (196 - c.context_positions));
    EXPECT_EQ(m.stats.redraws, 0);
    std::set<std::vector<int32_t>> patterns;
    for (int s = 0; s < 8; ++s) {
      EXPECT_EQ(m.stats.full_context_lengths[s], m.context_length);  // equal by construction
      const std::vector<int32_t> ctx = Row(m.context, m.context_length, s);
      EXPECT_TRUE(std::is_sorted(ctx.begin(), ctx.end()));
      // A spatial position is context at every time step or at none.
      std::vector<int> per_position(196);
      for (int32_t i : ctx) ++per_position[i % 196];
      std::vector<int32_t> pattern;
      for (int p = 0; p < 196; ++p) {
        EXPECT_TRUE(per_position[p] == 0 || per_position[p] == 8);
        if (per_position[p]) pattern.push_back(p);
      }
      patterns.insert(pattern);
      std::vector<int32_t> tgt = Row(m.target, m.target_length, s);
      for (int32_t i : tgt) EXPECT_EQ(per_position[i % 196], 0);
    }
    EXPECT_EQ(patterns.size(), 8u);  // each sample draws its own positions
  }
}

TEST(RandomTubeTest, PositionsAreUniform) {
  MaskConfig config;
  config.type = MaskType::kRandomTube;
  config.ratio = 0.5;
  const auto g = Make(config, {2, 4, 4});
  std::vector<int> kept(16);
  for (int b = 0; b < 250; ++b) {
    const BatchMasks m = Gen(*g, {8, 0, b}, 0, 8);
    for (int32_t i : m.context) ++kept[i % 16];
  }
  // 2000 samples × 8 kept of 16 positions × 2 steps: 2000 per position.
  for (int n : kept) EXPECT_NEAR(n, 2000, 200);
}

TEST(RandomTubeTest, DeterministicAndKnown) {
  MaskConfig config;
  config.type = MaskType::kRandomTube;
  const auto a = Make(config), b = Make(config);
  const BatchMasks m = Gen(*a, {234, 0, 0}, 0, 4);
  EXPECT_EQ(Digest(m), Digest(Gen(*b, {234, 0, 0}, 0, 4)));
  EXPECT_NE(Digest(m), Digest(Gen(*b, {234, 0, 1}, 0, 4)));
  EXPECT_EQ(Digest(m), 0x2c7d045b3fa0adf1ULL);
}

// ---------------------------------------------------------------------------------------------
// Config validation.

TEST(ValidateMaskConfigTest, DefaultsAndSpecConfigsAreValid) {
  EXPECT_TRUE(ValidateMaskConfig(ShortRange(), k224).ok());
  EXPECT_TRUE(ValidateMaskConfig(LongRange(), k224).ok());
  EXPECT_TRUE(ValidateMaskConfig(LongRange(), {8, 24, 24}).ok());
  EXPECT_TRUE(ValidateMaskConfig(LongRange(), {8, 7, 7}).ok());  // 112²: 10 % redraws, valid
  MaskConfig almost_whole = LongRange();
  almost_whole.spatial_scale = {0.93, 0.93};  // keep 182 < 13.5²: at most 14 × 13
  EXPECT_TRUE(ValidateMaskConfig(almost_whole, k224).ok());
  MaskConfig tube;
  tube.type = MaskType::kRandomTube;
  EXPECT_TRUE(ValidateMaskConfig(tube, k224).ok());
  MaskConfig causal = ShortRange();
  causal.type = MaskType::kCausalMultiblock;
  EXPECT_TRUE(ValidateMaskConfig(causal, k224).ok());
}

TEST(ValidateMaskConfigTest, ErrorsNameTheFieldAndTheRule) {
  struct Case {
    const char* name;
    MaskConfig config;
    Grid grid;
    const char* message;
  };
  auto with = [](auto edit) {
    MaskConfig c;
    edit(c);
    return c;
  };
  const Case cases[] = {
      {"grid",
       MaskConfig{},
       {0, 14, 14},
       "multiblock3d: grid 0 × 14 × 14: every dimension must be >= 1"},
      {"huge grid",
       MaskConfig{},
       {64, 256, 256},
       "multiblock3d: grid 64 × 256 × 256 has 4194304 tokens, more than 1048576"},
      {"num_blocks", with([](MaskConfig& c) { c.num_blocks = 0; }), k224,
       "multiblock3d: num_blocks must be in [1, 64], got 0"},
      {"num_blocks high", with([](MaskConfig& c) { c.num_blocks = 65; }), k224,
       "multiblock3d: num_blocks must be in [1, 64], got 65"},
      {"spatial min > max", with([](MaskConfig& c) {
         c.spatial_scale = {0.7, 0.2};
       }),
       k224, "multiblock3d: spatial_scale [0.7, 0.2]: min must be <= max"},
      {"spatial zero", with([](MaskConfig& c) {
         c.spatial_scale = {0, 0.2};
       }),
       k224, "multiblock3d: spatial_scale [0, 0.2] must lie within (0, 1]"},
      {"temporal > 1", with([](MaskConfig& c) {
         c.temporal_scale = {0.5, 1.5};
       }),
       k224, "multiblock3d: temporal_scale [0.5, 1.5] must lie within (0, 1]"},
      {"aspect min > max", with([](MaskConfig& c) {
         c.aspect_ratio = {2, 1};
       }),
       k224, "multiblock3d: aspect_ratio [2, 1]: min must be <= max"},
      {"max_temporal_keep", with([](MaskConfig& c) { c.max_temporal_keep = 0; }), k224,
       "multiblock3d: max_temporal_keep must be in (0, 1], got 0"},
      {"max_keep", with([](MaskConfig& c) { c.max_keep = 0; }), k224,
       "multiblock3d: max_keep must be -1 (none) or >= 1, got 0"},
      {"zero cells", with([](MaskConfig& c) {
         c.spatial_scale = {0.004, 0.01};
       }),
       k224,
       "multiblock3d: spatial_scale [0.004, 0.01] selects no cell of the 14 × 14 grid "
       "(int(196 × 0.004) = 0)"},
      {"zero wide", with([](MaskConfig& c) {
         c.spatial_scale = {0.01, 0.01};  // keep 1: width round(√(1/5)) = 0
         c.aspect_ratio = {1, 5};
       }),
       k224,
       "multiblock3d: aspect_ratio [1, 5] makes a block 0 cells high or wide when it keeps 1 "
       "of the 196 cells of the 14 × 14 grid"},
      {"zero high", with([](MaskConfig& c) {
         c.aspect_ratio = {0.005, 1};
       }),
       k224,
       "multiblock3d: aspect_ratio [0.005, 1] makes a block 0 cells high or wide when it keeps "
       "29 of the 196 cells of the 14 × 14 grid"},
      {"whole grid", with([](MaskConfig& c) {
         c.spatial_scale = {0.5, 1};
       }),
       k224,
       "multiblock3d: spatial_scale [0.5, 1] with aspect_ratio [0.75, 1.5] lets one block "
       "cover the whole 8 × 14 × 14 grid, leaving no context"},
      {"whole grid at 0.94", with([](MaskConfig& c) {
         c.spatial_scale = {0.94, 0.94};  // keep 184 ≥ 13.5²: a 14 × 14 box at ar ≈ 1
       }),
       k224,
       "multiblock3d: spatial_scale [0.94, 0.94] with aspect_ratio [0.75, 1.5] lets one block "
       "cover the whole 8 × 14 × 14 grid, leaving no context"},
      {"causal tubelet", with([](MaskConfig& c) {
         c.type = MaskType::kCausalMultiblock;
         c.tubelet = 0;
       }),
       k224, "causal_multiblock: tubelet must be >= 1, got 0"},
      {"causal range", with([](MaskConfig& c) {
         c.type = MaskType::kCausalMultiblock;
         c.context_frames = 18;
       }),
       k224, "causal_multiblock: context_frames must be in [2, 16] (tubelet to frames), got 18"},
      {"causal multiple", with([](MaskConfig& c) {
         c.type = MaskType::kCausalMultiblock;
         c.context_frames = 5;
       }),
       k224, "causal_multiblock: context_frames 5 must be a multiple of tubelet 2"},
      {"tube ratio", with([](MaskConfig& c) {
         c.type = MaskType::kRandomTube;
         c.ratio = 1;
       }),
       k224, "random_tube: ratio must be in (0, 1), got 1"},
      {"tube no context", with([](MaskConfig& c) {
         c.type = MaskType::kRandomTube;
         c.ratio = 0.999;
       }),
       k224,
       "random_tube: ratio 0.999 must leave between 1 and 195 of the 14 × 14 positions as "
       "context (int(196 × (1 − 0.999)) = 0)"},
      {"tube no target",
       with([](MaskConfig& c) {
         c.type = MaskType::kRandomTube;
         c.ratio = 0.5;
       }),
       {8, 1, 1},
       "random_tube: ratio 0.5 must leave between 1 and 0 of the 1 × 1 positions as context "
       "(int(1 × (1 − 0.5)) = 0)"},
      {"unknown type", with([](MaskConfig& c) { c.type = static_cast<MaskType>(7); }), k224,
       "mask type 7 is not multiblock3d, random_tube or causal_multiblock"},
  };
  for (const Case& c : cases) {
    const core::Status status = ValidateMaskConfig(c.config, c.grid);
    EXPECT_EQ(status.code(), core::Code::kInvalidArgument) << c.name;
    EXPECT_EQ(status.message(), c.message) << c.name;
    EXPECT_EQ(MakeMaskGenerator(c.config, c.grid).status().message(), c.message) << c.name;
  }
}

TEST(ValidateMaskConfigTest, FieldsOfOtherTypesAreIgnored) {
  MaskConfig tube;
  tube.type = MaskType::kRandomTube;
  tube.num_blocks = 0;
  tube.spatial_scale = {2, 1};
  EXPECT_TRUE(ValidateMaskConfig(tube, k224).ok());
  MaskConfig mb;
  mb.ratio = 7;
  mb.context_frames = 3;
  EXPECT_TRUE(ValidateMaskConfig(mb, k224).ok());
}

TEST(MaskTypeTest, Names) {
  EXPECT_EQ(MaskTypeName(MaskType::kMultiblock3d), "multiblock3d");
  EXPECT_EQ(MaskTypeName(MaskType::kRandomTube), "random_tube");
  EXPECT_EQ(MaskTypeName(MaskType::kCausalMultiblock), "causal_multiblock");
}

TEST(CollateMasksTest, TruncatesToTheShortestKeepingTheFirstEntries) {
  const BatchMasks m =
      CollateMasks({{1, 2, 3, 4}, {5, 6}, {7, 8, 9}}, {{0}, {1, 3}, {2, 5, 6}}, kNoMaxKeep, 2);
  EXPECT_EQ(m.batch, 3);
  EXPECT_EQ(m.context_length, 2);
  EXPECT_EQ(m.target_length, 1);
  EXPECT_THAT(m.context, ElementsAre(1, 2, 5, 6, 7, 8));
  EXPECT_THAT(m.target, ElementsAre(0, 1, 2));
  EXPECT_THAT(m.stats.full_context_lengths, ElementsAre(4, 2, 3));
  EXPECT_THAT(m.stats.full_target_lengths, ElementsAre(1, 2, 3));
  EXPECT_EQ(m.stats.redraws, 2);
  const BatchMasks capped = CollateMasks({{1, 2, 3}, {4, 5, 6}}, {{0}, {1}}, 1, 0);
  EXPECT_THAT(capped.context, ElementsAre(1, 4));
}

}  // namespace
}  // namespace vjepa::masking
