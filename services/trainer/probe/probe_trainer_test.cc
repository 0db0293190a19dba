#include "services/trainer/probe/probe_trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "services/trainer/probe/probe_testing.h"

namespace vjepa::probe {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class ProbeTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(1); }
};

ProbeClassifier MakeProbe(ProbePooling pooling, int64_t dim, int64_t heads, int64_t classes,
                          uint64_t seed = 0) {
  return MustMakeProbe(TestProbeOptions(pooling, dim, heads, classes, seed));
}

std::unique_ptr<ProbeTrainer> MakeTrainer(ProbeClassifier probe, const ProbeTrainConfig& config) {
  core::StatusOr<std::unique_ptr<ProbeTrainer>> trainer = ProbeTrainer::Create(probe, config);
  EXPECT_TRUE(trainer.ok()) << trainer.status();
  return trainer.ok() ? std::move(*trainer) : nullptr;
}

ProbeTrainConfig Config(int64_t total_steps, uint64_t seed = 0) {
  ProbeTrainConfig c;
  c.total_steps = total_steps;
  c.seed = seed;
  return c;
}

// Class k: feature k of every token is shifted by `shift`; everything else is unit Gaussian noise.
struct Dataset {
  torch::Tensor features;  // [S, N, D]
  torch::Tensor labels;    // [S]
};

Dataset Separable(int64_t samples, int64_t tokens, int64_t dim, int64_t classes, uint64_t seed,
                  double shift = 3.0) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Dataset d;
  d.labels = torch::randint(classes, {samples}, gen, torch::kLong);
  d.features = torch::randn({samples, tokens, dim}, gen);
  torch::Tensor signal = torch::nn::functional::one_hot(d.labels, dim).to(torch::kFloat) * shift;
  d.features += signal.unsqueeze(1);
  return d;
}

double GradNorm(const torch::nn::Module& m) {
  double sq = 0.0;
  for (const auto& p : m.parameters()) {
    if (p.grad().defined()) sq += p.grad().pow(2).sum().item<double>();
  }
  return std::sqrt(sq);
}

// ---- schedules ----

