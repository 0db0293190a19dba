#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "common/spec/job_spec.h"
#include "common/spec/schema.h"
#include "common/spec/yaml_tree.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::spec {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

constexpr char kMinimal[] = "name: test\ndataset:\n  manifest: m.csv\n";

std::string SourceFile(const std::string& relative) {
  const char* root = std::getenv("VJEPA_SOURCE_DIR");
  if (root == nullptr) {
    ADD_FAILURE() << "VJEPA_SOURCE_DIR is not set; run the test through ctest";
    return "";
  }
  std::ifstream in(std::string(root) + "/" + relative);
  if (!in) {
    ADD_FAILURE() << "cannot read " << root << "/" << relative;
    return "";
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

JobSpec MinimalSpec() {
  JobSpec s;
  s.name = "test";
  s.dataset.manifest = "m.csv";
  return s;
}

TEST(ParseJobSpec, DefaultsAreThoseOfVitLarge) {
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(kMinimal));
  EXPECT_EQ(s.kind, JobKind::kPretrain);
  EXPECT_EQ(s.seed, 234);
  EXPECT_EQ(s.model.preset, ModelPreset::kVitLarge);
  EXPECT_EQ(s.model.embed_dim, 1024);
  EXPECT_EQ(s.model.depth, 24);
  EXPECT_EQ(s.model.heads, 16);
  EXPECT_EQ(s.model.mlp_ratio, 4.0);
  EXPECT_EQ(s.model.frames, 16);
  EXPECT_EQ(s.model.crop, 224);
  EXPECT_EQ(s.model.patch, 16);
  EXPECT_EQ(s.model.tubelet, 2);
  EXPECT_EQ(s.model.predictor.depth, 12);
  EXPECT_EQ(s.model.predictor.width, 384);
  EXPECT_EQ(s.model.predictor.heads, 16);
  EXPECT_TRUE(s.model.uniform_power);
  EXPECT_TRUE(s.model.use_mask_tokens);
  EXPECT_TRUE(s.model.zero_init_mask_tokens);
  EXPECT_EQ(TokensPerClip(s), 1568);

  EXPECT_EQ(s.data.frame_step, 4);
  EXPECT_EQ(s.data.num_clips, 1);
  EXPECT_EQ(s.data.random_resized_crop.scale, (Interval{0.3, 1.0}));
  EXPECT_EQ(s.data.random_resized_crop.ratio, (Interval{0.75, 1.35}));
  EXPECT_EQ(s.data.flip, 0.5);

  ASSERT_EQ(s.mask.size(), 2u);
  EXPECT_EQ(s.mask[0].type, MaskType::kMultiblock3d);
  EXPECT_EQ(s.mask[0].num_blocks, 8);
  EXPECT_EQ(s.mask[0].spatial_scale, (Interval{0.15, 0.15}));
  EXPECT_EQ(s.mask[1].num_blocks, 2);
  EXPECT_EQ(s.mask[1].spatial_scale, (Interval{0.7, 0.7}));
  for (const MaskSpec& m : s.mask) {
    EXPECT_EQ(m.temporal_scale, (Interval{1.0, 1.0}));
    EXPECT_EQ(m.aspect_ratio, (Interval{0.75, 1.5}));
    EXPECT_EQ(m.max_temporal_keep, 1.0);
    EXPECT_FALSE(m.max_keep.has_value());
    EXPECT_EQ(m.context_frames, 8);
  }
  EXPECT_FALSE(s.mask_options.share_block_size);

  EXPECT_EQ(s.loss.target, LossTarget::kFeatures);
  EXPECT_EQ(s.loss.exponent, 1.0);
  EXPECT_EQ(s.loss.reg_coeff, 0.0);

  EXPECT_EQ(s.optim.steps, 90000);
  EXPECT_EQ(s.optim.batch_size, 24);
  EXPECT_EQ(s.optim.lr.start, 2e-4);
  EXPECT_EQ(s.optim.lr.peak, 6.25e-4);
  EXPECT_EQ(s.optim.lr.final, 1e-6);
  EXPECT_EQ(s.optim.wd.start, 0.04);
  EXPECT_EQ(s.optim.wd.final, 0.4);
  EXPECT_EQ(s.optim.ema.start, 0.998);
  EXPECT_EQ(s.optim.ema.final, 1.0);
  EXPECT_EQ(s.optim.clip, 10.0);
  EXPECT_EQ(s.optim.schedule_scale, 1.25);
  EXPECT_EQ(s.optim.betas, (std::array<double, 2>{0.9, 0.999}));
  EXPECT_EQ(s.optim.eps, 1e-8);
  EXPECT_EQ(WarmupSteps(s), 12000);
  EXPECT_EQ(ScheduleLength(s), 112500);
  EXPECT_EQ(s.optim.ipe, 300);
  EXPECT_EQ(ClipStartStep(s), 12301);

  EXPECT_EQ(s.checkpoint.every_steps, 300);
  EXPECT_EQ(s.checkpoint.keep_last, 3);
  EXPECT_EQ(s.checkpoint.keep_every, 0);
  EXPECT_EQ(s.resources.trainers, 1);
  EXPECT_EQ(s.resources.dataworkers, 1);
  EXPECT_EQ(s.resources.device, Device::kCpu);
  EXPECT_EQ(s.resources.precision, Precision::kFloat32);
  EXPECT_EQ(s.resources.torch_threads, 0);

  EXPECT_EQ(s.probe.checkpoint_key, "target_encoder");
  EXPECT_FALSE(s.probe.num_classes.has_value());
  EXPECT_EQ(s.probe.pooling, Pooling::kAttentive);
  EXPECT_EQ(s.probe.epochs, 20);
  EXPECT_EQ(s.probe.lr, 1e-3);
  EXPECT_EQ(s.probe.wd.start, 0.01);
  EXPECT_EQ(s.probe.wd.final, 1e-6);

  // A default-constructed JobSpec is the same resolved default.
  EXPECT_TRUE(s == MinimalSpec());
  EXPECT_OK(ValidateJobSpec(MinimalSpec()));
}

struct ScheduleCase {
  int64_t steps;
  int64_t warmup;
  int64_t schedule_length;
  int64_t ipe;
};

class ScheduleScaling : public ::testing::TestWithParam<ScheduleCase> {};

TEST_P(ScheduleScaling, FollowsOptimSteps) {
  const ScheduleCase& c = GetParam();
  ASSERT_OK_AND_ASSIGN(JobSpec s,
                       ParseJobSpec(kMinimal, {"optim.steps=" + std::to_string(c.steps)}));
  EXPECT_EQ(WarmupSteps(s), c.warmup);
  EXPECT_EQ(ScheduleLength(s), c.schedule_length);
  EXPECT_EQ(s.optim.ipe, c.ipe);
  EXPECT_EQ(s.checkpoint.every_steps, c.ipe);
}

INSTANTIATE_TEST_SUITE_P(All, ScheduleScaling,
                         ::testing::Values(ScheduleCase{90000, 12000, 112500, 300},
                                           ScheduleCase{200, 27, 250, 1},
                                           ScheduleCase{1000, 133, 1250, 3},
                                           ScheduleCase{450, 60, 562, 2},
                                           ScheduleCase{1, 0, 1, 1}));

TEST(ParseJobSpec, ExplicitScheduleValuesWin) {
  ASSERT_OK_AND_ASSIGN(
      JobSpec s, ParseJobSpec(std::string(kMinimal) +
                              "optim: {steps: 200, warmup: 10, ipe: 50, schedule_scale: 1.0}\n"));
  EXPECT_EQ(WarmupSteps(s), 10);
  EXPECT_EQ(ScheduleLength(s), 200);
  EXPECT_EQ(s.optim.ipe, 50);
  EXPECT_EQ(s.checkpoint.every_steps, 50);
  EXPECT_EQ(ClipStartStep(s), 51);
}

TEST(ParseJobSpec, NanoPreset) {
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(std::string(kMinimal) + "model: {preset: nano}\n"));
  EXPECT_EQ(s.model.embed_dim, 64);
  EXPECT_EQ(s.model.depth, 2);
  EXPECT_EQ(s.model.heads, 4);
  EXPECT_EQ(s.model.frames, 4);
  EXPECT_EQ(s.model.crop, 32);
  EXPECT_EQ(s.model.patch, 16);
  EXPECT_EQ(s.model.tubelet, 2);
  EXPECT_EQ(s.model.predictor.depth, 2);
  EXPECT_EQ(s.model.predictor.width, 32);
  EXPECT_EQ(s.model.predictor.heads, 4);
  const TokenGrid g = GridOf(s.model);
  EXPECT_EQ(g.t, 2);
  EXPECT_EQ(g.h, 2);
  EXPECT_EQ(g.w, 2);
  EXPECT_EQ(TokensPerClip(s), 8);
  // Masks that select whole cells of the 2 × 2 grid.
  ASSERT_EQ(s.mask.size(), 2u);
  EXPECT_EQ(s.mask[0].num_blocks, 1);
  EXPECT_EQ(s.mask[0].spatial_scale, (Interval{0.25, 0.25}));
  EXPECT_EQ(s.mask[1].num_blocks, 1);
  EXPECT_EQ(s.mask[1].spatial_scale, (Interval{0.5, 0.5}));
  EXPECT_EQ(s.mask[0].context_frames, 2);
}

