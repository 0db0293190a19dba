#include "services/trainer/vjepa/trainer.h"

#include <torch/torch.h>

#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/vjepa/device.h"

namespace vjepa::jepa {
namespace {

using ::testing::HasSubstr;

// nano: 4 frames of 32 x 32, tubelet 2, patch 16 → 2 x 2 x 2 = 8 tokens of 1536 values.
TrainerConfig NanoConfig() {
  TrainerConfig c;
  c.vit = *model::VitPreset("nano");
  c.predictor.width = 32;
  c.predictor.depth = 2;
  c.predictor.heads = 4;
  c.schedule.warmup_steps = 5;
  c.schedule.length = 250;
  c.schedule.lr_start = 1e-4;
  c.schedule.lr_peak = 1e-3;
  c.clip_start_update = 3;
  return c;
}

// Clips of a bright square moving over a dark background, one direction per sample, patchified
// to tokens in (t, h, w) order with values in (dt, dy, dx, c) order.
torch::Tensor SyntheticTokens(const model::VitConfig& v, int64_t batch, int64_t seed) {
  torch::Tensor clip = torch::zeros({batch, 3, v.frames, v.crop, v.crop}, torch::kUInt8);
  for (int64_t b = 0; b < batch; ++b) {
    const int64_t dx = (b + seed) % 3 - 1, dy = (b * 7 + seed) % 3 - 1;
    for (int64_t t = 0; t < v.frames; ++t) {
      const int64_t x0 = 8 + dx * 3 * t, y0 = 8 + dy * 3 * t;
      clip.index({b, torch::indexing::Slice(), t, torch::indexing::Slice(y0, y0 + 12),
                  torch::indexing::Slice(x0, x0 + 12)})
          .fill_(static_cast<uint8_t>(120 + 40 * ((b + seed) % 3)));
    }
  }
  const int64_t gt = v.grid_t(), gh = v.grid_h(), p = v.patch, tub = v.tubelet;
  return clip.reshape({batch, 3, gt, tub, gh, p, gh, p})
      .permute({0, 2, 4, 6, 3, 5, 7, 1})
      .reshape({batch, v.num_tokens(), v.token_values()})
      .contiguous();
}

// Two mask configs over the 8 tokens: context = the first tokens of a per-sample rotation.
Batch MakeBatch(const model::VitConfig& v, int64_t batch, int64_t seed) {
  Batch out;
  out.tokens = SyntheticTokens(v, batch, seed);
  for (int64_t k : {3, 5}) {  // context length per config
    torch::Tensor ctx = torch::empty({batch, k}, torch::kInt64);
    torch::Tensor tgt = torch::empty({batch, v.num_tokens() - k}, torch::kInt64);
    for (int64_t b = 0; b < batch; ++b) {
      std::vector<int64_t> order(v.num_tokens());
      std::iota(order.begin(), order.end(), 0);
      std::rotate(order.begin(), order.begin() + (b + seed + k) % v.num_tokens(), order.end());
      std::sort(order.begin(), order.begin() + k);
      std::sort(order.begin() + k, order.end());
      for (int64_t i = 0; i < k; ++i) ctx[b][i] = order[i];
      for (int64_t i = k; i < v.num_tokens(); ++i) tgt[b][i - k] = order[i];
    }
    out.masks.push_back({ctx, tgt});
  }
  return out;
}

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    torch::manual_seed(11);
  }
  std::unique_ptr<Trainer> Make(const TrainerConfig& c = NanoConfig()) {
    torch::manual_seed(11);
    auto t = Trainer::Create(c);
    EXPECT_TRUE(t.ok()) << t.status();
    return std::move(t).value();
  }
};

TEST_F(TrainerTest, TheTargetEncoderIsAnExactEmaOfTheEncoder) {
  auto t = Make();
  // Starts as a copy.
  auto enc = t->encoder()->named_parameters();
  for (const auto& item : t->target_encoder()->named_parameters()) {
    EXPECT_TRUE(torch::equal(item.value(), enc[item.key()])) << item.key();
    EXPECT_FALSE(item.value().requires_grad());
  }
  std::map<std::string, torch::Tensor> before;
  for (const auto& item : t->target_encoder()->named_parameters()) {
    before[item.key()] = item.value().clone();
  }
  auto stats = t->Step(MakeBatch(t->config().vit, 4, 0));
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_DOUBLE_EQ(stats->momentum, 0.998);
  const double m = stats->momentum;
  for (const auto& item : t->target_encoder()->named_parameters()) {
    torch::Tensor expected = before[item.key()].mul(m).add(enc[item.key()], 1.0 - m);
    EXPECT_TRUE(torch::equal(item.value(), expected)) << item.key();
  }
}

