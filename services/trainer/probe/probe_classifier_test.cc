#include "services/trainer/probe/probe_classifier.h"

#include <ATen/CPUGeneratorImpl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "services/trainer/probe/probe_testing.h"

namespace vjepa::probe {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

class ProbeClassifierTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(1); }
};

std::map<std::string, torch::Tensor> Params(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& item : m.named_parameters()) out[item.key()] = item.value();
  return out;
}

TEST_F(ProbeClassifierTest, ParsesPoolingNames) {
  struct Case {
    const char* name;
    bool ok;
    ProbePooling pooling;
  };
  for (const Case& c : std::vector<Case>{{"attentive", true, ProbePooling::kAttentive},
                                         {"average", true, ProbePooling::kAverage},
                                         {"max", false, ProbePooling::kAttentive},
                                         {"Attentive", false, ProbePooling::kAttentive},
                                         {"", false, ProbePooling::kAttentive}}) {
    core::StatusOr<ProbePooling> parsed = ParseProbePooling(c.name);
    ASSERT_EQ(parsed.ok(), c.ok) << c.name;
    if (c.ok) {
      EXPECT_EQ(*parsed, c.pooling);
      EXPECT_STREQ(ProbePoolingName(*parsed), c.name);
    } else {
      EXPECT_EQ(parsed.status().code(), core::Code::kInvalidArgument);
      EXPECT_THAT(parsed.status().message(), ::testing::HasSubstr(c.name));
    }
  }
}

TEST_F(ProbeClassifierTest, FactoryRejectsBadShapes) {
  struct Case {
    ProbePooling pooling;
    int64_t dim, heads, classes;
    bool ok;
  };
  for (const Case& c : std::vector<Case>{
           {ProbePooling::kAttentive, 192, 3, 5, true},
           {ProbePooling::kAttentive, 192, 5, 5, false},  // 192 % 5 != 0
           {ProbePooling::kAttentive, 192, 0, 5, false},
           {ProbePooling::kAttentive, 0, 3, 5, false},
           {ProbePooling::kAttentive, 192, 3, 0, false},
           {ProbePooling::kAverage, 192, 0, 5, true},  // heads unused
           {ProbePooling::kAverage, 192, 5, 0, false},
           {ProbePooling::kAverage, -1, 0, 5, false},
       }) {
    core::StatusOr<ProbeClassifier> made =
        MakeProbeClassifier(TestProbeOptions(c.pooling, c.dim, c.heads, c.classes));
    EXPECT_EQ(made.ok(), c.ok) << ProbePoolingName(c.pooling) << " D=" << c.dim
                               << " heads=" << c.heads << " classes=" << c.classes;
    if (made.ok()) {
      EXPECT_EQ((*made)->pooling(), c.pooling);
      EXPECT_EQ((*made)->embed_dim(), c.dim);
      EXPECT_EQ((*made)->num_classes(), c.classes);
    } else {
      EXPECT_EQ(made.status().code(), core::Code::kInvalidArgument);
    }
  }
}

TEST_F(ProbeClassifierTest, AttentiveParameterNamesAndShapesMatchReference) {
  ProbeClassifier probe = MustMakeProbe(TestProbeOptions(ProbePooling::kAttentive, 192, 3, 5));
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"pooler.query_tokens", {1, 1, 192}},
      {"pooler.cross_attention_block.norm1.weight", {192}},
      {"pooler.cross_attention_block.norm1.bias", {192}},
      {"pooler.cross_attention_block.xattn.q.weight", {192, 192}},
      {"pooler.cross_attention_block.xattn.q.bias", {192}},
      {"pooler.cross_attention_block.xattn.kv.weight", {384, 192}},
      {"pooler.cross_attention_block.xattn.kv.bias", {384}},
      {"pooler.cross_attention_block.xattn.proj.weight", {192, 192}},
      {"pooler.cross_attention_block.xattn.proj.bias", {192}},
      {"pooler.cross_attention_block.norm2.weight", {192}},
      {"pooler.cross_attention_block.norm2.bias", {192}},
      {"pooler.cross_attention_block.mlp.fc1.weight", {768, 192}},
      {"pooler.cross_attention_block.mlp.fc1.bias", {768}},
      {"pooler.cross_attention_block.mlp.fc2.weight", {192, 768}},
      {"pooler.cross_attention_block.mlp.fc2.bias", {192}},
      {"linear.weight", {5, 192}},
      {"linear.bias", {5}},
  };
  std::vector<std::pair<std::string, std::vector<int64_t>>> actual;
  for (const auto& item : probe->named_parameters()) {
    actual.emplace_back(item.key(), item.value().sizes().vec());
    EXPECT_TRUE(item.value().requires_grad()) << item.key();
    EXPECT_EQ(item.value().scalar_type(), torch::kFloat) << item.key();
  }
  EXPECT_THAT(actual, ElementsAreArray(expected));
  // The state_dict holds exactly these: no buffers.
  EXPECT_EQ(probe->named_buffers().size(), 0u);
}