struct PresetCase {
  std::string preset;
  int64_t dim, depth, heads;
  double mlp_ratio;
};

class Presets : public ::testing::TestWithParam<PresetCase> {};

TEST_P(Presets, FillTheModel) {
  const PresetCase& c = GetParam();
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(kMinimal, {"model.preset=" + c.preset}));
  EXPECT_EQ(ToString(s.model.preset), c.preset);
  EXPECT_EQ(s.model.embed_dim, c.dim);
  EXPECT_EQ(s.model.depth, c.depth);
  EXPECT_EQ(s.model.heads, c.heads);
  EXPECT_EQ(s.model.mlp_ratio, c.mlp_ratio);
  EXPECT_EQ(s.model.predictor.heads, c.heads);
  EXPECT_EQ(s.model.predictor.width, 384);
  EXPECT_EQ(s.model.predictor.depth, 12);
  EXPECT_EQ(s.model.frames, 16);
  EXPECT_EQ(s.model.crop, 224);
}

INSTANTIATE_TEST_SUITE_P(All, Presets,
                         ::testing::Values(PresetCase{"vit_tiny", 192, 12, 3, 4.0},
                                           PresetCase{"vit_small", 384, 12, 6, 4.0},
                                           PresetCase{"vit_base", 768, 12, 12, 4.0},
                                           PresetCase{"vit_large", 1024, 24, 16, 4.0},
                                           PresetCase{"vit_huge", 1280, 32, 16, 4.0},
                                           PresetCase{"vit_giant", 1408, 40, 16, 48.0 / 11.0}));

