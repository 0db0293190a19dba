#include "services/trainer/probe/probe_classifier.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <string>

#include "common/core/torch_version.h"

namespace vjepa::probe {
namespace {

constexpr double kProbeLayerNormEps = 1e-5;

torch::nn::LayerNorm MakeLayerNorm(int64_t dim) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({dim}).eps(kProbeLayerNormEps));
}

double NormalCdf(double x) { return 0.5 * (1.0 + std::erf(x / std::sqrt(2.0))); }

// Query and pooler Linears trunc-normal(std), biases 0, LayerNorms (1, 0); then xattn.proj and
// mlp.fc2 divided by √2 (the reference's depth rescale with layer id 1).
void InitAttentivePooler(AttentivePoolerImpl& pooler, double std, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  TruncNormal(pooler.query_tokens, 0.0, std, -2.0, 2.0, generator);
  CrossAttentionBlockImpl& block = *pooler.cross_attention_block;
  for (const torch::nn::Linear& linear :
       {block.xattn->q, block.xattn->kv, block.xattn->proj, block.mlp->fc1, block.mlp->fc2}) {
    TruncNormal(linear->weight, 0.0, std, -2.0, 2.0, generator);
    linear->bias.zero_();
  }
  for (const torch::nn::LayerNorm& norm : {block.norm1, block.norm2}) {
    norm->weight.fill_(1.0);
    norm->bias.zero_();
  }
  block.xattn->proj->weight.div_(std::sqrt(2.0));
  block.mlp->fc2->weight.div_(std::sqrt(2.0));
}

ProbeOptions MakeOptions(ProbePooling pooling, int64_t embed_dim, int64_t num_heads,
                         int64_t num_classes, uint64_t seed) {
  ProbeOptions options;
  options.pooling = pooling;
  options.embed_dim = embed_dim;
  options.num_heads = num_heads;
  options.num_classes = num_classes;
  options.seed = seed;
  return options;
}

void CheckTokens(const torch::Tensor& tokens, int64_t embed_dim) {
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(2) == embed_dim && tokens.size(1) > 0,
              "probe: tokens must be [B, N>0, ", embed_dim, "], got ", tokens.sizes());
}

}  // namespace

core::StatusOr<ProbePooling> ParseProbePooling(std::string_view name) {
  if (name == "attentive") return ProbePooling::kAttentive;
  if (name == "average") return ProbePooling::kAverage;
  return core::InvalidArgumentError("probe pooling '" + std::string(name) +
                                    "' is unknown: expected 'attentive' or 'average'");
}

const char* ProbePoolingName(ProbePooling pooling) {
  switch (pooling) {
    case ProbePooling::kAttentive:
      return "attentive";
    case ProbePooling::kAverage:
      return "average";
  }
  return "unknown";
}

void TruncNormal(const torch::Tensor& tensor, double mean, double std, double a, double b,
                 at::Generator& generator) {
  torch::NoGradGuard no_grad;
  const double lo = NormalCdf((a - mean) / std);
  const double hi = NormalCdf((b - mean) / std);
  tensor.uniform_(2.0 * lo - 1.0, 2.0 * hi - 1.0, generator);
  tensor.erfinv_();
  tensor.mul_(std * std::sqrt(2.0));
  tensor.add_(mean);
  tensor.clamp_(a, b);
}

void DefaultLinearInit(const torch::nn::Linear& linear, at::Generator& generator) {
  torch::NoGradGuard no_grad;
  const double bound = 1.0 / std::sqrt(static_cast<double>(linear->weight.size(1)));
  linear->weight.uniform_(-bound, bound, generator);
  if (linear->bias.defined()) linear->bias.uniform_(-bound, bound, generator);
}

MlpImpl::MlpImpl(int64_t in_features, int64_t hidden_features)
    : fc1(register_module("fc1", torch::nn::Linear(in_features, hidden_features))),
      fc2(register_module("fc2", torch::nn::Linear(hidden_features, in_features))) {}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) { return fc2(torch::gelu(fc1(x))); }

CrossAttentionImpl::CrossAttentionImpl(int64_t dim, int64_t num_heads, bool apply_proj)
    : q(register_module("q", torch::nn::Linear(dim, dim))),
      kv(register_module("kv", torch::nn::Linear(dim, 2 * dim))),
      proj(register_module("proj", torch::nn::Linear(dim, dim))),
      num_heads_(num_heads),
      apply_proj_(apply_proj) {
  TORCH_CHECK(num_heads > 0 && dim % num_heads == 0, "cross-attention: dim ", dim,
              " is not divisible by ", num_heads, " heads");
}

torch::Tensor CrossAttentionImpl::forward(const torch::Tensor& queries,
                                          const torch::Tensor& tokens) {
  const int64_t batch = queries.size(0);
  const int64_t num_queries = queries.size(1);
  const int64_t dim = queries.size(2);
  const int64_t num_tokens = tokens.size(1);
  const int64_t head_dim = dim / num_heads_;
  // [B, H, n, hd]
  torch::Tensor qh =
      q(queries).reshape({batch, num_queries, num_heads_, head_dim}).permute({0, 2, 1, 3});
  // kv channels: [k (D) | v (D)], each split into heads → [2, B, H, N, hd]
  torch::Tensor kvh =
      kv(tokens).reshape({batch, num_tokens, 2, num_heads_, head_dim}).permute({2, 0, 3, 1, 4});
  torch::Tensor k = kvh[0];
  torch::Tensor v = kvh[1];
#if VJEPA_TORCH_AT_LEAST(2, 0)  // fused (flash or memory-efficient) attention
  torch::Tensor out = at::scaled_dot_product_attention(qh, k, v);
#else
  torch::Tensor scores =
      torch::matmul(qh, k.transpose(-2, -1)) / std::sqrt(static_cast<double>(head_dim));
  torch::Tensor out = torch::matmul(torch::softmax(scores, -1), v);
#endif
  out = out.transpose(1, 2).reshape({batch, num_queries, dim});
  if (apply_proj_) out = proj(out);
  return out;
}