TEST_F(ProbeClassifierTest, AverageParameterNamesAndShapes) {
  ProbeClassifier probe = MustMakeProbe(TestProbeOptions(ProbePooling::kAverage, 192, 0, 5));
  std::vector<std::pair<std::string, std::vector<int64_t>>> actual;
  for (const auto& item : probe->named_parameters()) {
    actual.emplace_back(item.key(), item.value().sizes().vec());
  }
  const std::vector<std::pair<std::string, std::vector<int64_t>>> expected = {
      {"linear.weight", {5, 192}}, {"linear.bias", {5}}};
  EXPECT_THAT(actual, ElementsAreArray(expected));
  EXPECT_EQ(probe->named_buffers().size(), 0u);
}

TEST_F(ProbeClassifierTest, DepthOneHasOnlyTheCrossAttentionBlock) {
  AttentiveClassifier probe(192, 3, 5);
  std::vector<std::string> top, pooler, block, xattn, mlp;
  for (const auto& c : probe->named_children()) top.push_back(c.key());
  for (const auto& c : probe->pooler->named_children()) pooler.push_back(c.key());
  for (const auto& c : probe->pooler->cross_attention_block->named_children()) {
    block.push_back(c.key());
  }
  for (const auto& c : probe->pooler->cross_attention_block->xattn->named_children()) {
    xattn.push_back(c.key());
  }
  for (const auto& c : probe->pooler->cross_attention_block->mlp->named_children()) {
    mlp.push_back(c.key());
  }
  EXPECT_THAT(top, ElementsAre("pooler", "linear"));
  EXPECT_THAT(pooler, ElementsAre("cross_attention_block"));
  EXPECT_THAT(block, ElementsAre("norm1", "xattn", "norm2", "mlp"));
  EXPECT_THAT(xattn, ElementsAre("q", "kv", "proj"));
  EXPECT_THAT(mlp, ElementsAre("fc1", "fc2"));
  EXPECT_EQ(probe->pooler->cross_attention_block->xattn->num_heads(), 3);
}

TEST_F(ProbeClassifierTest, LayerNormsUseEps1e5WithAffine) {
  AttentiveClassifier probe(192, 3, 5);
  const CrossAttentionBlock& block = probe->pooler->cross_attention_block;
  for (const torch::nn::LayerNorm& norm : {block->norm1, block->norm2}) {
    EXPECT_DOUBLE_EQ(norm->options.eps(), 1e-5);
    EXPECT_TRUE(norm->options.elementwise_affine());
    EXPECT_EQ(norm->options.normalized_shape(), std::vector<int64_t>{192});
  }
}

// The eps is observable: a token with tiny variance normalises differently at 1e-5 and 1e-6.
TEST_F(ProbeClassifierTest, Norm1EpsIsObservableInTheOutput) {
  AttentiveClassifier probe(8, 2, 3);
  torch::Tensor tokens = torch::tensor({1e-3f, -1e-3f, 1e-3f, -1e-3f, 1e-3f, -1e-3f, 1e-3f, -1e-3f})
                             .reshape({1, 1, 8});
  torch::NoGradGuard no_grad;
  torch::Tensor normed = probe->pooler->cross_attention_block->norm1(tokens);
  // var = 1e-6 → x / sqrt(1e-6 + 1e-5) = 1e-3 / 3.3166e-3
  EXPECT_NEAR(normed[0][0][0].item<double>(), 1e-3 / std::sqrt(1.1e-5), 1e-4);
}