TEST_F(ProbeTrainerTest, DefaultConfigMatchesTheVideoEval) {
  ProbeTrainConfig c;
  EXPECT_EQ(c.warmup_steps, 0);
  EXPECT_DOUBLE_EQ(c.start_lr, 1e-3);
  EXPECT_DOUBLE_EQ(c.lr, 1e-3);
  EXPECT_DOUBLE_EQ(c.final_lr, 0.0);
  EXPECT_DOUBLE_EQ(c.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(c.final_weight_decay, 1e-6);
  EXPECT_DOUBLE_EQ(c.grad_clip, 1.0);
  EXPECT_DOUBLE_EQ(c.beta1, 0.9);
  EXPECT_DOUBLE_EQ(c.beta2, 0.999);
  EXPECT_DOUBLE_EQ(c.eps, 1e-8);
}

TEST_F(ProbeTrainerTest, ProbeScheduleValuesAtGivenSteps) {
  const ProbeTrainConfig c = Config(100);
  struct Case {
    int64_t step;
    double lr, wd;
  };
  for (const Case& k : std::vector<Case>{
           {1, 9.997532801829e-04, 9.997533048548e-03},
           {25, 8.535533905933e-04, 8.535680352542e-03},
           {50, 5.0e-04, 5.0005e-03},
           {75, 1.464466094067e-04, 1.465319647458e-03},
           {99, 2.467198171342e-07, 3.466951451525e-06},
           {100, 0.0, 1e-6},
       }) {
    EXPECT_NEAR(ProbeLrAt(c, k.step), k.lr, 1e-15) << "step " << k.step;
    EXPECT_NEAR(ProbeWeightDecayAt(c, k.step), k.wd, 1e-14) << "step " << k.step;
  }
}

// The same scheduler classes drive pretraining; spec §9 gives the reference's values there.
TEST_F(ProbeTrainerTest, ScheduleFormulasReproduceTheSpecPretrainValues) {
  ProbeTrainConfig c;
  c.total_steps = 112500;
  c.warmup_steps = 12000;
  c.start_lr = 2e-4;
  c.lr = 6.25e-4;
  c.final_lr = 1e-6;
  c.weight_decay = 0.04;
  c.final_weight_decay = 0.4;  // increasing: clamped from above
  struct Case {
    int64_t step;
    double lr, wd;
  };
  for (const Case& k : std::vector<Case>{{1, 2.000354e-4, 0.0400000},
                                         {12000, 6.250000e-4, 0.050012},
                                         {90000, 7.504222e-5, 0.365623},
                                         {112500, 1e-6, 0.4}}) {
    EXPECT_NEAR(ProbeLrAt(c, k.step), k.lr, 5e-11) << "step " << k.step;
    EXPECT_NEAR(ProbeWeightDecayAt(c, k.step), k.wd, 5e-7) << "step " << k.step;
  }
}

TEST_F(ProbeTrainerTest, StepsPerEpochKeepsThePartialBatch) {
  EXPECT_EQ(ProbeStepsPerEpoch(300, 32), 10);
  EXPECT_EQ(ProbeStepsPerEpoch(320, 32), 10);
  EXPECT_EQ(ProbeStepsPerEpoch(321, 32), 11);
  EXPECT_EQ(ProbeStepsPerEpoch(0, 32), 0);
}

TEST_F(ProbeTrainerTest, ConfigValidation) {
  struct Case {
    const char* what;
    void (*edit)(ProbeTrainConfig&);
  };
  for (const Case& k : std::vector<Case>{
           {"total_steps 0", [](ProbeTrainConfig& c) { c.total_steps = 0; }},
           {"warmup > total", [](ProbeTrainConfig& c) { c.warmup_steps = 11; }},
           {"negative warmup", [](ProbeTrainConfig& c) { c.warmup_steps = -1; }},
           {"lr 0", [](ProbeTrainConfig& c) { c.lr = 0.0; }},
           {"final_lr > lr", [](ProbeTrainConfig& c) { c.final_lr = 1.0; }},
           {"negative wd", [](ProbeTrainConfig& c) { c.weight_decay = -0.1; }},
           {"clip 0", [](ProbeTrainConfig& c) { c.grad_clip = 0.0; }},
           {"beta2 1", [](ProbeTrainConfig& c) { c.beta2 = 1.0; }},
       }) {
    ProbeTrainConfig c = Config(10);
    EXPECT_TRUE(ValidateProbeTrainConfig(c).ok());
    k.edit(c);
    core::Status s = ValidateProbeTrainConfig(c);
    EXPECT_EQ(s.code(), core::Code::kInvalidArgument) << k.what;
    core::StatusOr<std::unique_ptr<ProbeTrainer>> t =
        ProbeTrainer::Create(MakeProbe(ProbePooling::kAverage, 4, 0, 2), c);
    EXPECT_FALSE(t.ok()) << k.what;
  }
}

// ---- optimiser ----

TEST_F(ProbeTrainerTest, ParamGroupsPutWeightsAndQueryInTheDecayGroup) {
  ProbeClassifier probe = MakeProbe(ProbePooling::kAttentive, 192, 3, 5);
  ProbeParamGroups g = SplitProbeParams(*probe);
  const std::string b = "pooler.cross_attention_block.";
  EXPECT_THAT(g.decay_names,
              ElementsAre("pooler.query_tokens", b + "xattn.q.weight", b + "xattn.kv.weight",
                          b + "xattn.proj.weight", b + "mlp.fc1.weight", b + "mlp.fc2.weight",
                          "linear.weight"));
  EXPECT_THAT(g.no_decay_names,
              ElementsAre(b + "norm1.weight", b + "norm1.bias", b + "xattn.q.bias",
                          b + "xattn.kv.bias", b + "xattn.proj.bias", b + "norm2.weight",
                          b + "norm2.bias", b + "mlp.fc1.bias", b + "mlp.fc2.bias", "linear.bias"));

  std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, Config(10));
  ASSERT_NE(trainer, nullptr);
  auto& groups = trainer->optimizer().param_groups();
  ASSERT_EQ(groups.size(), 2u);
  ASSERT_EQ(groups[0].params().size(), 7u);
  ASSERT_EQ(groups[1].params().size(), 10u);
  for (size_t i = 0; i < g.decay.size(); ++i) {
    EXPECT_TRUE(groups[0].params()[i].is_same(g.decay[i])) << g.decay_names[i];
  }
  for (size_t i = 0; i < g.no_decay.size(); ++i) {
    EXPECT_TRUE(groups[1].params()[i].is_same(g.no_decay[i])) << g.no_decay_names[i];
  }

  ProbeParamGroups avg = SplitProbeParams(*MakeProbe(ProbePooling::kAverage, 192, 0, 5));
  EXPECT_THAT(avg.decay_names, ElementsAre("linear.weight"));
  EXPECT_THAT(avg.no_decay_names, ElementsAre("linear.bias"));
}

