#include <torch/torch.h>

#include <cmath>
#include <map>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/model/predictor.h"
#include "services/trainer/model/sincos.h"
#include "services/trainer/model/vit.h"

namespace vjepa::model {
namespace {

class ModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    torch::manual_seed(7);
  }
};

VitConfig Preset(const std::string& name) {
  auto c = VitPreset(name);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

// [B, 3, T, H, W] → tokens [B, N, P] in (t, h, w) order, values in (dt, dy, dx, c) order.
torch::Tensor Patchify(const torch::Tensor& clip, int64_t tubelet, int64_t patch) {
  const int64_t b = clip.size(0), t = clip.size(2), h = clip.size(3), w = clip.size(4);
  return clip.reshape({b, 3, t / tubelet, tubelet, h / patch, patch, w / patch, patch})
      .permute({0, 2, 4, 6, 3, 5, 7, 1})
      .reshape({b, (t / tubelet) * (h / patch) * (w / patch), tubelet * patch * patch * 3});
}

TEST_F(ModelTest, ParameterCountsMatchTheSpec) {
  // Trainable parameters, pos_embed excluded (docs/vjepa-spec.md §1).
  const std::map<std::string, double> expected_millions = {{"vit_tiny", 5.63},
                                                           {"vit_large", 303.9}};
  for (const auto& [name, millions] : expected_millions) {
    VitConfig c = Preset(name);
    VisionTransformer enc(c);
    EXPECT_NEAR(enc->NumTrainableParameters() / 1e6, millions, 0.05) << name;
    // Per block 12 D^2 + 13 D, patch embed 3*2*16*16*D + D, final norm 2D.
    const int64_t d = c.embed_dim;
    EXPECT_EQ(enc->NumTrainableParameters(),
              c.depth * (12 * d * d + 13 * d) + (3 * 2 * 16 * 16 * d + d) + 2 * d)
        << name;
  }
  VitConfig large = Preset("vit_large");
  PredictorConfig p;  // width 384, depth 12, heads 16, 2 mask tokens
  Predictor pred(large, p);
  EXPECT_NEAR(pred->NumTrainableParameters() / 1e6, 22.08, 0.005);
}

TEST_F(ModelTest, StateDictKeysAndShapesAreTheReferences) {
  VitConfig c = Preset("vit_tiny");
  c.depth = 2;
  VisionTransformer enc(c);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& item : enc->named_parameters()) shapes[item.key()] = item.value().sizes().vec();
  EXPECT_EQ(shapes["patch_embed.proj.weight"], (std::vector<int64_t>{192, 3, 2, 16, 16}));
  EXPECT_EQ(shapes["patch_embed.proj.bias"], (std::vector<int64_t>{192}));
  EXPECT_EQ(shapes["pos_embed"], (std::vector<int64_t>{1, 1568, 192}));
  EXPECT_EQ(shapes["blocks.1.attn.qkv.weight"], (std::vector<int64_t>{576, 192}));
  EXPECT_EQ(shapes["blocks.1.attn.proj.bias"], (std::vector<int64_t>{192}));
  EXPECT_EQ(shapes["blocks.0.mlp.fc1.weight"], (std::vector<int64_t>{768, 192}));
  EXPECT_EQ(shapes["blocks.0.norm2.weight"], (std::vector<int64_t>{192}));
  EXPECT_EQ(shapes["norm.bias"], (std::vector<int64_t>{192}));
  EXPECT_EQ(shapes.size(), 3u + 2 * 12 + 2);  // patch weight, bias, pos_embed; blocks; norm

  PredictorConfig pc;
  pc.width = 384;
  pc.depth = 1;
  pc.heads = 3;
  Predictor pred(c, pc);
  std::map<std::string, std::vector<int64_t>> pshapes;
  for (const auto& item : pred->named_parameters())
    pshapes[item.key()] = item.value().sizes().vec();
  EXPECT_EQ(pshapes["mask_tokens.0"], (std::vector<int64_t>{1, 1, 384}));
  EXPECT_EQ(pshapes["mask_tokens.1"], (std::vector<int64_t>{1, 1, 384}));
  EXPECT_EQ(pshapes["predictor_pos_embed"], (std::vector<int64_t>{1, 1568, 384}));
  EXPECT_EQ(pshapes["predictor_embed.weight"], (std::vector<int64_t>{384, 192}));
  EXPECT_EQ(pshapes["predictor_blocks.0.attn.qkv.weight"], (std::vector<int64_t>{1152, 384}));
  EXPECT_EQ(pshapes["predictor_norm.weight"], (std::vector<int64_t>{384}));
  EXPECT_EQ(pshapes["predictor_proj.weight"], (std::vector<int64_t>{192, 384}));
  EXPECT_FALSE(enc->pos_embed.requires_grad());
  EXPECT_FALSE(pred->predictor_pos_embed.requires_grad());
  // Mask tokens start at zero.
  EXPECT_EQ(pred->named_parameters()["mask_tokens.1"].abs().sum().item<float>(), 0.0f);
}