TEST_F(TrainerTest, TargetFeatureStdIsTheChannelStdOfTheTargetTokens) {
  auto t = Make();
  const Batch b = MakeBatch(t->config().vit, 4, 0);
  // Before the step (the step moves the target encoder): its output at every mask config's
  // target tokens, no layer norm; std per channel over those tokens, mean over channels.
  torch::Tensor expected;
  {
    torch::NoGradGuard no_grad;
    const torch::Tensor features = t->target_encoder()->forward(b.tokens);
    std::vector<torch::Tensor> picked;
    for (const MaskIndices& m : b.masks) {
      picked.push_back(model::GatherTokens(features, m.target).reshape({-1, features.size(-1)}));
    }
    expected = torch::cat(picked, 0).std(0, /*unbiased=*/false).mean();
  }
  auto stats = t->Step(b);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->target_feature_std, 0.0);
  EXPECT_NEAR(stats->target_feature_std, expected.item<double>(), 1e-5);
}

TEST_F(TrainerTest, OverfitsOneBatch) {
  auto t = Make();
  Batch b = MakeBatch(t->config().vit, 4, 1);
  double first = 0, last = 0;
  for (int i = 0; i < 60; ++i) {
    auto s = t->Step(b);
    ASSERT_TRUE(s.ok()) << s.status();
    if (i == 0) first = s->loss;
    last = s->loss;
  }
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST_F(TrainerTest, LossDecreasesOnASyntheticVideoTask) {
  auto t = Make();
  std::vector<double> losses;
  for (int i = 0; i < 60; ++i) {
    auto s = t->Step(MakeBatch(t->config().vit, 4, i));
    ASSERT_TRUE(s.ok()) << s.status();
    losses.push_back(s->loss);
  }
  const double early = std::accumulate(losses.begin(), losses.begin() + 10, 0.0) / 10;
  const double late = std::accumulate(losses.end() - 10, losses.end(), 0.0) / 10;
  EXPECT_LT(late, 0.7 * early) << "early " << early << " late " << late;
}

TEST_F(TrainerTest, ResumingFromStateGivesTheSameLossTrajectory) {
  const TrainerConfig c = NanoConfig();
  std::vector<double> straight;
  {
    auto t = Make(c);
    for (int i = 0; i < 6; ++i) straight.push_back(t->Step(MakeBatch(c.vit, 4, i))->loss);
  }
  std::vector<double> resumed;
  NamedTensors state;
  {
    auto t = Make(c);
    for (int i = 0; i < 3; ++i) resumed.push_back(t->Step(MakeBatch(c.vit, 4, i))->loss);
    for (const auto& [name, tensor] : t->State()) state.emplace_back(name, tensor.clone());
  }
  torch::manual_seed(999);  // a different init, overwritten by the state
  auto t = Trainer::Create(c);
  ASSERT_TRUE(t.ok());
  ASSERT_TRUE((*t)->LoadState(state, 3).ok());
  EXPECT_EQ((*t)->updates(), 3);
  for (int i = 3; i < 6; ++i) resumed.push_back((*t)->Step(MakeBatch(c.vit, 4, i))->loss);
  EXPECT_EQ(resumed, straight);
}

TEST_F(TrainerTest, ClipsOnlyFromTheConfiguredUpdate) {
  auto t = Make();
  Batch b = MakeBatch(t->config().vit, 2, 0);
  auto s1 = t->Step(b);
  auto s2 = t->Step(b);
  auto s3 = t->Step(b);
  EXPECT_EQ(s1->encoder_grad_norm, 0);
  EXPECT_EQ(s2->predictor_grad_norm, 0);
  EXPECT_GT(s3->encoder_grad_norm, 0);
  EXPECT_GT(s3->predictor_grad_norm, 0);
}

TEST_F(TrainerTest, PixelTargetsTrain) {
  TrainerConfig c = NanoConfig();
  c.target = Target::kPixels;
  auto t = Make(c);
  Batch b = MakeBatch(c.vit, 2, 0);
  auto first = t->Step(b);
  ASSERT_TRUE(first.ok()) << first.status();
  double last = first->loss;
  for (int i = 0; i < 30; ++i) last = t->Step(b)->loss;
  EXPECT_LT(last, first->loss);
}

TEST_F(TrainerTest, RefusesMalformedBatchesWithAClearError) {
  auto t = Make();
  Batch b = MakeBatch(t->config().vit, 2, 0);
  Batch wrong_shape = b;
  wrong_shape.tokens = b.tokens.narrow(1, 0, 4);
  EXPECT_THAT(t->Step(wrong_shape).status().message(),
              HasSubstr("batch tokens: expected uint8 [B, 8, 1536]"));
  Batch one_mask = b;
  one_mask.masks.pop_back();
  EXPECT_THAT(t->Step(one_mask).status().message(), HasSubstr("expected 2 mask configs, got 1"));
  Batch out_of_range = b;
  out_of_range.masks[0].target = out_of_range.masks[0].target + 8;
  EXPECT_THAT(t->Step(out_of_range).status().message(),
              HasSubstr("batch mask 0 target: token index out of [0, 8)"));
  EXPECT_EQ(t->updates(), 0);
}

TEST_F(TrainerTest, TheGradientHookRunsBeforeTheUpdateAndCanStopIt) {
  auto t = Make();
  Batch b = MakeBatch(t->config().vit, 2, 0);
  const NamedTensors before = t->State();
  size_t seen = 0;
  t->SetGradientHook([&](const std::vector<torch::Tensor>& params) {
    seen = params.size();
    for (const torch::Tensor& p : params) {
      if (!p.grad().defined()) return core::InternalError("a parameter without a gradient");
    }
    return core::UnavailableError("peer lost");
  });
  auto failed = t->Step(b);
  EXPECT_EQ(failed.status().code(), core::Code::kUnavailable);
  EXPECT_EQ(failed.status().message(), "peer lost");
  EXPECT_EQ(seen, t->ParamGroups()[0].names.size() + t->ParamGroups()[1].names.size() +
                      t->ParamGroups()[2].names.size() + t->ParamGroups()[3].names.size());
  EXPECT_EQ(t->updates(), 0);
  const NamedTensors after = t->State();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < before.size(); ++i) {
    EXPECT_TRUE(torch::equal(after[i].second, before[i].second)) << before[i].first;
  }
  // A hook that returns OK lets the step through.
  t->SetGradientHook([](const std::vector<torch::Tensor>&) { return core::OkStatus(); });
  ASSERT_TRUE(t->Step(b).ok());
  EXPECT_EQ(t->updates(), 1);
}

