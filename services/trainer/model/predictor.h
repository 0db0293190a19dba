// The V-JEPA predictor (docs/vjepa-spec.md §2), with the reference's parameter names
// (predictor_embed, mask_tokens.0/1, predictor_pos_embed, predictor_blocks.N.*, predictor_norm,
// predictor_proj).
#ifndef VJEPA_SERVICES_TRAINER_MODEL_PREDICTOR_H_
#define VJEPA_SERVICES_TRAINER_MODEL_PREDICTOR_H_

#include <torch/nn/modules/container/parameterlist.h>

#include "services/trainer/model/vit.h"

namespace vjepa::model {

class PredictorImpl : public torch::nn::Module {
 public:
  PredictorImpl(const VitConfig& vit, const PredictorConfig& config);

  // context_features: encoder output at the context positions [B, Kc, D];
  // context, target: int64 token indices [B, Kc], [B, Kt]; mask_index selects the mask token.
  // Returns the predictions at the target positions [B, Kt, D] (or [B, Kt, output_dim]).
  torch::Tensor forward(const torch::Tensor& context_features, const torch::Tensor& context,
                        const torch::Tensor& target, int64_t mask_index);

  int64_t NumTrainableParameters() const { return CountTrainable(*this); }

  torch::Tensor predictor_pos_embed;  // [1, N, width], fixed

 private:
  PredictorConfig config_;
  torch::nn::Linear embed_{nullptr}, proj_{nullptr};
  torch::nn::ParameterList mask_tokens_{nullptr};
  torch::nn::ModuleList blocks_{nullptr};
  torch::nn::LayerNorm norm_{nullptr};
};
TORCH_MODULE(Predictor);

}  // namespace vjepa::model

#endif  // VJEPA_SERVICES_TRAINER_MODEL_PREDICTOR_H_
