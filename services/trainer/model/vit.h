// The V-JEPA encoder (docs/vjepa-spec.md §1) and its building blocks, with parameter names equal
// to the reference state_dict keys (patch_embed.proj.weight, pos_embed, blocks.N.attn.qkv.weight,
// norm.weight, ...), so that checkpoints load into the reference code with strict=True.
#ifndef VJEPA_SERVICES_TRAINER_MODEL_VIT_H_
#define VJEPA_SERVICES_TRAINER_MODEL_VIT_H_

#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

#include "services/trainer/model/config.h"

namespace vjepa::model {

// Multi-head self-attention: qkv Linear (bias), softmax(QK^T/sqrt(d))V, proj Linear. No mask.
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int64_t dim, int64_t heads);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  int64_t heads_;
  torch::nn::Linear qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(Attention);

class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t dim, int64_t hidden);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::Linear fc1_{nullptr}, fc2_{nullptr};
};
TORCH_MODULE(Mlp);

// Pre-norm block: x += attn(norm1(x)); x += mlp(norm2(x)). LayerNorm eps 1e-6, exact GELU.
class BlockImpl : public torch::nn::Module {
 public:
  BlockImpl(int64_t dim, int64_t heads, double mlp_ratio);
  torch::Tensor forward(torch::Tensor x);

 private:
  torch::nn::LayerNorm norm1_{nullptr}, norm2_{nullptr};
  Attention attn_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(Block);

// The reference's Conv3d patch embedding applied as one matrix product. The weight keeps the
// reference's Conv3d shape [D, 3, tubelet, p, p]; a token's P = tubelet*p*p*3 values come in
// (dt, dy, dx, c) order, so the equivalent linear weight is
//   weight.permute({0, 2, 3, 4, 1}).reshape({D, P})
// and a reference conv weight maps onto this module bit for bit (no copy or reordering needed).
class PatchProjImpl : public torch::nn::Module {
 public:
  PatchProjImpl(int64_t dim, int64_t tubelet, int64_t patch);
  // tokens: float [..., P] → [..., D].
  torch::Tensor forward(const torch::Tensor& tokens);
  torch::Tensor LinearWeight() const;  // [D, P]

  torch::Tensor weight, bias;
};
TORCH_MODULE(PatchProj);

class PatchEmbedImpl : public torch::nn::Module {
 public:
  PatchEmbedImpl(int64_t dim, int64_t tubelet, int64_t patch);
  torch::Tensor forward(const torch::Tensor& tokens) { return proj->forward(tokens); }
  PatchProj proj{nullptr};
};
TORCH_MODULE(PatchEmbed);

// uint8 tokens [B, N, P] (values 0..255, channel last within a token) → float, normalised with
// the ImageNet mean/std on the 0..255 scale, on the tokens' device.
torch::Tensor NormalizeTokens(const torch::Tensor& tokens_u8);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  explicit VisionTransformerImpl(const VitConfig& config);

  // tokens: uint8 [B, N, P] (all N tokens of a clip) or already-normalised float.
  // context: int64 [B, K] token indices, or an undefined tensor for all tokens.
  // Returns [B, K or N, D]. Gathering happens before the patch embedding (exact, and cheaper
  // than embedding every token: the embedding and the position table act per token).
  torch::Tensor forward(const torch::Tensor& tokens, const torch::Tensor& context = {});

  const VitConfig& config() const { return config_; }
  // Trainable parameters (excludes pos_embed).
  int64_t NumTrainableParameters() const;

  torch::Tensor pos_embed;  // [1, N, D], fixed (requires_grad false), in the state dict

 private:
  VitConfig config_;
  PatchEmbed patch_embed_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(VisionTransformer);

// The reference's init, net effect (docs/vjepa-spec.md §1): every Linear and the patch
// projection ~ N(0, 0.02) truncated at ±2, biases 0, LayerNorms (1, 0).
void InitWeights(torch::nn::Module& module, double std = 0.02);

// Gathers rows of x [B, N, C] at idx [B, K] → [B, K, C].
torch::Tensor GatherTokens(const torch::Tensor& x, const torch::Tensor& idx);

int64_t CountTrainable(const torch::nn::Module& module);

}  // namespace vjepa::model

#endif  // VJEPA_SERVICES_TRAINER_MODEL_VIT_H_