TEST_F(ProbeClassifierTest, XattnProjExistsButDoesNotAffectTheOutput) {
  for (bool apply : {false, true}) {
    ProbeOptions options = TestProbeOptions(ProbePooling::kAttentive, 16, 2, 4, /*seed=*/3);
    options.apply_xattn_proj = apply;
    core::StatusOr<ProbeClassifier> made = MakeProbeClassifier(options);
    ASSERT_TRUE(made.ok()) << made.status();
    ProbeClassifier probe = *made;
    std::map<std::string, torch::Tensor> params = Params(*probe);
    ASSERT_EQ(params.count("pooler.cross_attention_block.xattn.proj.weight"), 1u);
    torch::manual_seed(11);
    torch::Tensor tokens = torch::randn({3, 7, 16});
    torch::NoGradGuard no_grad;
    torch::Tensor before = probe->forward(tokens);
    params["pooler.cross_attention_block.xattn.proj.weight"].add_(torch::randn({16, 16}));
    params["pooler.cross_attention_block.xattn.proj.bias"].add_(torch::randn({16}));
    torch::Tensor after = probe->forward(tokens);
    if (apply) {
      EXPECT_FALSE(torch::allclose(before, after)) << "proj applied must change the logits";
    } else {
      EXPECT_TRUE(torch::equal(before, after)) << "proj must not be applied by default";
    }
  }
}

struct InitCase {
  const char* name;
  double mean, std, tol;  // tol on the std, relative
};

TEST_F(ProbeClassifierTest, InitialisationStatistics) {
  ProbeClassifier probe =
      MustMakeProbe(TestProbeOptions(ProbePooling::kAttentive, 192, 3, 5, /*seed=*/7));
  std::map<std::string, torch::Tensor> p = Params(*probe);
  const double s2 = 0.02 / std::sqrt(2.0);
  const std::string b = "pooler.cross_attention_block.";
  for (const InitCase& c : std::vector<InitCase>{
           {"pooler.query_tokens", 0.0, 0.02, 0.2},
           {"pooler.cross_attention_block.xattn.q.weight", 0.0, 0.02, 0.05},
           {"pooler.cross_attention_block.xattn.kv.weight", 0.0, 0.02, 0.05},
           {"pooler.cross_attention_block.mlp.fc1.weight", 0.0, 0.02, 0.05},
           {"pooler.cross_attention_block.xattn.proj.weight", 0.0, s2, 0.05},
           {"pooler.cross_attention_block.mlp.fc2.weight", 0.0, s2, 0.05},
       }) {
    const torch::Tensor& t = p.at(c.name);
    EXPECT_NEAR(t.std().item<double>(), c.std, c.std * c.tol) << c.name;
    EXPECT_NEAR(t.mean().item<double>(), c.mean, 3.0 * c.std / std::sqrt(t.numel()) + 1e-4)
        << c.name;
    EXPECT_LT(t.abs().max().item<double>(), 6.0 * c.std) << c.name;
  }
  for (const char* bias : {"xattn.q.bias", "xattn.kv.bias", "xattn.proj.bias", "mlp.fc1.bias",
                           "mlp.fc2.bias", "norm1.bias", "norm2.bias"}) {
    EXPECT_EQ(p.at(b + bias).abs().max().item<double>(), 0.0) << bias;
  }
  for (const char* weight : {"norm1.weight", "norm2.weight"}) {
    EXPECT_TRUE(torch::equal(p.at(b + weight), torch::ones({192}))) << weight;
  }
  // The rescale by √2 is exact, not a statistical accident: fc2 and proj are half the variance of
  // fc1 and q within the tolerance above, and proj is strictly narrower than q.
  EXPECT_LT(p.at(b + "xattn.proj.weight").std().item<double>(),
            0.8 * p.at(b + "xattn.q.weight").std().item<double>());
}

TEST_F(ProbeClassifierTest, ClassifierLinearKeepsPyTorchDefaultInit) {
  for (ProbePooling pooling : {ProbePooling::kAttentive, ProbePooling::kAverage}) {
    ProbeClassifier probe = MustMakeProbe(TestProbeOptions(pooling, 192, 3, 5, /*seed=*/1));
    std::map<std::string, torch::Tensor> p = Params(*probe);
    const double bound = 1.0 / std::sqrt(192.0);  // kaiming-uniform(a=√5) on fan_in 192
    const torch::Tensor& w = p.at("linear.weight");
    const torch::Tensor& bias = p.at("linear.bias");
    EXPECT_LE(w.abs().max().item<double>(), bound) << ProbePoolingName(pooling);
    EXPECT_NEAR(w.std().item<double>(), bound / std::sqrt(3.0), 0.1 * bound / std::sqrt(3.0));
    EXPECT_LE(bias.abs().max().item<double>(), bound);
    EXPECT_GT(bias.abs().max().item<double>(), 0.0) << "bias must not be zero-initialised";
  }
}