TEST_F(ProbeTrainerTest, OptimiserGroupsFollowTheScheduleEachUpdate) {
  std::unique_ptr<ProbeTrainer> trainer =
      MakeTrainer(MakeProbe(ProbePooling::kAttentive, 16, 2, 3), Config(4));
  ASSERT_NE(trainer, nullptr);
  Dataset d = Separable(8, 4, 16, 3, 1);
  for (int64_t step = 1; step <= 4; ++step) {
    core::StatusOr<ProbeStepStats> stats = trainer->TrainStep(d.features, d.labels);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_EQ(stats->step, step);
    EXPECT_EQ(trainer->steps_done(), step);
    EXPECT_DOUBLE_EQ(stats->lr, ProbeLrAt(trainer->config(), step));
    EXPECT_DOUBLE_EQ(stats->weight_decay, ProbeWeightDecayAt(trainer->config(), step));
    auto& groups = trainer->optimizer().param_groups();
    const auto& decay = static_cast<const torch::optim::AdamWOptions&>(groups[0].options());
    const auto& none = static_cast<const torch::optim::AdamWOptions&>(groups[1].options());
    EXPECT_DOUBLE_EQ(decay.lr(), stats->lr);
    EXPECT_DOUBLE_EQ(none.lr(), stats->lr);
    EXPECT_DOUBLE_EQ(decay.weight_decay(), stats->weight_decay);
    EXPECT_DOUBLE_EQ(none.weight_decay(), 0.0);
    EXPECT_EQ(std::get<0>(decay.betas()), 0.9);
    EXPECT_EQ(std::get<1>(decay.betas()), 0.999);
    EXPECT_DOUBLE_EQ(decay.eps(), 1e-8);
  }
  EXPECT_DOUBLE_EQ(ProbeLrAt(trainer->config(), 4), 0.0);
  core::StatusOr<ProbeStepStats> past = trainer->TrainStep(d.features, d.labels);
  EXPECT_EQ(past.status().code(), core::Code::kFailedPrecondition);
  EXPECT_EQ(trainer->steps_done(), 4);
}

TEST_F(ProbeTrainerTest, ClipsTheGradientNormAtEveryUpdate) {
  ProbeClassifier probe = MakeProbe(ProbePooling::kAttentive, 16, 2, 3);
  ProbeTrainConfig c = Config(3);
  c.grad_clip = 1e-3;
  std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, c);
  ASSERT_NE(trainer, nullptr);
  Dataset d = Separable(8, 4, 16, 3, 2);
  for (int step = 0; step < 3; ++step) {
    core::StatusOr<ProbeStepStats> stats = trainer->TrainStep(d.features, d.labels);
    ASSERT_TRUE(stats.ok()) << stats.status();
    EXPECT_GT(stats->grad_norm, 1e-2) << "the raw norm must exceed the clip for this test";
    EXPECT_NEAR(GradNorm(*probe), 1e-3, 1e-6) << "update " << step + 1;
  }
}

TEST_F(ProbeTrainerTest, DefaultClipBoundsTheNormByOne) {
  ProbeClassifier probe = MakeProbe(ProbePooling::kAverage, 16, 0, 3);
  std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, Config(1));
  ASSERT_NE(trainer, nullptr);
  Dataset d = Separable(8, 4, 16, 3, 2, /*shift=*/300.0);
  core::StatusOr<ProbeStepStats> stats = trainer->TrainStep(d.features, d.labels);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->grad_norm, 1.0);
  EXPECT_NEAR(GradNorm(*probe), 1.0, 1e-5);
}

TEST_F(ProbeTrainerTest, XattnProjIsNeverUpdated) {
  ProbeClassifier probe = MakeProbe(ProbePooling::kAttentive, 16, 2, 3);
  auto* attentive = dynamic_cast<AttentiveClassifierImpl*>(probe.get());
  ASSERT_NE(attentive, nullptr);
  const torch::Tensor proj_before =
      attentive->pooler->cross_attention_block->xattn->proj->weight.clone();
  const torch::Tensor q_before = attentive->pooler->cross_attention_block->xattn->q->weight.clone();
  std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, Config(3));
  ASSERT_NE(trainer, nullptr);
  Dataset d = Separable(8, 4, 16, 3, 3);
  for (int step = 0; step < 3; ++step) ASSERT_TRUE(trainer->TrainStep(d.features, d.labels).ok());
  EXPECT_FALSE(attentive->pooler->cross_attention_block->xattn->proj->weight.grad().defined());
  EXPECT_TRUE(
      torch::equal(attentive->pooler->cross_attention_block->xattn->proj->weight, proj_before));
  EXPECT_FALSE(torch::equal(attentive->pooler->cross_attention_block->xattn->q->weight, q_before));
}