TEST_F(TrainerTest, StateHasReferenceNamesAndOptimizerState) {
  auto t = Make();
  ASSERT_TRUE(t->Step(MakeBatch(t->config().vit, 2, 0)).ok());
  std::map<std::string, std::vector<int64_t>> names;
  for (const auto& [name, tensor] : t->State()) names[name] = tensor.sizes().vec();
  EXPECT_EQ(names["encoder.patch_embed.proj.weight"], (std::vector<int64_t>{64, 3, 2, 16, 16}));
  EXPECT_EQ(names["target_encoder.pos_embed"], (std::vector<int64_t>{1, 8, 64}));
  EXPECT_EQ(names["predictor.mask_tokens.1"], (std::vector<int64_t>{1, 1, 32}));
  EXPECT_EQ(names["optim.exp_avg.encoder.blocks.0.attn.qkv.weight"],
            (std::vector<int64_t>{192, 64}));
  EXPECT_TRUE(names.count("optim.step.predictor.predictor_proj.bias"));
  EXPECT_FALSE(names.count("optim.exp_avg.encoder.pos_embed"));  // fixed, not optimised
}

// bf16 autocast (the CUDA default) runs the same step with bf16 products: on the CPU too, where
// its loss must follow the float32 one within bf16's precision, with float32 weights and AdamW
// state throughout.
TEST_F(TrainerTest, Bfloat16AutocastFollowsFloat32WithFloat32MasterWeights) {
  TrainerConfig bf16 = NanoConfig();
  bf16.precision = Precision::kBfloat16;
  auto a = Make();
  auto b = Make(bf16);
  for (int step = 0; step < 4; ++step) {
    const Batch batch = MakeBatch(a->config().vit, 4, step);
    auto sa = a->Step(batch);
    auto sb = b->Step(batch);
    ASSERT_TRUE(sa.ok() && sb.ok());
    EXPECT_NEAR(sb->loss, sa->loss, 0.02 * std::abs(sa->loss) + 1e-3) << "step " << step;
    EXPECT_NEAR(sb->target_feature_std, sa->target_feature_std,
                0.02 * sa->target_feature_std + 1e-3);
  }
  for (const auto& [name, tensor] : b->State()) {
    if (name.rfind("optim.step.", 0) == 0) continue;
    EXPECT_EQ(tensor.scalar_type(), torch::kFloat32) << name;
  }
  // The scope ended with the step: nothing outside it runs in bf16.
  torch::Tensor x = torch::randn({4, 4});
  EXPECT_EQ(torch::mm(x, x).scalar_type(), torch::kFloat32);
}

