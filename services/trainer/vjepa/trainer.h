// One V-JEPA training step (docs/vjepa-spec.md §4): the EMA target encoder on every token without
// grad, layer-normed; per mask config the context encoder on the context tokens and the
// predictor at the target positions; L1 (|.|^exponent) averaged over the mask configs; AdamW
// with four parameter groups; gradient clipping from the configured update on; the EMA update.
#ifndef VJEPA_SERVICES_TRAINER_VJEPA_TRAINER_H_
#define VJEPA_SERVICES_TRAINER_VJEPA_TRAINER_H_

#include <torch/nn/module.h>
#include <torch/optim/adamw.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/core/status.h"
#include "services/trainer/model/predictor.h"
#include "services/trainer/model/vit.h"
#include "services/trainer/vjepa/schedules.h"

namespace vjepa::jepa {

// One mask config's index lists for the batch: int64 [B, Kc] and [B, Kt].
struct MaskIndices {
  torch::Tensor context;
  torch::Tensor target;
};

// A batch as the dataworker sends it: uint8 tokens [B, N, P] and one MaskIndices per mask
// config, in spec order.
struct Batch {
  torch::Tensor tokens;
  std::vector<MaskIndices> masks;
};

enum class Target { kFeatures, kPixels };

// The arithmetic of the forward passes. kBfloat16: bf16 autocast on the trainer's device (matrix
// products and attention in bf16), with float32 weights, gradients and AdamW state throughout.
enum class Precision { kFloat32, kBfloat16 };

struct TrainerConfig {
  model::VitConfig vit;
  model::PredictorConfig predictor;
  ScheduleConfig schedule;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
  double clip = 10.0;                 // 0: never clip
  int64_t clip_start_update = 12301;  // clip from this update on (docs/vjepa-spec.md §9)
  double loss_exponent = 1.0;
  Target target = Target::kFeatures;
  Precision precision = Precision::kFloat32;
  // Wait for the device at each phase boundary of a step, so that StepStats' time split is the
  // device's and not the host's queueing (a GPU runs behind the host). Costs a little speed.
  bool synchronous_timing = false;
};

struct StepStats {
  int64_t update = 0;  // the update this step made (1-based)
  double loss = 0;
  std::vector<double> loss_per_mask;
  double lr = 0, wd = 0, momentum = 0;
  double encoder_grad_norm = 0, predictor_grad_norm = 0;  // 0 before clipping starts
  // The collapse indicator (feature target only, else 0): the target encoder's output at the
  // target tokens of every mask config, before the loss's layer norm; its standard deviation over
  // all those tokens of the batch per channel, averaged over the channels.
  double target_feature_std = 0;
  // Where the time went, in seconds (on an accelerator: the host's, unless synchronous_timing).
  double target_s = 0, context_s = 0, predictor_s = 0, backward_s = 0, optimizer_s = 0;
};

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

class Trainer {
 public:
  // The models and the optimizer state live on `device` (CPU or a CUDA GPU).
  static core::StatusOr<std::unique_ptr<Trainer>> Create(const TrainerConfig& config,
                                                         torch::Device device = torch::kCPU);

  // Checks the batch's shapes and index ranges, then trains on it. The batch may be on the host
  // (it is copied to the device) or already on the device (BatchUploader in device.h).
  core::StatusOr<StepStats> Step(const Batch& batch);
  // Called by Step after the backward pass, before clipping and the optimizer step, with the
  // trainable parameters, the encoder's then the predictor's (their .grad() set): e.g. the gradient
  // all-reduce of several trainers. An error ends the step before the update: no parameter changes
  // and updates() stays. Empty: none.
  using GradientHook = std::function<core::Status(const std::vector<torch::Tensor>& params)>;
  void SetGradientHook(GradientHook hook) { gradient_hook_ = std::move(hook); }
  // Updates done so far (the data position: the next step consumes batch `updates()`).
  int64_t updates() const { return updates_; }

  model::VisionTransformer& encoder() { return encoder_; }
  model::VisionTransformer& target_encoder() { return target_; }
  model::Predictor& predictor() { return predictor_; }
  const TrainerConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  // TrainerConfig::synchronous_timing, switched between steps (e.g. for a few profiled steps).
  void set_synchronous_timing(bool on) { config_.synchronous_timing = on; }

  // Everything a resume needs, under the checkpoint names: encoder.*, predictor.*,
  // target_encoder.* (the reference state_dict keys) and optim.{exp_avg,exp_avg_sq}.<group
  // param name>, optim.step (one int64 per parameter).
  NamedTensors State() const;
  core::Status LoadState(const NamedTensors& state, int64_t updates);

  // The four AdamW groups in optimizer order: encoder and predictor weights (scheduled weight
  // decay), then their biases and 1-D parameters (none).
  struct ParamGroup {
    std::vector<std::string> names;
    bool decay = false;
  };
  const std::vector<ParamGroup>& ParamGroups() const { return groups_; }
  // The predictor's sizes as built (output_dim set for the pixel target).
  const model::PredictorConfig& predictor_config() const { return predictor_config_; }

 private:
  Trainer(const TrainerConfig& config, torch::Device device);
  core::Status CheckBatch(const Batch& batch) const;
  // (name, parameter) of the trainable parameters, in optimizer order.
  NamedTensors OptimizedParameters() const;

  TrainerConfig config_;
  torch::Device device_;
  model::VisionTransformer encoder_{nullptr}, target_{nullptr};
  model::Predictor predictor_{nullptr};
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  std::vector<ParamGroup> groups_;
  // The trainable parameters of each model, clipped separately.
  std::vector<torch::Tensor> encoder_params_, predictor_params_;
  std::vector<torch::Tensor> trainable_params_;  // both, for the gradient hook
  // The target encoder's parameters and the encoder's (detached), pairwise, for the EMA.
  std::vector<torch::Tensor> target_params_, ema_sources_;
  GradientHook gradient_hook_;
  model::PredictorConfig predictor_config_;
  int64_t updates_ = 0;
};

}  // namespace vjepa::jepa

#endif  // VJEPA_SERVICES_TRAINER_VJEPA_TRAINER_H_