TEST_F(ProbeTrainerTest, MultiViewLossIsTheMeanOfTheViewLosses) {
  ProbeClassifier probe = MakeProbe(ProbePooling::kAttentive, 16, 2, 3, /*seed=*/4);
  Dataset a = Separable(6, 4, 16, 3, 5);
  Dataset b = Separable(6, 7, 16, 3, 6);  // other token count, labels of `a` used
  double expected;
  {
    torch::NoGradGuard no_grad;
    expected = 0.5 * (torch::nn::functional::cross_entropy(probe->forward(a.features), a.labels) +
                      torch::nn::functional::cross_entropy(probe->forward(b.features), a.labels))
                         .item<double>();
  }
  std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, Config(1));
  ASSERT_NE(trainer, nullptr);
  core::StatusOr<ProbeStepStats> stats = trainer->TrainStep({a.features, b.features}, a.labels);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_NEAR(stats->loss, expected, 1e-6);
  EXPECT_EQ(stats->count, 6);
}

TEST_F(ProbeTrainerTest, RejectsMalformedInputs) {
  std::unique_ptr<ProbeTrainer> trainer =
      MakeTrainer(MakeProbe(ProbePooling::kAttentive, 16, 2, 3), Config(5));
  ASSERT_NE(trainer, nullptr);
  const torch::Tensor ok_features = torch::randn({4, 5, 16});
  const torch::Tensor ok_labels = torch::tensor({0, 1, 2, 0}, torch::kLong);
  struct Case {
    const char* what;
    std::vector<torch::Tensor> views;
    torch::Tensor labels;
    const char* message;
  };
  for (const Case& k : std::vector<Case>{
           {"wrong width", {torch::randn({4, 5, 12})}, ok_labels, "must be [4, N > 0, 16]"},
           {"2-D tokens", {torch::randn({4, 16})}, ok_labels, "must be"},
           {"no tokens", {torch::randn({4, 0, 16})}, ok_labels, "N > 0"},
           {"views differ in batch", {ok_features, torch::randn({3, 5, 16})}, ok_labels, "view 1"},
           {"label count", {ok_features}, torch::tensor({0, 1, 2}, torch::kLong), "labels must be"},
           {"label range", {ok_features}, torch::tensor({0, 1, 3, 0}, torch::kLong), "label 3"},
           {"negative label", {ok_features}, torch::tensor({0, -1, 2, 0}, torch::kLong), "-1"},
           {"float labels", {ok_features}, torch::tensor({0.f, 1.f, 2.f, 0.f}), "integer"},
           {"integer tokens", {torch::ones({4, 5, 16}, torch::kLong)}, ok_labels, "floating"},
           {"no views", {}, ok_labels, "empty batch"},
       }) {
    core::StatusOr<ProbeStepStats> stats = trainer->TrainStep(k.views, k.labels);
    EXPECT_EQ(stats.status().code(), core::Code::kInvalidArgument) << k.what;
    EXPECT_THAT(stats.status().message(), HasSubstr(k.message)) << k.what;
  }
  EXPECT_EQ(trainer->steps_done(), 0);
  EXPECT_TRUE(trainer->TrainStep(ok_features, ok_labels).ok());

  // Fit refuses to run past the schedule before doing anything.
  core::StatusOr<ProbeFitSummary> fit =
      trainer->Fit(torch::randn({40, 5, 16}), torch::zeros({40}, torch::kLong), 8, 1);
  EXPECT_EQ(fit.status().code(), core::Code::kFailedPrecondition);
  EXPECT_EQ(trainer->steps_done(), 1);
}

// ---- view averaging and accuracy ----

TEST_F(ProbeTrainerTest, AveragesSoftmaxOverViews) {
  const double ln3 = std::log(3.0);
  core::StatusOr<torch::Tensor> probs = AverageViewProbabilities(
      {torch::tensor({{0.0, ln3}, {0.0, 0.0}}), torch::tensor({{0.0, 0.0}, {ln3, 0.0}})});
  ASSERT_TRUE(probs.ok()) << probs.status();
  // view 1: [0.25, 0.75], [0.5, 0.5]; view 2: [0.5, 0.5], [0.75, 0.25]
  EXPECT_TRUE(
      torch::allclose(*probs, torch::tensor({{0.375, 0.625}, {0.625, 0.375}}).to(torch::kFloat)));

  EXPECT_FALSE(AverageViewProbabilities({}).ok());
  EXPECT_FALSE(AverageViewProbabilities({torch::zeros({2, 3}), torch::zeros({2, 4})}).ok());
  EXPECT_FALSE(AverageViewProbabilities({torch::zeros({2, 3, 1})}).ok());
}

