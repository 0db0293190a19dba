#include <string>

#include "absl/strings/str_replace.h"
#include "common/spec/job_spec.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::spec {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

// The reference's configs/pretrain/vitl16.yaml, as docs/vjepa-spec.md describes it.
constexpr char kVitl16[] = R"(app: vjepa
nodes: 16
tasks_per_node: 8
data:
  dataset_type: VideoDataset
  datasets:
  - /datasets/k710.csv
  - /datasets/ssv2.csv
  - /datasets/howto100m.csv
  decode_one_clip: true
  batch_size: 24
  num_clips: 1
  num_frames: 16
  tubelet_size: 2
  sampling_rate: 4
  crop_size: 224
  patch_size: 16
  pin_mem: true
  num_workers: 12
  filter_short_videos: false
  clip_duration: null
data_aug:
  auto_augment: false
  motion_shift: false
  random_resize_aspect_ratio:
  - 0.75
  - 1.35
  random_resize_scale:
  - 0.3
  - 1.0
  reprob: 0.0
logging:
  folder: /checkpoints/vitl16/
  write_tag: jepa
loss:
  loss_exp: 1.0
  reg_coeff: 0.0
mask:
- aspect_ratio:
  - 0.75
  - 1.5
  num_blocks: 8
  spatial_scale:
  - 0.15
  - 0.15
  temporal_scale:
  - 1.0
  - 1.0
  max_temporal_keep: 1.0
  max_keep: null
- aspect_ratio:
  - 0.75
  - 1.5
  num_blocks: 2
  spatial_scale:
  - 0.7
  - 0.7
  temporal_scale:
  - 1.0
  - 1.0
  max_temporal_keep: 1.0
  max_keep: null
meta:
  load_checkpoint: false
  read_checkpoint: null
  seed: 234
  eval_freq: 100
  use_sdpa: true
  dtype: bfloat16
model:
  model_name: vit_large
  pred_depth: 12
  pred_embed_dim: 384
  uniform_power: true
  use_mask_tokens: true
  zero_init_mask_tokens: true
optimization:
  ipe: 300
  ipe_scale: 1.25
  clip_grad: 10.0
  weight_decay: 0.04
  final_weight_decay: 0.4
  epochs: 300
  warmup: 40
  start_lr: 0.0002
  lr: 0.000625
  final_lr: 1.0e-06
  ema:
  - 0.998
  - 1.0
)";

std::string Edit(const std::string& from, const std::string& to) {
  std::string text = kVitl16;
  EXPECT_NE(text.find(from), std::string::npos) << from;
  return absl::StrReplaceAll(text, {{from, to}});
}

TEST(ImportReferenceConfig, Vitl16) {
  ASSERT_OK_AND_ASSIGN(std::string yaml, ImportReferenceConfig(kVitl16));
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(yaml));

  JobSpec expected;
  expected.name = "jepa";
  expected.dataset.manifest = "/datasets/k710.csv";
  expected.resources.trainers = 128;
  expected.resources.device = Device::kCuda;
  expected.resources.precision = Precision::kBfloat16;
  EXPECT_TRUE(s == expected) << yaml;

  // The numbers of docs/vjepa-spec.md §4, spelled out.
  EXPECT_EQ(s.optim.steps, 90000);
  EXPECT_EQ(WarmupSteps(s), 12000);
  EXPECT_EQ(s.optim.schedule_scale, 1.25);
  EXPECT_EQ(ScheduleLength(s), 112500);
  EXPECT_EQ(s.optim.ipe, 300);
  EXPECT_EQ(ClipStartStep(s), 12301);
  EXPECT_EQ(s.optim.lr.start, 2e-4);
  EXPECT_EQ(s.optim.lr.peak, 6.25e-4);
  EXPECT_EQ(s.optim.lr.final, 1e-6);
  EXPECT_EQ(s.optim.wd.start, 0.04);
  EXPECT_EQ(s.optim.wd.final, 0.4);
  EXPECT_EQ(s.optim.ema.start, 0.998);
  EXPECT_EQ(s.optim.ema.final, 1.0);
  EXPECT_EQ(s.optim.clip, 10.0);
  EXPECT_EQ(s.optim.batch_size, 24);
  EXPECT_EQ(s.seed, 234);
  EXPECT_EQ(s.model.preset, ModelPreset::kVitLarge);
  EXPECT_EQ(s.model.predictor.depth, 12);
  EXPECT_EQ(s.model.predictor.width, 384);
  EXPECT_EQ(s.model.frames, 16);
  EXPECT_EQ(s.model.crop, 224);
  EXPECT_EQ(s.data.frame_step, 4);
  EXPECT_EQ(s.data.random_resized_crop.scale, (Interval{0.3, 1.0}));
  EXPECT_EQ(s.data.random_resized_crop.ratio, (Interval{0.75, 1.35}));
  ASSERT_EQ(s.mask.size(), 2u);
  EXPECT_EQ(s.mask[0].num_blocks, 8);
  EXPECT_EQ(s.mask[0].spatial_scale, (Interval{0.15, 0.15}));
  EXPECT_EQ(s.mask[1].num_blocks, 2);
  EXPECT_EQ(s.mask[1].spatial_scale, (Interval{0.7, 0.7}));
  EXPECT_EQ(s.checkpoint.every_steps, 300);
  EXPECT_EQ(s.resources.trainers * s.optim.batch_size, 3072);

  // The comment block says where every key went.
  EXPECT_THAT(yaml, HasSubstr("#   data.batch_size -> optim.batch_size\n"));
  EXPECT_THAT(yaml,
              HasSubstr("#   optimization.epochs -> optim.steps (epochs × ipe = 300 × 300)\n"));
  EXPECT_THAT(yaml,
              HasSubstr("#   optimization.warmup -> optim.warmup (int(warmup × ipe) = 12000)\n"));
  EXPECT_THAT(yaml,
              HasSubstr("#   nodes -> resources.trainers (nodes × tasks_per_node = 16 × 8)\n"));
  EXPECT_THAT(yaml, HasSubstr("#   data.num_workers: decoding runs on the dataworkers"));
  EXPECT_THAT(yaml, HasSubstr("#   data.datasets[1:]: a job reads one manifest; concatenate these "
                              "into it: \"/datasets/ssv2.csv\", \"/datasets/howto100m.csv\"\n"));
}