CrossAttentionBlockImpl::CrossAttentionBlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio,
                                                 bool apply_proj)
    : norm1(register_module("norm1", MakeLayerNorm(dim))),
      xattn(register_module("xattn", CrossAttention(dim, num_heads, apply_proj))),
      norm2(register_module("norm2", MakeLayerNorm(dim))),
      mlp(register_module("mlp", Mlp(dim, static_cast<int64_t>(dim * mlp_ratio)))) {}

torch::Tensor CrossAttentionBlockImpl::forward(const torch::Tensor& queries,
                                               const torch::Tensor& tokens) {
  torch::Tensor q = queries + xattn(queries, norm1(tokens));
  return q + mlp(norm2(q));
}

AttentivePoolerImpl::AttentivePoolerImpl(int64_t dim, int64_t num_heads, double mlp_ratio,
                                         bool apply_proj)
    : query_tokens(register_parameter("query_tokens", torch::zeros({1, 1, dim}))),
      cross_attention_block(register_module(
          "cross_attention_block", CrossAttentionBlock(dim, num_heads, mlp_ratio, apply_proj))) {}

torch::Tensor AttentivePoolerImpl::forward(const torch::Tensor& tokens) {
  torch::Tensor queries = query_tokens.expand({tokens.size(0), -1, -1});
  return cross_attention_block(queries, tokens);
}

AttentiveClassifierImpl::AttentiveClassifierImpl(int64_t embed_dim, int64_t num_heads,
                                                 int64_t num_classes, uint64_t seed)
    : AttentiveClassifierImpl(
          MakeOptions(ProbePooling::kAttentive, embed_dim, num_heads, num_classes, seed)) {}

AttentiveClassifierImpl::AttentiveClassifierImpl(const ProbeOptions& options)
    : ProbeClassifierImpl(options.embed_dim, options.num_classes),
      pooler(
          register_module("pooler", AttentivePooler(options.embed_dim, options.num_heads,
                                                    options.mlp_ratio, options.apply_xattn_proj))),
      linear(register_module("linear", torch::nn::Linear(options.embed_dim, options.num_classes))) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  InitAttentivePooler(*pooler, options.init_std, generator);
  DefaultLinearInit(linear, generator);
}

torch::Tensor AttentiveClassifierImpl::forward(const torch::Tensor& tokens) {
  CheckTokens(tokens, embed_dim());
  return linear(pooler(tokens).squeeze(1));
}

AverageClassifierImpl::AverageClassifierImpl(int64_t embed_dim, int64_t num_classes, uint64_t seed)
    : AverageClassifierImpl(MakeOptions(ProbePooling::kAverage, embed_dim, 0, num_classes, seed)) {}

AverageClassifierImpl::AverageClassifierImpl(const ProbeOptions& options)
    : ProbeClassifierImpl(options.embed_dim, options.num_classes),
      linear(register_module("linear", torch::nn::Linear(options.embed_dim, options.num_classes))) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(options.seed);
  DefaultLinearInit(linear, generator);
}

torch::Tensor AverageClassifierImpl::forward(const torch::Tensor& tokens) {
  CheckTokens(tokens, embed_dim());
  return linear(tokens.mean(1));
}

core::StatusOr<ProbeClassifier> MakeProbeClassifier(const ProbeOptions& options) {
  if (options.embed_dim <= 0) {
    return core::InvalidArgumentError("probe: embed_dim must be positive, got " +
                                      std::to_string(options.embed_dim));
  }
  if (options.num_classes <= 0) {
    return core::InvalidArgumentError("probe: num_classes must be positive, got " +
                                      std::to_string(options.num_classes));
  }
  switch (options.pooling) {
    case ProbePooling::kAverage:
      return ProbeClassifier(
          std::shared_ptr<ProbeClassifierImpl>(std::make_shared<AverageClassifierImpl>(options)));
    case ProbePooling::kAttentive:
      if (options.num_heads <= 0 || options.embed_dim % options.num_heads != 0) {
        return core::InvalidArgumentError(
            "attentive probe: embed_dim " + std::to_string(options.embed_dim) +
            " is not divisible into " + std::to_string(options.num_heads) + " heads");
      }
      if (!(options.mlp_ratio > 0.0) || !(options.init_std > 0.0)) {
        return core::InvalidArgumentError(
            "attentive probe: mlp_ratio and init_std must be positive");
      }
      return ProbeClassifier(
          std::shared_ptr<ProbeClassifierImpl>(std::make_shared<AttentiveClassifierImpl>(options)));
  }
  return core::InvalidArgumentError("probe: unknown pooling kind");
}

}  // namespace vjepa::probe