TEST_F(ProbeTrainerTest, TopOneUsesAveragedSoftmaxNotAveragedLogits) {
  // One confident view for class 1, two moderately confident for class 0: the mean softmax picks
  // class 0 (0.635), the mean logit ([2, 3.33]) would pick class 1.
  const std::vector<torch::Tensor> views = {
      torch::tensor({{0.f, 10.f}}), torch::tensor({{3.f, 0.f}}), torch::tensor({{3.f, 0.f}})};
  core::StatusOr<torch::Tensor> probs = AverageViewProbabilities(views);
  ASSERT_TRUE(probs.ok());
  const torch::Tensor label0 = torch::tensor({0}, torch::kLong);
  core::StatusOr<double> acc = Top1Accuracy(*probs, label0);
  ASSERT_TRUE(acc.ok()) << acc.status();
  EXPECT_DOUBLE_EQ(*acc, 1.0);
  core::StatusOr<double> logit_acc = Top1Accuracy((views[0] + views[1] + views[2]) / 3.0, label0);
  ASSERT_TRUE(logit_acc.ok());
  EXPECT_DOUBLE_EQ(*logit_acc, 0.0);

  core::StatusOr<double> half = Top1Accuracy(torch::tensor({{0.1f, 0.9f}, {0.2f, 0.8f}}),
                                             torch::tensor({1, 0}, torch::kLong));
  ASSERT_TRUE(half.ok());
  EXPECT_DOUBLE_EQ(*half, 0.5);
  EXPECT_FALSE(Top1Accuracy(torch::zeros({2, 2}), torch::tensor({0}, torch::kLong)).ok());
  EXPECT_FALSE(Top1Accuracy(torch::zeros({2, 2}), torch::tensor({0, 2}, torch::kLong)).ok());
}

TEST_F(ProbeTrainerTest, PredictAveragesTheViewsOfTheProbe) {
  ProbeClassifier probe = MakeProbe(ProbePooling::kAttentive, 16, 2, 3, /*seed=*/8);
  std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, Config(1));
  ASSERT_NE(trainer, nullptr);
  Dataset a = Separable(5, 4, 16, 3, 9), b = Separable(5, 6, 16, 3, 10);
  core::StatusOr<torch::Tensor> probs = trainer->Predict({a.features, b.features});
  ASSERT_TRUE(probs.ok()) << probs.status();
  torch::NoGradGuard no_grad;
  torch::Tensor expected = (torch::softmax(probe->forward(a.features), 1) +
                            torch::softmax(probe->forward(b.features), 1)) /
                           2.0;
  EXPECT_TRUE(torch::allclose(*probs, expected, 1e-6, 1e-7));
  EXPECT_FALSE(probs->requires_grad());
}

// ---- frozen encoder ----

TEST_F(ProbeTrainerTest, FeatureExtractorRunsWithoutGradient) {
  torch::manual_seed(12);
  torch::nn::Linear encoder(10, 16);  // stands in for the frozen encoder; requires_grad stays on
  int calls = 0;
  bool grad_enabled_inside = true;
  FeatureExtractor extract = [&](const torch::Tensor& clips) {
    ++calls;
    grad_enabled_inside = torch::GradMode::is_enabled();
    return encoder(clips);  // [B, N, 10] → [B, N, 16]
  };
  ProbeClassifier probe = MakeProbe(ProbePooling::kAttentive, 16, 2, 3);
  std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, Config(2));
  ASSERT_NE(trainer, nullptr);
  const torch::Tensor clips = torch::randn({4, 6, 10});
  const torch::Tensor labels = torch::tensor({0, 1, 2, 1}, torch::kLong);
  const torch::Tensor encoder_before = encoder->weight.clone();
  core::StatusOr<ProbeStepStats> stats = trainer->TrainStepOnInputs(extract, {clips}, labels);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(grad_enabled_inside);
  EXPECT_FALSE(encoder->weight.grad().defined());
  EXPECT_TRUE(torch::equal(encoder->weight, encoder_before));
  EXPECT_GT(GradNorm(*probe), 0.0);

  core::StatusOr<torch::Tensor> probs = trainer->PredictOnInputs(extract, {clips, clips * 0.5});
  ASSERT_TRUE(probs.ok()) << probs.status();
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(probs->sizes(), (std::vector<int64_t>{4, 3}));

  FeatureExtractor wrong_width = [](const torch::Tensor& clips) {
    return torch::zeros({clips.size(0), 3, 8});
  };
  EXPECT_EQ(trainer->TrainStepOnInputs(wrong_width, {clips}, labels).status().code(),
            core::Code::kInvalidArgument);
  FeatureExtractor failing = [](const torch::Tensor&) -> torch::Tensor {
    throw std::runtime_error("decoder broke");
  };
  core::StatusOr<ProbeStepStats> failed = trainer->TrainStepOnInputs(failing, {clips}, labels);
  EXPECT_EQ(failed.status().code(), core::Code::kInternal);
  EXPECT_THAT(failed.status().message(), HasSubstr("decoder broke"));
  EXPECT_EQ(trainer->steps_done(), 1);
}