TEST_F(ModelTest, InitIsTruncatedNormalWithStd002) {
  VitConfig c = Preset("vit_tiny");
  c.depth = 4;
  VisionTransformer enc(c);
  auto params = enc->named_parameters();
  for (const char* name : {"blocks.0.attn.qkv.weight", "blocks.3.attn.proj.weight",
                           "blocks.3.mlp.fc2.weight", "patch_embed.proj.weight"}) {
    // The depth rescale of the reference's constructor is undone by its re-init: std is 0.02
    // in every block.
    EXPECT_NEAR(params[name].std().item<double>(), 0.02, 0.001) << name;
    EXPECT_NEAR(params[name].mean().item<double>(), 0.0, 0.001) << name;
  }
  EXPECT_EQ(params["blocks.2.attn.qkv.bias"].abs().max().item<float>(), 0.0f);
  EXPECT_EQ(params["blocks.2.norm1.weight"].min().item<float>(), 1.0f);
}

TEST_F(ModelTest, PatchEmbeddingEqualsTheReferenceConv3d) {
  const int64_t d = 24, tub = 2, p = 4;
  PatchProj proj(d, tub, p);
  torch::NoGradGuard no_grad;
  proj->weight.normal_();
  proj->bias.normal_();
  torch::Tensor clip = torch::randn({2, 3, 6, 8, 12});
  torch::Tensor conv = torch::conv3d(clip, proj->weight, proj->bias, {tub, p, p});
  // [B, D, t, h, w] → [B, N, D] in (t, h, w) order.
  torch::Tensor expected = conv.flatten(2).transpose(1, 2);
  torch::Tensor got = proj->forward(Patchify(clip, tub, p));
  EXPECT_EQ(got.sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got, expected, 1e-4, 1e-5))
      << (got - expected).abs().max().item<float>();
}

TEST_F(ModelTest, SinCosTableMatchesTheFormula) {
  // D = 384, uniform power: 128 channels per axis, exact.
  torch::Tensor t = SinCos3d(384, 8, 14, 14, true);
  ASSERT_EQ(t.sizes(), (std::vector<int64_t>{8 * 14 * 14, 384}));
  const int64_t row = (3 * 14 + 5) * 14 + 7;  // (t, h, w) = (3, 5, 7)
  auto at = [&](int64_t col) { return t[row][col].item<double>(); };
  auto omega = [](int64_t k, int64_t d) {
    return std::pow(10000.0, -static_cast<double>(k) / (d / 2.0));
  };
  EXPECT_NEAR(at(0), std::sin(3.0), 1e-6);
  EXPECT_NEAR(at(64), std::cos(3.0), 1e-6);
  EXPECT_NEAR(at(5), std::sin(3.0 * omega(5, 128)), 1e-6);
  EXPECT_NEAR(at(128), std::sin(5.0), 1e-6);
  EXPECT_NEAR(at(128 + 64 + 9), std::cos(5.0 * omega(9, 128)), 1e-6);
  EXPECT_NEAR(at(256), std::sin(7.0), 1e-6);
  EXPECT_NEAR(at(383), std::cos(7.0 * omega(63, 128)), 1e-6);
  // D = 1024: 342 per axis (1026), the last two w-cos channels dropped.
  torch::Tensor l = SinCos3d(1024, 8, 14, 14, true);
  ASSERT_EQ(l.size(1), 1024);
  EXPECT_NEAR(l[row][1023].item<double>(), std::cos(7.0 * omega(168, 342)), 1e-6);
  EXPECT_NEAR(l[row][684].item<double>(), std::sin(7.0), 1e-6);
  EXPECT_NEAR(l[row][342 + 171].item<double>(), std::cos(5.0), 1e-6);
}

