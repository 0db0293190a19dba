// Every rule of docs/job-spec.md, with the exact message a user sees.

#include <cmath>
#include <string>

#include "common/spec/job_spec.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::spec {
namespace {

using ::vjepa::testing::StatusIs;

// A valid spec plus `extra` (top-level keys other than name and dataset).
std::string Spec(const std::string& extra) {
  return "name: test\ndataset: {manifest: m.csv}\n" + extra;
}

std::string NineMasks() {
  std::string text = "mask:\n";
  for (int i = 0; i < 9; ++i) text += "  - {}\n";
  return text;
}

struct Invalid {
  std::string label;
  std::string yaml;
  std::string message;
};

class Rules : public ::testing::TestWithParam<Invalid> {};

TEST_P(Rules, ExactMessage) {
  EXPECT_THAT(ParseJobSpec(GetParam().yaml),
              StatusIs(absl::StatusCode::kInvalidArgument, GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Structure, Rules,
    ::testing::Values(
        Invalid{"UnknownTop", Spec("foo: 1\n"),
                "foo: unknown field (known: name, kind, seed, model, dataset, data, mask, "
                "mask_options, loss, optim, probe, checkpoint, resources)"},
        Invalid{"UnknownOptim", Spec("optim: {lrr: 1}\n"),
                "optim.lrr: unknown field (known: steps, batch_size, lr, wd, ema, clip, warmup, "
                "schedule_scale, betas, eps, ipe)"},
        Invalid{"UnknownNested", Spec("model: {predictor: {layers: 2}}\n"),
                "model.predictor.layers: unknown field (known: depth, width, heads)"},
        Invalid{"SectionNotMap", Spec("optim: 5\n"), "optim: must be a map, got 5"},
        Invalid{"SectionIsList", Spec("resources: [1, 2]\n"),
                "resources: must be a map, got [1, 2]"},
        Invalid{"IntegerWord", Spec("optim: {steps: abc}\n"),
                "optim.steps: must be an integer, got \"abc\""},
        Invalid{"IntegerFraction", Spec("optim: {steps: 1.5}\n"),
                "optim.steps: must be an integer, got 1.5"},
        Invalid{"IntegerQuoted", Spec("optim: {steps: \"100\"}\n"),
                "optim.steps: must be an integer, got \"100\""},
        Invalid{"IntegerTooBig", Spec("seed: 99999999999999999999\n"),
                "seed: must be an integer, got 99999999999999999999"},
        Invalid{"NumberWord", Spec("optim: {clip: high}\n"),
                "optim.clip: must be a number, got \"high\""},
        Invalid{"NumberInfinite", Spec("optim: {lr: {peak: inf}}\n"),
                "optim.lr.peak: must be a finite number, got inf"},
        Invalid{"NumberYamlNan", Spec("optim: {lr: {peak: .nan}}\n"),
                "optim.lr.peak: must be a number, got \".nan\""},
        Invalid{"Boolean", Spec("model: {uniform_power: yes}\n"),
                "model.uniform_power: must be true or false, got \"yes\""},
        Invalid{"StringIsList", Spec("probe: {checkpoint: [a]}\n"),
                "probe.checkpoint: must be a string, got [a]"},
        Invalid{"PairTooShort", Spec("optim: {betas: [0.9]}\n"),
                "optim.betas: must be a list of 2 numbers [a, b], got [0.9]"},
        Invalid{"IntervalNotNumbers", Spec("data: {random_resized_crop: {scale: [a, b]}}\n"),
                "data.random_resized_crop.scale: must be a list of 2 numbers [min, max], got "
                "[a, b]"},
        Invalid{"TripleTooLong", Spec("data: {normalize: {mean: [0.5, 0.5, 0.5, 0.5]}}\n"),
                "data.normalize.mean: must be a list of 3 numbers [r, g, b], got [0.5, 0.5, 0.5, "
                "0.5]"}),
    [](const auto& info) { return info.param.label; });

INSTANTIATE_TEST_SUITE_P(
    Top, Rules,
    ::testing::Values(
        Invalid{"NameMissing", "dataset: {manifest: m.csv}\n", "name: required field is missing"},
        Invalid{"NameCase", "name: My_Job\ndataset: {manifest: m.csv}\n",
                "name: must be 1 to 63 characters of a-z, 0-9 and '-', starting and ending with "
                "a letter or digit, got \"My_Job\""},
        Invalid{"NameDash", "name: -job\ndataset: {manifest: m.csv}\n",
                "name: must be 1 to 63 characters of a-z, 0-9 and '-', starting and ending with "
                "a letter or digit, got \"-job\""},
        Invalid{"NameLong", "name: " + std::string(64, 'a') + "\ndataset: {manifest: m.csv}\n",
                "name: must be 1 to 63 characters of a-z, 0-9 and '-', starting and ending with "
                "a letter or digit, got \"" +
                    std::string(64, 'a') + "\""},
        Invalid{"ManifestMissing", "name: test\n", "dataset.manifest: required field is missing"},
        Invalid{"ManifestNul", "name: test\ndataset: {manifest: \"a\\0b\"}\n",
                "dataset.manifest: must not contain a NUL character, got \"a\\x00b\""},
        Invalid{"Kind", Spec("kind: eval\n"),
                "kind: must be one of pretrain or probe, got \"eval\""},
        Invalid{"Seed", Spec("seed: -1\n"), "seed: must be >= 0, got -1"}),
    [](const auto& info) { return info.param.label; });

INSTANTIATE_TEST_SUITE_P(
    Model, Rules,
    ::testing::Values(
        Invalid{"Preset", Spec("model: {preset: vit_l}\n"),
                "model.preset: must be one of nano, vit_tiny, vit_small, vit_base, vit_large, "
                "vit_huge or vit_giant, got \"vit_l\""},
        Invalid{"FramesZero", Spec("model: {frames: 0}\n"),
                "model.frames: must be in [1, 1024], got 0"},
        Invalid{"FramesAbsurd", Spec("model: {frames: 100000}\n"),
                "model.frames: must be in [1, 1024], got 100000"},
        Invalid{"EmbedDimNegative", Spec("model: {embed_dim: -8}\n"),
                "model.embed_dim: must be in [1, 16384], got -8"},
        Invalid{"MlpRatio", Spec("model: {mlp_ratio: 0}\n"), "model.mlp_ratio: must be > 0, got 0"},
        Invalid{"CropPatch", Spec("model: {crop: 100}\n"),
                "model.crop: must be divisible by model.patch (16), got 100"},
        Invalid{"FramesTubelet", Spec("model: {frames: 15}\n"),
                "model.frames: must be divisible by model.tubelet (2), got 15"},
        Invalid{"EmbedHeads", Spec("model: {embed_dim: 1000}\n"),
                "model.embed_dim: must be divisible by model.heads (16), got 1000"},
        Invalid{"PredictorHeads", Spec("model: {predictor: {width: 100}}\n"),
                "model.predictor.width: must be divisible by model.predictor.heads (16), got 100"},
        Invalid{"SinCosSplit", Spec("model: {uniform_power: false, embed_dim: 1036, heads: 4}\n"),
                "model.embed_dim: must be divisible by 8 when model.uniform_power is false, got "
                "1036"},
        Invalid{"TokensPerClip", Spec("model: {crop: 4096, patch: 8}\n"),
                "model: tokens per clip, (frames / tubelet) × (crop / patch)², must be <= 65536, "
                "got 2097152 (8 × 512 × 512)"}),
    [](const auto& info) { return info.param.label; });

INSTANTIATE_TEST_SUITE_P(
    Data, Rules,
    ::testing::Values(
        Invalid{"FrameStep", Spec("data: {frame_step: 0}\n"),
                "data.frame_step: must be in [1, 64], got 0"},
        Invalid{"ScaleOrder", Spec("data: {random_resized_crop: {scale: [1.0, 0.3]}}\n"),
                "data.random_resized_crop.scale: min must be <= max, got [1, 0.3]"},
        Invalid{"ScaleZero", Spec("data: {random_resized_crop: {scale: [0, 1]}}\n"),
                "data.random_resized_crop.scale: must lie within (0, 1], got [0, 1]"},
        Invalid{"Flip", Spec("data: {flip: 2}\n"), "data.flip: must be in [0, 1], got 2"},
        Invalid{"Std", Spec("data: {normalize: {std: [0.2, 0, 0.2]}}\n"),
                "data.normalize.std: must be 3 numbers in (0, 1], got [0.2, 0, 0.2]"}),
    [](const auto& info) { return info.param.label; });

INSTANTIATE_TEST_SUITE_P(
    Mask, Rules,
    ::testing::Values(
        Invalid{"Empty", Spec("mask: []\n"), "mask: must have 1 to 8 entries, got 0"},
        Invalid{"TooMany", Spec(NineMasks()), "mask: must have 1 to 8 entries, got 9"},
        Invalid{"NotList", Spec("mask: {num_blocks: 2}\n"),
                "mask: must be a list of mask configs, got {num_blocks: 2}"},
        Invalid{"EntryNotMap", Spec("mask: [5]\n"), "mask.0: must be a map, got 5"},
        Invalid{"UnknownKey", Spec("mask: [{foo: 1}]\n"),
                "mask.0.foo: unknown field (known: type, num_blocks, spatial_scale, "
                "temporal_scale, aspect_ratio, max_temporal_keep, max_keep, ratio, "
                "context_frames)"},
        Invalid{"Type", Spec("mask: [{type: tube}]\n"),
                "mask.0.type: must be one of multiblock3d, random_tube or causal_multiblock, got "
                "\"tube\""},
        Invalid{"NumBlocks", Spec("mask: [{}, {num_blocks: 0}]\n"),
                "mask.1.num_blocks: must be in [1, 64], got 0"},
        Invalid{"ScaleOrder", Spec("mask: [{spatial_scale: [0.2, 0.1]}]\n"),
                "mask.0.spatial_scale: min must be <= max, got [0.2, 0.1]"},
        Invalid{"TemporalScale", Spec("mask: [{temporal_scale: [0.5, 1.5]}]\n"),
                "mask.0.temporal_scale: must lie within (0, 1], got [0.5, 1.5]"},
        Invalid{"MaxKeep", Spec("mask: [{max_keep: 0}]\n"),
                "mask.0.max_keep: must be null or >= 1, got 0"},
        Invalid{"NoCells", Spec("mask: [{spatial_scale: [0.001, 0.001]}]\n"),
                "mask.0.spatial_scale: must select at least one cell of the 14 × 14 grid "
                "(int(196 × 0.001) = 0), got [0.001, 0.001]"},
        Invalid{"NanoGrid", Spec("model: {preset: nano}\nmask: [{spatial_scale: [0.15, 0.15]}]\n"),
                "mask.0.spatial_scale: must select at least one cell of the 2 × 2 grid "
                "(int(4 × 0.15) = 0), got [0.15, 0.15]"},
        Invalid{"FlatBlocks",
                Spec("mask: [{spatial_scale: [0.01, 0.01], aspect_ratio: [0.1, 5]}]\n"),
                "mask.0.aspect_ratio: makes a block 0 cells high or wide when it keeps 1 of the "
                "196 cells of the 14 × 14 grid, got [0.1, 5]"},
        Invalid{"WholeGrid", Spec("mask: [{spatial_scale: [1.0, 1.0]}]\n"),
                "mask.0.spatial_scale: lets one block cover the whole 14 × 14 grid, leaving no "
                "context, got [1, 1]"},
        Invalid{"RatioRange", Spec("mask: [{type: random_tube, ratio: 1.0}]\n"),
                "mask.0.ratio: must be in (0, 1), got 1"},
        Invalid{"RatioNoContext", Spec("mask: [{type: random_tube, ratio: 0.999}]\n"),
                "mask.0.ratio: must leave between 1 and 195 of the 14 × 14 positions as context "
                "(int(196 × (1 − 0.999)) = 0), got 0.999"},
        Invalid{"ContextFramesTubelet",
                Spec("mask: [{type: causal_multiblock, context_frames: 5}]\n"),
                "mask.0.context_frames: must be divisible by model.tubelet (2), got 5"},
        Invalid{"ContextFramesRange", Spec("mask: [{context_frames: 32}]\n"),
                "mask.0.context_frames: must be in [2, 16] (model.tubelet to model.frames), got "
                "32"}),
    [](const auto& info) { return info.param.label; });

INSTANTIATE_TEST_SUITE_P(
    Optim, Rules,
    ::testing::Values(Invalid{"StepsZero", Spec("optim: {steps: 0}\n"),
                              "optim.steps: must be in [1, 1000000000], got 0"},
                      Invalid{"StepsAbsurd", Spec("optim: {steps: 2000000000}\n"),
                              "optim.steps: must be in [1, 1000000000], got 2000000000"},
                      Invalid{"BatchNegative", Spec("optim: {batch_size: -3}\n"),
                              "optim.batch_size: must be in [1, 4096], got -3"},
                      Invalid{"PeakNegative", Spec("optim: {lr: {peak: -1}}\n"),
                              "optim.lr.peak: must be > 0, got -1"},
                      Invalid{"PeakAbsurd", Spec("optim: {lr: {peak: 50}}\n"),
                              "optim.lr.peak: must be <= 10, got 50"},
                      Invalid{"StartAbovePeak", Spec("optim: {lr: {start: 0.001}}\n"),
                              "optim.lr.start: must be <= optim.lr.peak (0.000625), got 0.001"},
                      Invalid{"FinalAbovePeak", Spec("optim: {lr: {final: 0.001}}\n"),
                              "optim.lr.final: must be <= optim.lr.peak (0.000625), got 0.001"},
                      Invalid{"WeightDecay", Spec("optim: {wd: {final: -0.4}}\n"),
                              "optim.wd.final: must be in [0, 10], got -0.4"},
                      Invalid{"Ema", Spec("optim: {ema: {start: 1.5}}\n"),
                              "optim.ema.start: must be in [0, 1], got 1.5"},
                      Invalid{"Clip", Spec("optim: {clip: -1}\n"),
                              "optim.clip: must be in [0, 1000000], got -1"},
                      Invalid{"Warmup", Spec("optim: {steps: 200, warmup: 300}\n"),
                              "optim.warmup: must be in [0, 200] (at most optim.steps), got 300"},
                      Invalid{"ScheduleScale", Spec("optim: {schedule_scale: 0.5}\n"),
                              "optim.schedule_scale: must be in [1, 100], got 0.5"},
                      Invalid{"Betas", Spec("optim: {betas: [0.9, 1.0]}\n"),
                              "optim.betas: must be 2 numbers in [0, 1), got [0.9, 1]"},
                      Invalid{"Eps", Spec("optim: {eps: 0}\n"), "optim.eps: must be > 0, got 0"},
                      Invalid{"Ipe", Spec("optim: {ipe: 100000}\n"),
                              "optim.ipe: must be in [1, 90000] (at most optim.steps), got 100000"},
                      Invalid{"LossTarget", Spec("loss: {target: logits}\n"),
                              "loss.target: must be one of features or pixels, got \"logits\""},
                      Invalid{"LossExponent", Spec("loss: {exponent: 8}\n"),
                              "loss.exponent: must be <= 4, got 8"}),
    [](const auto& info) { return info.param.label; });

INSTANTIATE_TEST_SUITE_P(
    ProbeCheckpointResources, Rules,
    ::testing::Values(
        Invalid{"ProbeNeedsClasses", Spec("kind: probe\nprobe: {checkpoint: job-1}\n"),
                "probe.num_classes: required when kind is probe"},
        Invalid{"ProbeNeedsCheckpoint", Spec("kind: probe\nprobe: {num_classes: 10}\n"),
                "probe.checkpoint: required when kind is probe"},
        Invalid{"ProbeClasses", Spec("probe: {num_classes: 1}\n"),
                "probe.num_classes: must be in [2, 100000], got 1"},
        Invalid{"ProbePooling", Spec("probe: {pooling: max}\n"),
                "probe.pooling: must be one of attentive, average or both, got \"max\""},
        Invalid{"ProbeKey", Spec("probe: {checkpoint_key: predictor}\n"),
                "probe.checkpoint_key: must be one of target_encoder or encoder, got "
                "\"predictor\""},
        Invalid{"ProbeTokens", Spec("probe: {segments: 64}\nmodel: {crop: 448}\n"),
                "probe.segments: tokens per probe sample (segments × tokens per clip) must be <= "
                "262144, got 401408 (64 × 6272)"},
        Invalid{"EverySteps", Spec("checkpoint: {every_steps: 0}\n"),
                "checkpoint.every_steps: must be in [1, 1000000000], got 0"},
        Invalid{"KeepEvery", Spec("checkpoint: {every_steps: 50, keep_every: 75}\n"),
                "checkpoint.keep_every: must be 0 or a multiple of checkpoint.every_steps (50), "
                "got 75"},
        Invalid{"Trainers", Spec("resources: {trainers: 0}\n"),
                "resources.trainers: must be in [1, 1024], got 0"},
        Invalid{"Dataworkers", Spec("resources: {dataworkers: 5000}\n"),
                "resources.dataworkers: must be in [1, 4096], got 5000"},
        Invalid{"Device", Spec("resources: {device: tpu}\n"),
                "resources.device: must be one of cpu or cuda, got \"tpu\""},
        Invalid{"Precision", Spec("resources: {precision: float16}\n"),
                "resources.precision: must be one of float32 or bfloat16, got \"float16\""}),
    [](const auto& info) { return info.param.label; });

TEST(ValidateJobSpec, ChecksSpecsBuiltInCode) {
  JobSpec s;
  EXPECT_THAT(ValidateJobSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, "name: required field is missing"));
  s.name = "job";
  s.dataset.manifest = "m.csv";
  EXPECT_OK(ValidateJobSpec(s));
  s.mask.clear();
  EXPECT_THAT(ValidateJobSpec(s), StatusIs(absl::StatusCode::kInvalidArgument,
                                           "mask: must have 1 to 8 entries, got 0"));
  s.mask = DefaultMasks(ModelPreset::kVitLarge);
  s.optim.lr.peak = std::nan("");
  EXPECT_THAT(ValidateJobSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, "optim.lr.peak: must be > 0, got nan"));
  s.optim.lr.peak = 6.25e-4;
  s.resources.device = static_cast<Device>(7);
  EXPECT_THAT(ValidateJobSpec(s), StatusIs(absl::StatusCode::kInvalidArgument,
                                           "resources.device: must be a known value, got 7"));
  s.resources.device = Device::kCpu;
  s.dataset.root = "bad\xff";
  EXPECT_THAT(ValidateJobSpec(s), StatusIs(absl::StatusCode::kInvalidArgument,
                                           "dataset.root: not valid UTF-8 at byte 3"));
}

}  // namespace
}  // namespace vjepa::spec