TEST(ParseJobSpec, PresetFieldsCanBeOverridden) {
  ASSERT_OK_AND_ASSIGN(JobSpec s,
                       ParseJobSpec(std::string(kMinimal) +
                                    "model: {preset: vit_tiny, heads: 6, frames: 8, crop: 112}\n"
                                    "resources: {device: cuda}\n"));
  EXPECT_EQ(s.model.embed_dim, 192);
  EXPECT_EQ(s.model.heads, 6);
  EXPECT_EQ(s.model.predictor.heads, 6);  // follows model.heads
  EXPECT_EQ(TokensPerClip(s), 4 * 7 * 7);
  EXPECT_EQ(s.mask[0].context_frames, 4);
  EXPECT_EQ(s.resources.precision, Precision::kBfloat16);  // the default on cuda
}

TEST(ParseJobSpec, NullMeansDefault) {
  ASSERT_OK_AND_ASSIGN(JobSpec s,
                       ParseJobSpec(std::string(kMinimal) + "optim:\n  steps: 200\n  warmup: ~\n"
                                                            "probe:\nmask:\n"));
  EXPECT_EQ(WarmupSteps(s), 27);
  EXPECT_EQ(s.mask.size(), 2u);
}

TEST(ParseJobSpec, AliasedEntriesAreIndependent) {
  ASSERT_OK_AND_ASSIGN(
      JobSpec s, ParseJobSpec(std::string(kMinimal) + "mask:\n  - &m {num_blocks: 4}\n  - *m\n",
                              {"mask.1.num_blocks=2"}));
  ASSERT_EQ(s.mask.size(), 2u);
  EXPECT_EQ(s.mask[0].num_blocks, 4);
  EXPECT_EQ(s.mask[1].num_blocks, 2);
}