TEST(AutocastScopeTest, Bfloat16InsideTheScopeOnlyAndFloat32IsANoOp) {
  torch::Tensor x = torch::randn({8, 8});
  {
    AutocastScope scope(torch::kCPU, Precision::kBfloat16);
    EXPECT_EQ(torch::mm(x, x).scalar_type(), torch::kBFloat16);
    {
      AutocastScope inner(torch::kCPU, Precision::kFloat32);
      EXPECT_EQ(torch::mm(x, x).scalar_type(), torch::kBFloat16);
    }
    EXPECT_EQ(torch::mm(x, x).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::mm(x, x).scalar_type(), torch::kFloat32);
}

TEST(DeviceTest, ParsesDevicesAndPrecisionsWithClearErrors) {
  auto cpu = ParseDevice("cpu");
  ASSERT_TRUE(cpu.ok());
  EXPECT_TRUE(cpu->is_cpu());
  for (const char* bad : {"gpu", "cuda:", "cuda:x", "cuda:-1", "CPU"}) {
    auto d = ParseDevice(bad);
    EXPECT_EQ(d.status().code(), core::Code::kInvalidArgument) << bad;
    EXPECT_THAT(d.status().message(), HasSubstr(bad));
  }
  auto cuda = ParseDevice("cuda:0");
  if (torch::cuda::is_available()) {
    ASSERT_TRUE(cuda.ok());
    EXPECT_TRUE(cuda->is_cuda());
  } else {
    EXPECT_EQ(cuda.status().code(), core::Code::kFailedPrecondition);
    EXPECT_THAT(cuda.status().message(), HasSubstr("has no CUDA"));
  }
  EXPECT_EQ(*ParsePrecision("bf16"), Precision::kBfloat16);
  EXPECT_EQ(*ParsePrecision("float32"), Precision::kFloat32);
  EXPECT_THAT(ParsePrecision("fp16").status().message(), HasSubstr("\"fp16\""));
  EXPECT_STREQ(PrecisionName(Precision::kBfloat16), "bfloat16");
}

// On the CPU the uploader hands the batch through untouched; a step on what it returns equals a
// step on the host batch, with synchronous timing on.
TEST_F(TrainerTest, TheUploaderPassesHostBatchesThroughOnTheCpu) {
  TrainerConfig timed = NanoConfig();
  timed.synchronous_timing = true;
  auto a = Make();
  auto b = Make(timed);
  BatchUploader uploader(b->device());
  const Batch host = MakeBatch(a->config().vit, 4, 3);
  StagedBatch staged = uploader.Stage(host);
  EXPECT_FALSE(staged.done.has_value());
  Batch ready = uploader.Ready(std::move(staged));
  EXPECT_TRUE(ready.tokens.is_same(host.tokens));
  int64_t bytes = host.tokens.numel();
  for (const MaskIndices& m : host.masks) bytes += 8 * (m.context.numel() + m.target.numel());
  EXPECT_EQ(uploader.bytes_staged(), bytes);
  EXPECT_EQ(uploader.pinned_bytes(), 0);
  auto sa = a->Step(host);
  auto sb = b->Step(ready);
  ASSERT_TRUE(sa.ok() && sb.ok());
  EXPECT_DOUBLE_EQ(sa->loss, sb->loss);
}

}  // namespace
}  // namespace vjepa::jepa
