// Frozen-evaluation probes (docs/vjepa-spec.md §6 and §8): a classifier over the frozen encoder's
// tokens [B, N, D] → logits [B, classes], pooled either attentively (one learned query, one
// cross-attention block) or by averaging the tokens. Parameter names match the reference
// state_dict, so `named_parameters()` of an attentive probe is exactly:
//   pooler.query_tokens [1, 1, D]
//   pooler.cross_attention_block.{norm1, xattn.q, xattn.kv, xattn.proj, norm2, mlp.fc1, mlp.fc2}.*
//   linear.{weight, bias}
// and of an average probe `linear.{weight, bias}`.
#ifndef VJEPA_SERVICES_TRAINER_PROBE_PROBE_CLASSIFIER_H_
#define VJEPA_SERVICES_TRAINER_PROBE_PROBE_CLASSIFIER_H_

#include <torch/torch.h>

#include <cstdint>
#include <string_view>

#include "common/core/status.h"

namespace vjepa::probe {

// How the tokens are pooled before the linear classifier (job-spec value `attentive` | `average`).
enum class ProbePooling { kAttentive, kAverage };

core::StatusOr<ProbePooling> ParseProbePooling(std::string_view name);
const char* ProbePoolingName(ProbePooling pooling);

struct ProbeOptions {
  ProbePooling pooling = ProbePooling::kAttentive;
  int64_t embed_dim = 0;  // D of the encoder
  int64_t num_heads = 0;  // attentive only: the encoder's head count
  int64_t num_classes = 0;
  double mlp_ratio = 4.0;  // attentive only
  double init_std = 0.02;  // attentive only: query token and pooler Linears
  // The reference creates `xattn.proj` but never applies it; true applies it after the attention
  // (for probes trained by code that does).
  bool apply_xattn_proj = false;
  uint64_t seed = 0;  // all initial values come from a generator seeded with this
};

// Trunc-normal in [a, b] (absolute bounds) by inverse-CDF sampling, as the reference's
// trunc_normal_; draws from `generator`.
void TruncNormal(const torch::Tensor& tensor, double mean, double std, double a, double b,
                 at::Generator& generator);

// PyTorch's default nn.Linear initialisation (kaiming-uniform with a = √5 for the weight, i.e.
// U(±1/√fan_in), and U(±1/√fan_in) for the bias), drawn from `generator`.
void DefaultLinearInit(const torch::nn::Linear& linear, at::Generator& generator);

// fc1 → GELU (exact) → fc2.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t in_features, int64_t hidden_features);
  torch::Tensor forward(const torch::Tensor& x);

  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
};
TORCH_MODULE(Mlp);

// Multi-head cross-attention of queries [B, n, D] over tokens [B, N, D]. `proj` exists for strict
// loading; it is applied only when `apply_proj`.
class CrossAttentionImpl : public torch::nn::Module {
 public:
  CrossAttentionImpl(int64_t dim, int64_t num_heads, bool apply_proj);
  torch::Tensor forward(const torch::Tensor& queries, const torch::Tensor& tokens);
  int64_t num_heads() const { return num_heads_; }

  torch::nn::Linear q{nullptr};
  torch::nn::Linear kv{nullptr};
  torch::nn::Linear proj{nullptr};

 private:
  int64_t num_heads_;
  bool apply_proj_;
};
TORCH_MODULE(CrossAttention);

// q = q + xattn(q, norm1(x)); q = q + mlp(norm2(q)). LayerNorm eps 1e-5; norm1 is applied to the
// key/value tokens only.
class CrossAttentionBlockImpl : public torch::nn::Module {
 public:
  CrossAttentionBlockImpl(int64_t dim, int64_t num_heads, double mlp_ratio, bool apply_proj);
  torch::Tensor forward(const torch::Tensor& queries, const torch::Tensor& tokens);

  torch::nn::LayerNorm norm1{nullptr};
  CrossAttention xattn{nullptr};
  torch::nn::LayerNorm norm2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(CrossAttentionBlock);

// One learned query token attending over the tokens (reference depth 1: no self-attention
// blocks). Output [B, 1, D].
class AttentivePoolerImpl : public torch::nn::Module {
 public:
  AttentivePoolerImpl(int64_t dim, int64_t num_heads, double mlp_ratio, bool apply_proj);
  torch::Tensor forward(const torch::Tensor& tokens);

  torch::Tensor query_tokens;
  CrossAttentionBlock cross_attention_block{nullptr};
};
TORCH_MODULE(AttentivePooler);

// The interface both probes share: tokens [B, N, D] → logits [B, classes].
class ProbeClassifierImpl : public torch::nn::Module {
 public:
  ProbeClassifierImpl(int64_t embed_dim, int64_t num_classes)
      : embed_dim_(embed_dim), num_classes_(num_classes) {}
  virtual torch::Tensor forward(const torch::Tensor& tokens) = 0;
  virtual ProbePooling pooling() const = 0;
  int64_t embed_dim() const { return embed_dim_; }
  int64_t num_classes() const { return num_classes_; }

 private:
  int64_t embed_dim_;
  int64_t num_classes_;
};
TORCH_MODULE(ProbeClassifier);

class AttentiveClassifierImpl : public ProbeClassifierImpl {
 public:
  // D must be divisible by num_heads (TORCH_CHECK; MakeProbeClassifier returns a status instead).
  AttentiveClassifierImpl(int64_t embed_dim, int64_t num_heads, int64_t num_classes,
                          uint64_t seed = 0);
  explicit AttentiveClassifierImpl(const ProbeOptions& options);
  torch::Tensor forward(const torch::Tensor& tokens) override;
  ProbePooling pooling() const override { return ProbePooling::kAttentive; }

  AttentivePooler pooler{nullptr};
  torch::nn::Linear linear{nullptr};
};
TORCH_MODULE(AttentiveClassifier);

// Mean of all tokens, then Linear(D → classes) with PyTorch's default init.
class AverageClassifierImpl : public ProbeClassifierImpl {
 public:
  AverageClassifierImpl(int64_t embed_dim, int64_t num_classes, uint64_t seed = 0);
  explicit AverageClassifierImpl(const ProbeOptions& options);
  torch::Tensor forward(const torch::Tensor& tokens) override;
  ProbePooling pooling() const override { return ProbePooling::kAverage; }

  torch::nn::Linear linear{nullptr};
};
TORCH_MODULE(AverageClassifier);

// Validates the options and builds the probe of the requested pooling kind.
core::StatusOr<ProbeClassifier> MakeProbeClassifier(const ProbeOptions& options);

}  // namespace vjepa::probe

#endif  // VJEPA_SERVICES_TRAINER_PROBE_PROBE_CLASSIFIER_H_