TEST(Overrides, SetScalarsListsAndMaps) {
  ASSERT_OK_AND_ASSIGN(
      JobSpec s, ParseJobSpec(std::string(kMinimal) + "optim:\n  steps: 1000\n",
                              {"optim.steps=200", "name=other", "mask.1.num_blocks=3",
                               "data.random_resized_crop.scale=[0.5, 0.9]", "optim.betas.1=0.95",
                               "mask.2={type: random_tube, ratio: 0.75}",
                               "model.predictor={depth: 4, width: 96}", "kind=pretrain"}));
  EXPECT_EQ(s.name, "other");
  EXPECT_EQ(s.optim.steps, 200);
  EXPECT_EQ(WarmupSteps(s), 27);
  EXPECT_EQ(ScheduleLength(s), 250);
  ASSERT_EQ(s.mask.size(), 3u);
  EXPECT_EQ(s.mask[0].num_blocks, 8);  // the default list, then entry 1 edited
  EXPECT_EQ(s.mask[1].num_blocks, 3);
  EXPECT_EQ(s.mask[1].spatial_scale, (Interval{0.7, 0.7}));
  EXPECT_EQ(s.mask[2].type, MaskType::kRandomTube);
  EXPECT_EQ(s.mask[2].ratio, 0.75);
  EXPECT_EQ(s.data.random_resized_crop.scale, (Interval{0.5, 0.9}));
  EXPECT_EQ(s.optim.betas, (std::array<double, 2>{0.9, 0.95}));
  EXPECT_EQ(s.model.predictor.depth, 4);
  EXPECT_EQ(s.model.predictor.width, 96);
}

TEST(Overrides, EmptyValueRestoresTheDefault) {
  ASSERT_OK_AND_ASSIGN(
      JobSpec s,
      ParseJobSpec(std::string(kMinimal) + "optim: {steps: 200, warmup: 5}\n", {"optim.warmup="}));
  EXPECT_EQ(WarmupSteps(s), 27);
}

TEST(Overrides, ListDefaultsFollowThePreset) {
  ASSERT_OK_AND_ASSIGN(JobSpec s,
                       ParseJobSpec(kMinimal, {"mask.0.num_blocks=2", "model.preset=nano"}));
  EXPECT_EQ(s.mask[0].num_blocks, 2);
  EXPECT_EQ(s.mask[0].spatial_scale, (Interval{0.25, 0.25}));
  EXPECT_EQ(s.mask[1].spatial_scale, (Interval{0.5, 0.5}));
}

TEST(Overrides, EntryFieldsDefaultPerEntry) {
  ASSERT_OK_AND_ASSIGN(JobSpec s,
                       ParseJobSpec(std::string(kMinimal) + "mask:\n  - {num_blocks: 4}\n",
                                    {"mask.0.aspect_ratio.1=2.0"}));
  EXPECT_EQ(s.mask[0].aspect_ratio, (Interval{0.75, 2.0}));
}

