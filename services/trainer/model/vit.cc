#include "services/trainer/model/vit.h"

#include <torch/nn/functional/activation.h>
#include <torch/nn/init.h>

#include <cmath>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "common/core/torch_version.h"
#include "services/trainer/model/sincos.h"

namespace vjepa::model {

namespace F = torch::nn::functional;

AttentionImpl::AttentionImpl(int64_t dim, int64_t heads) : heads_(heads) {
  qkv_ = register_module("qkv", torch::nn::Linear(torch::nn::LinearOptions(dim, 3 * dim)));
  proj_ = register_module("proj", torch::nn::Linear(dim, dim));
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t b = x.size(0), n = x.size(1), c = x.size(2), hd = c / heads_;
  // [B, N, 3, H, hd] → [3, B, H, N, hd]
  torch::Tensor qkv = qkv_->forward(x).reshape({b, n, 3, heads_, hd}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
#if VJEPA_TORCH_AT_LEAST(2, 0)  // fused (flash or memory-efficient) attention
  torch::Tensor out = at::scaled_dot_product_attention(q, k, v);
#else
  torch::Tensor attn =
      torch::matmul(q * (1.0 / std::sqrt(static_cast<double>(hd))), k.transpose(-2, -1))
          .softmax(-1);
  torch::Tensor out = torch::matmul(attn, v);
#endif
  return proj_->forward(out.transpose(1, 2).reshape({b, n, c}));
}

MlpImpl::MlpImpl(int64_t dim, int64_t hidden) {
  fc1_ = register_module("fc1", torch::nn::Linear(dim, hidden));
  fc2_ = register_module("fc2", torch::nn::Linear(hidden, dim));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  return fc2_->forward(F::gelu(fc1_->forward(x)));
}

BlockImpl::BlockImpl(int64_t dim, int64_t heads, double mlp_ratio) {
  auto ln = torch::nn::LayerNormOptions({dim}).eps(1e-6);
  norm1_ = register_module("norm1", torch::nn::LayerNorm(ln));
  attn_ = register_module("attn", Attention(dim, heads));
  norm2_ = register_module("norm2", torch::nn::LayerNorm(ln));
  mlp_ = register_module("mlp", Mlp(dim, static_cast<int64_t>(dim * mlp_ratio)));
}

torch::Tensor BlockImpl::forward(torch::Tensor x) {
  x = x + attn_->forward(norm1_->forward(x));
  return x + mlp_->forward(norm2_->forward(x));
}

PatchProjImpl::PatchProjImpl(int64_t dim, int64_t tubelet, int64_t patch) {
  weight = register_parameter("weight", torch::empty({dim, 3, tubelet, patch, patch}));
  bias = register_parameter("bias", torch::zeros({dim}));
}

torch::Tensor PatchProjImpl::LinearWeight() const {
  return weight.permute({0, 2, 3, 4, 1}).reshape({weight.size(0), -1});
}

torch::Tensor PatchProjImpl::forward(const torch::Tensor& tokens) {
  return torch::nn::functional::linear(tokens, LinearWeight(), bias);
}

PatchEmbedImpl::PatchEmbedImpl(int64_t dim, int64_t tubelet, int64_t patch) {
  proj = register_module("proj", PatchProj(dim, tubelet, patch));
}

torch::Tensor NormalizeTokens(const torch::Tensor& tokens_u8) {
  // The per-channel constants, made once per device: building them on every call would copy
  // them from the host each time, and on a GPU such a copy waits for the queued work.
  static std::mutex mu;
  static auto* constants =
      new std::unordered_map<c10::Device, std::pair<torch::Tensor, torch::Tensor>>;
  torch::Tensor mean, inv_std;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = constants->find(tokens_u8.device());
    if (it == constants->end()) {
      const auto opts = torch::TensorOptions().dtype(torch::kFloat32);
      torch::Tensor m = torch::tensor({0.485 * 255, 0.456 * 255, 0.406 * 255}, opts);
      torch::Tensor s = 1.0 / torch::tensor({0.229 * 255, 0.224 * 255, 0.225 * 255}, opts);
      it = constants
               ->emplace(tokens_u8.device(),
                         std::make_pair(m.to(tokens_u8.device()), s.to(tokens_u8.device())))
               .first;
    }
    mean = it->second.first;
    inv_std = it->second.second;
  }
  // Tokens hold (dt, dy, dx, c) values: the channel is the fastest axis.
  auto shape = tokens_u8.sizes().vec();
  torch::Tensor x = tokens_u8.to(torch::kFloat32).reshape({-1, 3});
  return ((x - mean) * inv_std).reshape(shape);
}

VisionTransformerImpl::VisionTransformerImpl(const VitConfig& config) : config_(config) {
  const int64_t d = config.embed_dim;
  patch_embed_ = register_module("patch_embed", PatchEmbed(d, config.tubelet, config.patch));
  pos_embed = register_parameter(
      "pos_embed",
      SinCos3d(d, config.grid_t(), config.grid_h(), config.grid_w(), config.uniform_power)
          .unsqueeze(0),
      /*requires_grad=*/false);
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.depth; ++i) {
    blocks_->push_back(Block(d, config.heads, config.mlp_ratio));
  }
  norm_ = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({d}).eps(1e-6)));
  InitWeights(*this);
}

torch::Tensor VisionTransformerImpl::forward(const torch::Tensor& tokens,
                                             const torch::Tensor& context) {
  TORCH_CHECK(tokens.dim() == 3 && tokens.size(1) == config_.num_tokens() &&
                  tokens.size(2) == config_.token_values(),
              "encoder input: expected tokens [B, ", config_.num_tokens(), ", ",
              config_.token_values(), "], got ", tokens.sizes());
  torch::Tensor x = tokens;
  torch::Tensor pos = pos_embed.expand({x.size(0), -1, -1});
  if (context.defined()) {
    x = GatherTokens(x, context);
    pos = GatherTokens(pos, context);
  }
  if (x.scalar_type() == torch::kUInt8) x = NormalizeTokens(x);
  x = patch_embed_->forward(x) + pos;
  for (const auto& block : *blocks_) x = block->as<Block>()->forward(x);
  return norm_->forward(x);
}

int64_t VisionTransformerImpl::NumTrainableParameters() const { return CountTrainable(*this); }

torch::Tensor GatherTokens(const torch::Tensor& x, const torch::Tensor& idx) {
  return x.gather(1, idx.unsqueeze(-1).expand({-1, -1, x.size(2)}));
}

void InitWeights(torch::nn::Module& module, double std) {
  torch::NoGradGuard no_grad;
  for (auto& m : module.modules(/*include_self=*/false)) {
    if (auto* linear = m->as<torch::nn::Linear>()) {
      linear->weight.normal_(0, std).clamp_(-2, 2);
      if (linear->bias.defined()) linear->bias.zero_();
    } else if (auto* proj = m->as<PatchProj>()) {
      proj->weight.normal_(0, std).clamp_(-2, 2);
      proj->bias.zero_();
    } else if (auto* ln = m->as<torch::nn::LayerNorm>()) {
      ln->weight.fill_(1);
      ln->bias.zero_();
    }
  }
}

int64_t CountTrainable(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) {
    if (p.requires_grad()) n += p.numel();
  }
  return n;
}

}  // namespace vjepa::model
