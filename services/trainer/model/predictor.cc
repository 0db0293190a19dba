#include "services/trainer/model/predictor.h"

#include "services/trainer/model/sincos.h"

namespace vjepa::model {

PredictorImpl::PredictorImpl(const VitConfig& vit, const PredictorConfig& config)
    : config_(config) {
  const int64_t w = config.width;
  embed_ = register_module("predictor_embed", torch::nn::Linear(vit.embed_dim, w));
  mask_tokens_ = register_module("mask_tokens", torch::nn::ParameterList());
  for (int64_t i = 0; i < config.num_mask_tokens; ++i) {
    mask_tokens_->append(torch::zeros({1, 1, w}));
  }
  predictor_pos_embed = register_parameter(
      "predictor_pos_embed",
      SinCos3d(w, vit.grid_t(), vit.grid_h(), vit.grid_w(), vit.uniform_power).unsqueeze(0),
      /*requires_grad=*/false);
  blocks_ = register_module("predictor_blocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.depth; ++i) {
    blocks_->push_back(Block(w, config.heads, config.mlp_ratio));
  }
  norm_ = register_module("predictor_norm",
                          torch::nn::LayerNorm(torch::nn::LayerNormOptions({w}).eps(1e-6)));
  const int64_t out = config.output_dim > 0 ? config.output_dim : vit.embed_dim;
  proj_ = register_module("predictor_proj", torch::nn::Linear(w, out));
  InitWeights(*this);
  if (!config.zero_init_mask_tokens) {
    torch::NoGradGuard no_grad;
    for (auto& t : mask_tokens_->parameters()) t.normal_(0, 0.02).clamp_(-2, 2);
  }
}

torch::Tensor PredictorImpl::forward(const torch::Tensor& context_features,
                                     const torch::Tensor& context, const torch::Tensor& target,
                                     int64_t mask_index) {
  TORCH_CHECK(mask_index >= 0 && mask_index < config_.num_mask_tokens, "predictor: mask index ",
              mask_index, " out of range [0, ", config_.num_mask_tokens, ")");
  const int64_t b = context_features.size(0);
  torch::Tensor pos = predictor_pos_embed.expand({b, -1, -1});
  torch::Tensor x = embed_->forward(context_features) + GatherTokens(pos, context);
  torch::Tensor mask_token = mask_tokens_[mask_index];
  torch::Tensor targets = mask_token.expand({b, target.size(1), -1}) + GatherTokens(pos, target);
  const int64_t n_context = x.size(1);
  x = torch::cat({x, targets}, 1);
  for (const auto& block : *blocks_) x = block->as<Block>()->forward(x);
  x = norm_->forward(x).narrow(1, n_context, target.size(1));
  return proj_->forward(x);
}

}  // namespace vjepa::model