// ---- end to end ----

TEST_F(ProbeTrainerTest, FitIsDeterministicGivenTheSeeds) {
  Dataset d = Separable(40, 4, 16, 3, 13);
  auto run = [&](uint64_t shuffle_seed) {
    ProbeClassifier probe = MakeProbe(ProbePooling::kAttentive, 16, 2, 3, /*seed=*/1);
    std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, Config(10, shuffle_seed));
    core::StatusOr<ProbeFitSummary> fit = trainer->Fit(d.features, d.labels, 16, 2);
    EXPECT_TRUE(fit.ok()) << fit.status();
    EXPECT_EQ(fit->steps, 6);
    return probe;
  };
  ProbeClassifier a = run(7), b = run(7), c = run(8);
  const auto pa = a->parameters(), pb = b->parameters(), pc = c->parameters();
  bool any_differs = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
    any_differs = any_differs || !torch::equal(pa[i], pc[i]);
  }
  EXPECT_TRUE(any_differs) << "another shuffle seed must give another sample order";
}

struct LearnCase {
  ProbePooling pooling;
  int64_t heads;
};

class ProbeLearnsTest : public ProbeTrainerTest, public ::testing::WithParamInterface<LearnCase> {};

// A short schedule (80 updates) on a few hundred samples. lr 1e-2 instead of the default 1e-3:
// with Adam's per-weight steps, 80 updates at 1e-3 move the 192-wide linear layer of the average
// probe too little; everything else is the default config (WD cosine, clip 1.0).
TEST_P(ProbeLearnsTest, ReachesNinetyPercentOnASeparableSet) {
  const int64_t dim = 192, tokens = 8, classes = 5, samples = 640, batch = 32, epochs = 4;
  Dataset train = Separable(samples, tokens, dim, classes, /*seed=*/100);
  Dataset test = Separable(200, tokens, dim, classes, /*seed=*/200);
  ProbeClassifier probe = MakeProbe(GetParam().pooling, dim, GetParam().heads, classes, 3);
  ProbeTrainConfig config = Config(epochs * ProbeStepsPerEpoch(samples, batch), /*seed=*/4);
  config.start_lr = config.lr = 1e-2;
  std::unique_ptr<ProbeTrainer> trainer = MakeTrainer(probe, config);
  ASSERT_NE(trainer, nullptr);

  core::StatusOr<double> before = trainer->Evaluate({test.features}, test.labels, 64);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_LT(*before, 0.6) << "the untrained probe must not already solve the task";

  core::StatusOr<ProbeFitSummary> fit = trainer->Fit(train.features, train.labels, batch, epochs);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->steps, 80);
  EXPECT_EQ(trainer->steps_done(), trainer->config().total_steps);

  core::StatusOr<double> after = trainer->Evaluate({test.features}, test.labels, 64);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GT(*after, 0.9) << ProbePoolingName(GetParam().pooling) << ": before " << *before
                         << ", train " << fit->train_top1 << ", loss " << fit->last_loss;
}

INSTANTIATE_TEST_SUITE_P(Pooling, ProbeLearnsTest,
                         ::testing::Values(LearnCase{ProbePooling::kAttentive, 3},
                                           LearnCase{ProbePooling::kAverage, 0}),
                         [](const ::testing::TestParamInfo<LearnCase>& info) {
                           return std::string(ProbePoolingName(info.param.pooling));
                         });

}  // namespace
}  // namespace vjepa::probe