TEST_F(ProbeClassifierTest, InitialisationIsDeterministicPerSeed) {
  ProbeClassifier a =
      MustMakeProbe(TestProbeOptions(ProbePooling::kAttentive, 32, 4, 3, /*seed=*/5));
  ProbeClassifier b =
      MustMakeProbe(TestProbeOptions(ProbePooling::kAttentive, 32, 4, 3, /*seed=*/5));
  ProbeClassifier c =
      MustMakeProbe(TestProbeOptions(ProbePooling::kAttentive, 32, 4, 3, /*seed=*/6));
  std::map<std::string, torch::Tensor> pa = Params(*a), pb = Params(*b), pc = Params(*c);
  for (const auto& [name, t] : pa) {
    EXPECT_TRUE(torch::equal(t, pb.at(name))) << name;
  }
  EXPECT_FALSE(torch::equal(pa.at("pooler.query_tokens"), pc.at("pooler.query_tokens")));
  EXPECT_FALSE(torch::equal(pa.at("linear.weight"), pc.at("linear.weight")));
}

TEST_F(ProbeClassifierTest, TruncNormalStaysInsideItsBounds) {
  at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(9);
  torch::Tensor t = torch::empty({20000});
  TruncNormal(t, 0.0, 1.0, -0.5, 1.0, gen);
  EXPECT_GE(t.min().item<double>(), -0.5);
  EXPECT_LE(t.max().item<double>(), 1.0);
  // Mean of N(0,1) truncated to [-0.5, 1]: (φ(-0.5) − φ(1)) / (Φ(1) − Φ(-0.5)) = 0.2066
  EXPECT_NEAR(t.mean().item<double>(), 0.2066, 0.01);
}

// ---- the forward pass against a computation written out by hand, in double precision ----

using Vec = std::vector<double>;

Vec Row(const torch::Tensor& t) {
  torch::Tensor d = t.to(torch::kDouble).contiguous();
  return Vec(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

Vec Affine(const torch::Tensor& weight, const torch::Tensor& bias, const Vec& x) {
  Vec w = Row(weight), b = Row(bias);
  const size_t out = b.size(), in = x.size();
  Vec y(out);
  for (size_t o = 0; o < out; ++o) {
    double acc = b[o];
    for (size_t i = 0; i < in; ++i) acc += w[o * in + i] * x[i];
    y[o] = acc;
  }
  return y;
}

Vec LayerNormRef(const torch::nn::LayerNorm& norm, const Vec& x) {
  double mean = 0.0, var = 0.0;
  for (double v : x) mean += v;
  mean /= x.size();
  for (double v : x) var += (v - mean) * (v - mean);
  var /= x.size();
  Vec w = Row(norm->weight), b = Row(norm->bias), y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = (x[i] - mean) / std::sqrt(var + 1e-5) * w[i] + b[i];
  return y;
}

std::vector<Vec> ReferenceLogits(AttentiveClassifierImpl& m, const torch::Tensor& tokens,
                                 int64_t heads) {
  const CrossAttentionBlock& blk = m.pooler->cross_attention_block;
  const int64_t batch = tokens.size(0), n = tokens.size(1), d = tokens.size(2), hd = d / heads;
  std::vector<Vec> logits;
  for (int64_t b = 0; b < batch; ++b) {
    const Vec query = Row(m.pooler->query_tokens.reshape({d}));
    const Vec q = Affine(blk->xattn->q->weight, blk->xattn->q->bias, query);
    std::vector<Vec> keys, values;
    for (int64_t t = 0; t < n; ++t) {
      const Vec kv = Affine(blk->xattn->kv->weight, blk->xattn->kv->bias,
                            LayerNormRef(blk->norm1, Row(tokens[b][t])));
      keys.emplace_back(kv.begin(), kv.begin() + d);
      values.emplace_back(kv.begin() + d, kv.end());
    }
    Vec attended(d, 0.0);
    for (int64_t h = 0; h < heads; ++h) {
      Vec scores(n);
      double top = -1e300;
      for (int64_t t = 0; t < n; ++t) {
        double s = 0.0;
        for (int64_t j = h * hd; j < (h + 1) * hd; ++j) s += q[j] * keys[t][j];
        scores[t] = s / std::sqrt(static_cast<double>(hd));
        top = std::max(top, scores[t]);
      }
      double z = 0.0;
      for (double& s : scores) z += (s = std::exp(s - top));
      for (int64_t t = 0; t < n; ++t) {
        for (int64_t j = h * hd; j < (h + 1) * hd; ++j) attended[j] += scores[t] / z * values[t][j];
      }
    }
    Vec q1(d);
    for (int64_t j = 0; j < d; ++j) q1[j] = query[j] + attended[j];  // proj not applied
    Vec hidden = Affine(blk->mlp->fc1->weight, blk->mlp->fc1->bias, LayerNormRef(blk->norm2, q1));
    for (double& v : hidden) v = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));  // exact GELU
    const Vec mlp_out = Affine(blk->mlp->fc2->weight, blk->mlp->fc2->bias, hidden);
    Vec q2(d);
    for (int64_t j = 0; j < d; ++j) q2[j] = q1[j] + mlp_out[j];
    logits.push_back(Affine(m.linear->weight, m.linear->bias, q2));
  }
  return logits;
}