TEST(ImportReferenceConfig, Vith16At384) {
  std::string text = Edit("model_name: vit_large", "model_name: vit_huge");
  text = absl::StrReplaceAll(text, {{"crop_size: 224", "crop_size: 384"},
                                    {"batch_size: 24", "batch_size: 10"},
                                    {"nodes: 16", "nodes: 30"}});
  ASSERT_OK_AND_ASSIGN(std::string yaml, ImportReferenceConfig(text));
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(yaml));
  EXPECT_EQ(s.model.preset, ModelPreset::kVitHuge);
  EXPECT_EQ(s.model.embed_dim, 1280);
  EXPECT_EQ(TokensPerClip(s), 4608);
  EXPECT_EQ(s.resources.trainers * s.optim.batch_size, 2400);
}

TEST(ImportReferenceConfig, ReferenceDefaultsForAbsentKeys) {
  std::string text = Edit("  ipe_scale: 1.25\n  clip_grad: 10.0\n", "");
  text = absl::StrReplaceAll(text, {{"  seed: 234\n", "  save_every_freq: 50\n"}});
  ASSERT_OK_AND_ASSIGN(std::string yaml, ImportReferenceConfig(text));
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(yaml));
  EXPECT_EQ(s.optim.schedule_scale, 1.0);
  EXPECT_EQ(ScheduleLength(s), 90000);
  EXPECT_EQ(s.optim.clip, 0.0);
  EXPECT_EQ(s.seed, 0);
  EXPECT_EQ(s.checkpoint.keep_every, 15000);
}

TEST(ImportReferenceConfig, RandomTubeAndName) {
  std::string text = Edit("  batch_size: 24\n", "  batch_size: 24\n  mask_type: random\n");
  text = absl::StrReplaceAll(text, {{"write_tag: jepa", "write_tag: My_Run.v2"}});
  ASSERT_OK_AND_ASSIGN(std::string yaml, ImportReferenceConfig(text));
  ASSERT_OK_AND_ASSIGN(JobSpec s, ParseJobSpec(yaml));
  EXPECT_EQ(s.mask[0].type, MaskType::kRandomTube);
  EXPECT_EQ(s.name, "my-run-v2");
}

struct BadImport {
  std::string label;
  std::string text;
  std::string message;
};

class ImportErrors : public ::testing::TestWithParam<BadImport> {};

TEST_P(ImportErrors, ExactMessage) {
  EXPECT_THAT(ImportReferenceConfig(GetParam().text),
              StatusIs(absl::StatusCode::kInvalidArgument, GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    All, ImportErrors,
    ::testing::Values(
        BadImport{"Empty", "", "reference config: empty document"},
        BadImport{"UnknownKey", Edit("  epochs: 300\n", "  epochs: 300\n  epoch: 3\n"),
                  "optimization.epoch: unknown field (known: ipe, ipe_scale, clip_grad, "
                  "weight_decay, final_weight_decay, epochs, warmup, start_lr, lr, final_lr, ema, "
                  "betas, eps)"},
        BadImport{"App", Edit("app: vjepa", "app: vjepa_eval"),
                  "app: must be vjepa (a V-JEPA pretrain config), got \"vjepa_eval\""},
        BadImport{"NoIpe", Edit("  ipe: 300\n", ""),
                  "optimization.ipe: required (the reference falls back to the data loader's "
                  "length, which is not known here)"},
        BadImport{"ModelName", Edit("model_name: vit_large", "model_name: vit_gigantic"),
                  "model.model_name: must be one of vit_tiny, vit_small, vit_base, vit_large, "
                  "vit_huge or vit_giant, got \"vit_gigantic\""},
        BadImport{"AutoAugment", Edit("auto_augment: false", "auto_augment: true"),
                  "data_aug.auto_augment: must be false: not implemented, got true"},
        BadImport{"Reprob", Edit("reprob: 0.0", "reprob: 0.25"),
                  "data_aug.reprob: must be 0: random erasing is not implemented, got 0.25"},
        BadImport{"Dtype", Edit("dtype: bfloat16", "dtype: float16"),
                  "meta.dtype: must be bfloat16 or float32, got \"float16\""},
        BadImport{"BatchType", Edit("batch_size: 24", "batch_size: many"),
                  "data.batch_size: must be an integer, got \"many\""},
        BadImport{"BatchRange", Edit("batch_size: 24", "batch_size: -3"),
                  "data.batch_size: optim.batch_size: must be in [1, 4096], got -3"},
        BadImport{"Trainers", Edit("tasks_per_node: 8", "tasks_per_node: 128"),
                  "nodes: resources.trainers: must be in [1, 1024], got 2048"},
        BadImport{"Ema", Edit("  - 0.998\n  - 1.0\n", "  - 0.998\n"),
                  "optimization.ema: must be a list of 2 numbers [start, final], got [0.998]"},
        BadImport{"Crop", Edit("crop_size: 224", "crop_size: 100"),
                  "data.crop_size: model.crop: must be divisible by model.patch (16), got 100"}),
    [](const auto& info) { return info.param.label; });

}  // namespace
}  // namespace vjepa::spec