struct BadOverride {
  std::string yaml;
  std::vector<std::string> overrides;
  std::string message;
};

class OverrideErrors : public ::testing::TestWithParam<BadOverride> {};

TEST_P(OverrideErrors, ExactMessage) {
  EXPECT_THAT(ParseJobSpec(GetParam().yaml, GetParam().overrides),
              StatusIs(absl::StatusCode::kInvalidArgument, GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    All, OverrideErrors,
    ::testing::Values(
        BadOverride{kMinimal,
                    {"optim.stepz=3"},
                    "--set optim.stepz=3: optim.stepz: unknown field (known: steps, batch_size, "
                    "lr, wd, ema, clip, warmup, schedule_scale, betas, eps, ipe)"},
        BadOverride{kMinimal, {"foo"}, "--set foo: expected key.path=value"},
        BadOverride{kMinimal, {"=3"}, "--set =3: expected key.path=value"},
        BadOverride{kMinimal, {"optim..steps=3"}, "--set optim..steps=3: expected key.path=value"},
        BadOverride{kMinimal,
                    {"optim.steps=abc"},
                    "--set optim.steps=abc: optim.steps: must be an integer, got \"abc\""},
        BadOverride{kMinimal,
                    {"optim.steps=-1"},
                    "--set optim.steps=-1: optim.steps: must be in [1, 1000000000], got -1"},
        BadOverride{kMinimal,
                    {"model.crop=100"},
                    "--set model.crop=100: model.crop: must be divisible by model.patch (16), got "
                    "100"},
        BadOverride{kMinimal,
                    {"mask.5.num_blocks=3"},
                    "--set mask.5.num_blocks=3: mask.5: index out of range (the list has 2 "
                    "entries)"},
        BadOverride{kMinimal,
                    {"mask.x.num_blocks=3"},
                    "--set mask.x.num_blocks=3: mask.x: expected a list index (0, 1, ...)"},
        BadOverride{kMinimal,
                    {"mask.1.blocks=3"},
                    "--set mask.1.blocks=3: mask.1.blocks: unknown field (known: type, "
                    "num_blocks, spatial_scale, temporal_scale, aspect_ratio, max_temporal_keep, "
                    "max_keep, ratio, context_frames)"},
        BadOverride{kMinimal,
                    {"optim.steps.x=1"},
                    "--set optim.steps.x=1: optim.steps.x: unknown field (optim.steps is a single "
                    "value, not a map or list)"},
        BadOverride{kMinimal,
                    {"optim.steps=[1"},
                    "--set optim.steps=[1: value: invalid YAML at line 1, column 1: end of "
                    "sequence flow not found"},
        BadOverride{std::string(kMinimal) + "optim: 5\n",
                    {"optim.steps=1"},
                    "--set optim.steps=1: optim: must be a map, got 5"},
        BadOverride{kMinimal,
                    {"mask.2.num_blocks=0"},
                    "--set mask.2.num_blocks=0: mask.2.num_blocks: must be in [1, 64], got 0"},
        // An error in the document itself carries no --set prefix.
        BadOverride{std::string(kMinimal) + "seed: -1\n",
                    {"optim.steps=5"},
                    "seed: must be >= 0, got -1"}));

TEST(Overrides, TotalSizeIsBounded) {
  const std::vector<std::string> overrides(2, "name=" + std::string(kMaxSpecBytes / 2, 'a'));
  EXPECT_THAT(ParseJobSpec(kMinimal, overrides),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       "--set: 1048586 bytes in all is over the limit of 1048576"));
}

TEST(ParseJobSpec, RefusesTenMegabytes) {
  std::string big = kMinimal;
  big += "# " + std::string(10 * 1024 * 1024 - big.size() - 3, 'x') + "\n";
  ASSERT_EQ(big.size(), 10485760u);
  EXPECT_THAT(ParseJobSpec(big), StatusIs(absl::StatusCode::kResourceExhausted,
                                          "spec: 10485760 bytes is over the limit of 1048576"));
}

TEST(ParseJobSpec, DocumentShape) {
  EXPECT_THAT(ParseJobSpec(""),
              StatusIs(absl::StatusCode::kInvalidArgument, "spec: empty document"));
  EXPECT_THAT(ParseJobSpec("# nothing\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "spec: empty document"));
  EXPECT_THAT(ParseJobSpec("- a\n- b\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "spec: the top level must be a map, got [a, b]"));
  EXPECT_THAT(ParseJobSpec("hello\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "spec: the top level must be a map, got \"hello\""));
  EXPECT_THAT(ParseJobSpec("name: a\nname: b\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "name: duplicate key (lines 1 and 2)"));
  EXPECT_THAT(ParseJobSpec("name: [x\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "spec: invalid YAML at line 2, column 1: end of sequence flow not found"));
  EXPECT_THAT(ParseJobSpec("name: t\xe9st\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "spec: not valid UTF-8 at byte 7"));
}

// Every key set to something other than its default.
constexpr char kEveryKey[] = R"(
name: every-key-1
kind: probe
seed: 7
model:
  preset: vit_small
  embed_dim: 192
  depth: 3
  heads: 3
  mlp_ratio: 2.5
  frames: 8
  crop: 96
  patch: 8
  tubelet: 4
  predictor: {depth: 2, width: 48, heads: 2}
  uniform_power: false
  use_mask_tokens: false
  zero_init_mask_tokens: false
dataset:
  manifest: "/data/train list.csv"
  root: /data/videos
data:
  frame_step: 2
  num_clips: 2
  random_resized_crop: {scale: [0.5, 0.9], ratio: [0.8, 1.2]}
  flip: 0.25
  normalize: {mean: [0.5, 0.5, 0.5], std: [0.25, 0.25, 0.25]}
mask:
  - type: causal_multiblock
    num_blocks: 3
    spatial_scale: [0.1, 0.2]
    temporal_scale: [0.5, 1.0]
    aspect_ratio: [0.5, 2.0]
    max_temporal_keep: 0.5
    max_keep: 40
    ratio: 0.6
    context_frames: 4
  - {type: random_tube, ratio: 0.5}
mask_options: {share_block_size: true}
loss: {target: pixels, exponent: 2.0, reg_coeff: 0.5}
optim:
  steps: 500
  batch_size: 3
  lr: {start: 0.0001, peak: 0.001, final: 0.00001}
  wd: {start: 0.05, final: 0.1}
  ema: {start: 0.99, final: 0.999}
  clip: 0.0
  warmup: 50
  schedule_scale: 1.5
  betas: [0.8, 0.99]
  eps: 1.0e-6
  ipe: 25
probe:
  checkpoint: job-123
  checkpoint_key: encoder
  checkpoint_step: 40
  num_classes: 5
  pooling: both
  epochs: 3
  lr: 0.002
  wd: {start: 0.02, final: 0.001}
  clip: 2.0
  batch_size: 6
  segments: 2
  views: 3
  val_manifest: val.csv
checkpoint: {every_steps: 25, keep_last: 2, keep_every: 100, initial: true}
resources:
  trainers: 1
  dataworkers: 8
  device: cuda
  precision: float32
  torch_threads: 2
)";

TEST(ToYaml, RoundTripsEveryKey) {
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(kEveryKey));
  EXPECT_EQ(s.dataset.manifest, "/data/train list.csv");
  EXPECT_EQ(s.mask[0].type, MaskType::kCausalMultiblock);
  EXPECT_EQ(s.mask[0].max_keep, 40);
  EXPECT_EQ(s.mask[1].num_blocks, 8);      // per-entry default
  EXPECT_EQ(s.mask[1].context_frames, 4);  // half of 8 frames
  EXPECT_EQ(s.probe.num_classes, 5);
  EXPECT_EQ(s.resources.precision, Precision::kFloat32);  // explicit beats the cuda default
  const std::string yaml = ToYaml(s);
  ASSERT_OK_AND_ASSIGN(JobSpec back, ParseJobSpec(yaml));
  EXPECT_TRUE(back == s) << yaml;
  EXPECT_EQ(ToYaml(back), yaml);

  // No field keeps its default: if ToYaml or the decoder dropped one, the round trip of the
  // defaults below would not tell; this does.
  const JobSpec defaults = MinimalSpec();
  EXPECT_NE(s.model.preset, defaults.model.preset);
  EXPECT_NE(s.model.predictor.heads, defaults.model.predictor.heads);
  EXPECT_NE(s.data.normalize.stddev, defaults.data.normalize.stddev);
  EXPECT_NE(s.optim.betas, defaults.optim.betas);
  EXPECT_NE(s.probe.wd.final, defaults.probe.wd.final);
}

TEST(ToYaml, RoundTripsDefaultsAndNano) {
  for (const char* extra : {"", "model: {preset: nano}\n",
                            "kind: probe\nprobe: {checkpoint: \"x: y\", num_classes: 2}\n"}) {
    ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(std::string(kMinimal) + extra));
    const std::string yaml = ToYaml(s);
    ASSERT_OK_AND_ASSIGN(JobSpec back, ParseJobSpec(yaml));
    EXPECT_TRUE(back == s) << yaml;
  }
}

TEST(ToYaml, SpellsOutEveryKeyOfTheSchema) {
  ASSERT_OK_AND_ASSIGN(internal::Node tree, internal::LoadYaml(ToYaml(MinimalSpec()), "canonical"));
  for (const std::string& path : internal::LeafPaths(internal::SpecSchema())) {
    const internal::Node* node = &tree;
    for (absl::string_view seg : absl::StrSplit(path, '.')) {
      if (absl::ConsumeSuffix(&seg, "[i]")) {
        node = node->Find(seg);
        ASSERT_NE(node, nullptr) << path;
        ASSERT_TRUE(node->is_list()) << path;
        node = &node->items[0];
      } else {
        node = node->Find(seg);
        ASSERT_NE(node, nullptr) << path;
      }
    }
  }
}

TEST(ToYaml, CanonicalText) {
  EXPECT_EQ(ToYaml(MinimalSpec()), R"(name: test
kind: pretrain
seed: 234
model:
  preset: vit_large
  embed_dim: 1024
  depth: 24
  heads: 16
  mlp_ratio: 4.0
  frames: 16
  crop: 224
  patch: 16
  tubelet: 2
  predictor:
    depth: 12
    width: 384
    heads: 16
  uniform_power: true
  use_mask_tokens: true
  zero_init_mask_tokens: true
dataset:
  manifest: m.csv
  root: ""
data:
  frame_step: 4
  num_clips: 1
  random_resized_crop:
    scale: [0.3, 1.0]
    ratio: [0.75, 1.35]
  flip: 0.5
  normalize:
    mean: [0.485, 0.456, 0.406]
    std: [0.229, 0.224, 0.225]
mask:
  - type: multiblock3d
    num_blocks: 8
    spatial_scale: [0.15, 0.15]
    temporal_scale: [1.0, 1.0]
    aspect_ratio: [0.75, 1.5]
    max_temporal_keep: 1.0
    max_keep: null
    ratio: 0.9
    context_frames: 8
  - type: multiblock3d
    num_blocks: 2
    spatial_scale: [0.7, 0.7]
    temporal_scale: [1.0, 1.0]
    aspect_ratio: [0.75, 1.5]
    max_temporal_keep: 1.0
    max_keep: null
    ratio: 0.9
    context_frames: 8
mask_options:
  share_block_size: false
loss:
  target: features
  exponent: 1.0
  reg_coeff: 0.0
optim:
  steps: 90000
  batch_size: 24
  lr:
    start: 0.0002
    peak: 0.000625
    final: 1e-06
  wd:
    start: 0.04
    final: 0.4
  ema:
    start: 0.998
    final: 1.0
  clip: 10.0
  warmup: 12000
  schedule_scale: 1.25
  betas: [0.9, 0.999]
  eps: 1e-08
  ipe: 300
probe:
  checkpoint: ""
  checkpoint_key: target_encoder
  checkpoint_step: null
  num_classes: null
  pooling: attentive
  epochs: 20
  lr: 0.001
  wd:
    start: 0.01
    final: 1e-06
  clip: 1.0
  batch_size: 4
  segments: 1
  views: 1
  val_manifest: ""
checkpoint:
  every_steps: 300
  keep_last: 3
  keep_every: 0
  initial: false
resources:
  trainers: 1
  dataworkers: 1
  device: cpu
  precision: float32
  torch_threads: 0
  priority: 0
)");
}

TEST(Examples, MicroParses) {
  const std::string text = SourceFile("examples/jobs/micro.yaml");
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(text));
  EXPECT_EQ(s.name, "micro");
  EXPECT_EQ(s.seed, 234);
  EXPECT_EQ(s.model.preset, ModelPreset::kVitTiny);
  EXPECT_EQ(s.model.embed_dim, 192);
  EXPECT_EQ(s.model.heads, 3);
  EXPECT_EQ(s.model.frames, 8);
  EXPECT_EQ(s.model.crop, 112);
  EXPECT_EQ(s.model.predictor.depth, 6);
  EXPECT_EQ(s.model.predictor.width, 192);
  EXPECT_EQ(s.model.predictor.heads, 3);
  EXPECT_EQ(TokensPerClip(s), 196);
  EXPECT_EQ(s.optim.batch_size, 8);
  EXPECT_EQ(s.optim.steps, 200);
  EXPECT_EQ(WarmupSteps(s), 27);
  EXPECT_EQ(ScheduleLength(s), 250);
  EXPECT_EQ(s.checkpoint.every_steps, 50);
  EXPECT_EQ(s.resources.trainers, 1);
  EXPECT_EQ(s.resources.dataworkers, 1);
  EXPECT_EQ(s.dataset.manifest, "demo-data/manifest.csv");
  EXPECT_EQ(s.dataset.root, "demo-data");
  EXPECT_EQ(s.mask.size(), 2u);
}

TEST(Examples, ProbeParses) {
  const std::string text = SourceFile("examples/jobs/probe.yaml");
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(text));
  EXPECT_EQ(s.kind, JobKind::kProbe);
  EXPECT_FALSE(s.probe.checkpoint.empty());
  ASSERT_TRUE(s.probe.num_classes.has_value());
  EXPECT_GE(*s.probe.num_classes, 2);
}

TEST(Docs, DescribeEveryKey) {
  const std::string doc = SourceFile("docs/job-spec.md");
  for (const std::string& path : internal::LeafPaths(internal::SpecSchema())) {
    EXPECT_THAT(doc, HasSubstr("`" + path + "`")) << "docs/job-spec.md lacks " << path;
  }
}

TEST(Helpers, ContextFramesAndGrid) {
  EXPECT_EQ(DefaultContextFrames(16, 2), 8);
  EXPECT_EQ(DefaultContextFrames(4, 2), 2);
  EXPECT_EQ(DefaultContextFrames(6, 2), 2);
  EXPECT_EQ(DefaultContextFrames(2, 2), 2);
  EXPECT_EQ(DefaultIpe(90000), 300);
  EXPECT_EQ(DefaultIpe(100), 1);
  EXPECT_EQ(DefaultWarmup(200), 27);
  EXPECT_THAT(internal::LeafPaths(internal::SpecSchema()),
              ::testing::Contains("mask[i].num_blocks"));
}

}  // namespace
}  // namespace vjepa::spec