TEST_F(ProbeClassifierTest, AttentiveForwardMatchesHandWrittenReference) {
  const int64_t d = 8, heads = 2, classes = 3;
  AttentiveClassifier probe(d, heads, classes, /*seed=*/2);
  {
    // Move every parameter (LayerNorm affines, biases, query) away from its init so each matters.
    torch::NoGradGuard no_grad;
    torch::manual_seed(21);
    for (auto& p : probe->parameters()) p.add_(torch::randn(p.sizes()) * 0.5);
  }
  torch::manual_seed(22);
  torch::Tensor tokens = torch::randn({2, 5, d}) * 2.0 + 0.3;
  torch::Tensor logits;
  {
    torch::NoGradGuard no_grad;
    logits = probe->forward(tokens);
  }
  ASSERT_EQ(logits.sizes(), (std::vector<int64_t>{2, classes}));
  const std::vector<Vec> expected = ReferenceLogits(*probe, tokens, heads);
  for (int64_t b = 0; b < 2; ++b) {
    for (int64_t c = 0; c < classes; ++c) {
      EXPECT_NEAR(logits[b][c].item<double>(), expected[b][c],
                  1e-4 * (1 + std::abs(expected[b][c])))
          << "sample " << b << " class " << c;
    }
  }
}

TEST_F(ProbeClassifierTest, AverageForwardIsLinearOfTokenMean) {
  AverageClassifier probe(6, 4, /*seed=*/3);
  torch::manual_seed(5);
  torch::Tensor tokens = torch::randn({3, 9, 6});
  torch::NoGradGuard no_grad;
  torch::Tensor logits = probe->forward(tokens);
  for (int64_t b = 0; b < 3; ++b) {
    Vec mean(6, 0.0);
    for (int64_t t = 0; t < 9; ++t) {
      Vec row = Row(tokens[b][t]);
      for (int j = 0; j < 6; ++j) mean[j] += row[j] / 9.0;
    }
    Vec expected = Affine(probe->linear->weight, probe->linear->bias, mean);
    for (int c = 0; c < 4; ++c) EXPECT_NEAR(logits[b][c].item<double>(), expected[c], 1e-5);
  }
}

TEST_F(ProbeClassifierTest, ForwardRejectsTokensOfTheWrongWidth) {
  ProbeClassifier probe = MustMakeProbe(TestProbeOptions(ProbePooling::kAttentive, 16, 2, 4));
  torch::NoGradGuard no_grad;
  EXPECT_EQ(probe->forward(torch::zeros({2, 3, 16})).sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_THROW(probe->forward(torch::zeros({2, 3, 12})), c10::Error);
  EXPECT_THROW(probe->forward(torch::zeros({2, 16})), c10::Error);
}

}  // namespace
}  // namespace vjepa::probe
