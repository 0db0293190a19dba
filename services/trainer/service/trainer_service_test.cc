// The trainer service's pieces without processes: the job spec as a TrainerConfig, the newest
// checkpoint of a directory, the metric names.
#include <memory>
#include <string>

#include "common/metrics/metrics.h"
#include "common/spec/job_spec.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/service/trainer_config.h"
#include "services/trainer/service/trainer_metrics.h"
#include "services/trainer/service/training_run.h"

namespace vjepa::trainer {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

constexpr char kMinimal[] = "name: t\ndataset: {manifest: m.txt}\n";

TEST(TrainerConfigFromSpec, VitLargeDefaultsAreTheReferenceValues) {
  ASSERT_OK_AND_ASSIGN(spec::JobSpec s, spec::ParseJobSpec(kMinimal));
  ASSERT_OK_AND_ASSIGN(jepa::TrainerConfig c, TrainerConfigFromSpec(s));
  EXPECT_EQ(c.vit.embed_dim, 1024);
  EXPECT_EQ(c.vit.depth, 24);
  EXPECT_EQ(c.vit.heads, 16);
  EXPECT_EQ(c.vit.frames, 16);
  EXPECT_EQ(c.vit.crop, 224);
  EXPECT_EQ(c.predictor.width, 384);
  EXPECT_EQ(c.predictor.depth, 12);
  EXPECT_EQ(c.predictor.heads, 16);
  EXPECT_EQ(c.predictor.num_mask_tokens, 2);
  EXPECT_EQ(c.schedule.warmup_steps, 12000);
  EXPECT_EQ(c.schedule.length, 112500);
  EXPECT_DOUBLE_EQ(c.schedule.lr_peak, 6.25e-4);
  EXPECT_DOUBLE_EQ(c.schedule.wd_final, 0.4);
  EXPECT_DOUBLE_EQ(c.schedule.ema_start, 0.998);
  EXPECT_EQ(c.clip_start_update, 12301);
  EXPECT_DOUBLE_EQ(c.clip, 10.0);
  EXPECT_EQ(c.target, jepa::Target::kFeatures);
}

TEST(TrainerConfigFromSpec, FollowsTheSpec) {
  ASSERT_OK_AND_ASSIGN(
      spec::JobSpec s,
      spec::ParseJobSpec(std::string(kMinimal) +
                         "model: {preset: nano}\n"
                         "optim: {steps: 300, lr: {peak: 0.001}, clip: 0, betas: [0.8, 0.95]}\n"
                         "loss: {exponent: 2, target: pixels}\n"));
  ASSERT_OK_AND_ASSIGN(jepa::TrainerConfig c, TrainerConfigFromSpec(s));
  EXPECT_EQ(c.vit.embed_dim, 64);
  EXPECT_EQ(c.vit.num_tokens(), 8);
  EXPECT_EQ(c.predictor.width, 32);
  EXPECT_EQ(c.schedule.warmup_steps, 40);
  EXPECT_EQ(c.schedule.length, 375);
  EXPECT_DOUBLE_EQ(c.schedule.lr_peak, 0.001);
  EXPECT_DOUBLE_EQ(c.clip, 0.0);
  EXPECT_DOUBLE_EQ(c.beta1, 0.8);
  EXPECT_DOUBLE_EQ(c.beta2, 0.95);
  EXPECT_DOUBLE_EQ(c.loss_exponent, 2.0);
  EXPECT_EQ(c.target, jepa::Target::kPixels);
}

TEST(TrainerConfigFromSpec, RefusesWhatTheTrainerCannotRun) {
  ASSERT_OK_AND_ASSIGN(spec::JobSpec s, spec::ParseJobSpec(kMinimal));
  s.loss.reg_coeff = 0.1;
  EXPECT_THAT(TrainerConfigFromSpec(s).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("loss.reg_coeff")));
  s.loss.reg_coeff = 0;
  s.kind = spec::JobKind::kProbe;
  EXPECT_THAT(TrainerConfigFromSpec(s).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kind")));
}

TEST(NewestCheckpoint, PicksTheHighestStep) {
  testing::ScratchDir dir;
  EXPECT_THAT(NewestCheckpoint(dir.path()).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  for (const char* name : {"step-9.safetensors", "step-10.safetensors", "step-x.safetensors",
                           "step-99.safetensors.tmp", "other.safetensors"}) {
    dir.Write(name, "");
  }
  ASSERT_OK_AND_ASSIGN(std::string newest, NewestCheckpoint(dir.path()));
  EXPECT_EQ(newest, CheckpointPath(dir.path(), 10));
  EXPECT_EQ(CheckpointPath("/d", 7), "/d/step-7.safetensors");
  EXPECT_THAT(NewestCheckpoint(dir.File("missing")).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing")));
}

TEST(TrainerMetrics, RegistersTheDocumentedNames) {
  metrics::Registry registry;
  TrainerMetrics m(registry);
  m.loss.Set(0.5);
  m.steps.Increment();
  const std::string text = metrics::Render(registry);
  for (const char* name :
       {"vjepa_trainer_loss 0.5", "vjepa_trainer_step_seconds_bucket",
        "vjepa_trainer_clips_per_second", "vjepa_trainer_data_wait_seconds_total",
        "vjepa_trainer_grad_norm{model=\"encoder\"}",
        "vjepa_trainer_grad_norm{model=\"predictor\"}", "vjepa_trainer_lr",
        "vjepa_trainer_weight_decay", "vjepa_trainer_ema_momentum", "vjepa_trainer_steps_total 1",
        "vjepa_trainer_step "}) {
    EXPECT_THAT(text, HasSubstr(name));
  }
}

TEST(TrainerConfigFromSpec, PrecisionFollowsResources) {
  ASSERT_OK_AND_ASSIGN(spec::JobSpec cpu, spec::ParseJobSpec(kMinimal));
  ASSERT_OK_AND_ASSIGN(jepa::TrainerConfig c, TrainerConfigFromSpec(cpu));
  EXPECT_EQ(c.precision, jepa::Precision::kFloat32);
  ASSERT_OK_AND_ASSIGN(spec::JobSpec cuda,
                       spec::ParseJobSpec(std::string(kMinimal) + "resources: {device: cuda}\n"));
  ASSERT_OK_AND_ASSIGN(c, TrainerConfigFromSpec(cuda));
  EXPECT_EQ(c.precision, jepa::Precision::kBfloat16);  // the default on cuda
  ASSERT_OK_AND_ASSIGN(spec::JobSpec fp32,
                       spec::ParseJobSpec(std::string(kMinimal) +
                                          "resources: {device: cuda, precision: float32}\n"));
  ASSERT_OK_AND_ASSIGN(c, TrainerConfigFromSpec(fp32));
  EXPECT_EQ(c.precision, jepa::Precision::kFloat32);
}

// A cuda job needs a GPU trainer: one on the CPU says so before it builds anything.
TEST(TrainingRun, ACudaJobOnACpuTrainerFailsWithTheReason) {
  TrainingRunOptions o;
  o.spec_text = std::string(kMinimal) + "model: {preset: nano}\nresources: {device: cuda}\n";
  ASSERT_OK_AND_ASSIGN(o.spec, spec::ParseJobSpec(o.spec_text));
  o.dataworkers = {"127.0.0.1:1"};
  o.device = "cpu";
  TrainingRun run(o, std::make_shared<metrics::Registry>());
  EXPECT_THAT(run.Run().status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("resources.device is cuda; this trainer's device is cpu")));
}

}  // namespace
}  // namespace vjepa::trainer