TEST_F(ModelTest, EncoderGathersContextBeforeEmbeddingExactly) {
  VitConfig c = Preset("nano");
  VisionTransformer enc(c);
  torch::NoGradGuard no_grad;
  torch::Tensor tokens =
      torch::randint(0, 256, {2, c.num_tokens(), c.token_values()}, torch::kUInt8);
  torch::Tensor ctx = torch::tensor({{0, 3, 5, 7}, {1, 2, 6, 7}}, torch::kInt64);
  // The reference: embed every token, add positions, gather, then the blocks. With no blocks
  // in between, gathering first must give the same tokens.
  VitConfig shallow = c;
  shallow.depth = 0;
  VisionTransformer flat(shallow);
  torch::Tensor all = flat->forward(tokens);
  torch::Tensor gathered = flat->forward(tokens, ctx);
  // Both end in the final LayerNorm, which is per token.
  EXPECT_TRUE(torch::allclose(GatherTokens(all, ctx), gathered, 1e-5, 1e-5));
  torch::Tensor out = enc->forward(tokens, ctx);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 4, c.embed_dim}));
  EXPECT_THROW(enc->forward(tokens.narrow(1, 0, 3)), c10::Error);
}

TEST_F(ModelTest, SizesRoundTripThroughCheckpointMetadata) {
  VitConfig v = Preset("vit_giant");
  v.frames = 8;
  PredictorConfig p;
  p.output_dim = 1536;
  auto meta = ToMetadata(v, p);
  VitConfig v2;
  PredictorConfig p2;
  ASSERT_TRUE(FromMetadata(meta, &v2, &p2).ok());
  EXPECT_EQ(v2.embed_dim, 1408);
  EXPECT_EQ(v2.frames, 8);
  EXPECT_DOUBLE_EQ(v2.mlp_ratio, 48.0 / 11.0);
  EXPECT_EQ(p2.output_dim, 1536);
  meta.erase("model.heads");
  EXPECT_EQ(FromMetadata(meta, &v2, &p2).message(), "checkpoint metadata: no model.heads");
  meta["model.heads"] = "x";
  EXPECT_EQ(FromMetadata(meta, &v2, &p2).message(),
            "checkpoint metadata: model.heads is not a number: \"x\"");
}

TEST_F(ModelTest, PredictorOutputsOnePredictionPerTarget) {
  VitConfig c = Preset("nano");
  PredictorConfig pc;
  pc.width = 32;
  pc.depth = 2;
  pc.heads = 4;
  Predictor pred(c, pc);
  torch::Tensor z = torch::randn({2, 3, c.embed_dim});
  torch::Tensor ctx = torch::tensor({{0, 1, 2}, {4, 5, 6}}, torch::kInt64);
  torch::Tensor tgt = torch::tensor({{3, 4, 5, 6, 7}, {0, 1, 2, 3, 7}}, torch::kInt64);
  torch::Tensor out = pred->forward(z, ctx, tgt, 1);
  EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 5, c.embed_dim}));
  EXPECT_THROW(pred->forward(z, ctx, tgt, 2), c10::Error);
  PredictorConfig pixels = pc;
  pixels.output_dim = c.token_values();
  Predictor pix(c, pixels);
  EXPECT_EQ(pix->forward(z, ctx, tgt, 0).size(2), c.token_values());
}

}  // namespace
}  // namespace vjepa::model
