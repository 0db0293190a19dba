// Trains and evaluates a probe (probe_classifier.h) on the tokens of a frozen encoder, as the
// reference's frozen evaluation does (docs/vjepa-spec.md §6): AdamW with two parameter groups
// (scheduled weight decay on weights including the query token; none on biases and 1-D
// parameters), lr warmup then cosine, weight decay cosine, gradient clipping at every update, loss
// averaged over views, accuracy from the softmax averaged over views.
//
// Steps are counted from 1 like the reference's schedulers, which step before each update: update
// #s uses ProbeLrAt(config, s) and ProbeWeightDecayAt(config, s).
#ifndef VJEPA_SERVICES_TRAINER_PROBE_PROBE_TRAINER_H_
#define VJEPA_SERVICES_TRAINER_PROBE_PROBE_TRAINER_H_

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/core/status.h"
#include "services/trainer/probe/probe_classifier.h"

namespace vjepa::probe {

struct ProbeTrainConfig {
  // Schedule length T (epochs × iterations per epoch, see ProbeStepsPerEpoch); required.
  int64_t total_steps = 0;
  int64_t warmup_steps = 0;
  double start_lr = 1e-3;  // lr at the start of the warmup
  double lr = 1e-3;        // reference lr, reached at the end of the warmup
  double final_lr = 0.0;
  double weight_decay = 0.01;  // video evals; image evals use 0.001
  double final_weight_decay = 1e-6;
  double grad_clip = 1.0;  // max total L2 norm of the gradients, applied at every update
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  uint64_t seed = 0;  // order of the samples in Fit()
};

core::Status ValidateProbeTrainConfig(const ProbeTrainConfig& config);

// lr of update #step (1-based): linear warmup start_lr → lr over warmup_steps, then cosine
// lr → final_lr over total_steps − warmup_steps (never below final_lr).
double ProbeLrAt(const ProbeTrainConfig& config, int64_t step);
// Weight decay of update #step (1-based): cosine weight_decay → final_weight_decay over
// total_steps, clamped at final_weight_decay.
double ProbeWeightDecayAt(const ProbeTrainConfig& config, int64_t step);

// Number of updates of one epoch over num_samples (the last, partial batch is kept).
int64_t ProbeStepsPerEpoch(int64_t num_samples, int64_t batch_size);

// The two optimiser groups: parameters whose name contains "bias" or that are 1-D get no weight
// decay; all others (weights, the [1, 1, D] query token) get the scheduled one.
struct ProbeParamGroups {
  std::vector<std::string> decay_names;
  std::vector<torch::Tensor> decay;
  std::vector<std::string> no_decay_names;
  std::vector<torch::Tensor> no_decay;
};
ProbeParamGroups SplitProbeParams(const torch::nn::Module& module);

// Softmax of each view's logits [B, C], averaged over the views → probabilities [B, C].
core::StatusOr<torch::Tensor> AverageViewProbabilities(
    const std::vector<torch::Tensor>& view_logits);
// Fraction in [0, 1] of rows whose arg-max of `scores` [B, C] equals `labels` [B].
core::StatusOr<double> Top1Accuracy(const torch::Tensor& scores, const torch::Tensor& labels);

// Produces encoder tokens [B, N, D] from one batch input (e.g. a frozen encoder over clips). The
// trainer calls it under torch::NoGradGuard.
using FeatureExtractor = std::function<torch::Tensor(const torch::Tensor& batch_input)>;

struct ProbeStepStats {
  int64_t step = 0;  // 1-based number of this update
  double lr = 0.0;
  double weight_decay = 0.0;
  double loss = 0.0;       // cross-entropy averaged over the views
  double grad_norm = 0.0;  // total L2 norm before clipping
  int64_t correct = 0;     // top-1 hits of the view-averaged softmax
  int64_t count = 0;
};

struct ProbeFitSummary {
  int64_t steps = 0;
  double last_loss = 0.0;
  double train_top1 = 0.0;  // over the samples of the last epoch
};

class ProbeTrainer {
 public:
  // Takes a probe already on its device; the optimiser holds its parameters from here on.
  static core::StatusOr<std::unique_ptr<ProbeTrainer>> Create(ProbeClassifier classifier,
                                                              const ProbeTrainConfig& config);

  // One update on tokens [B, N, D] with labels [B] (class indices). Fails with
  // FAILED_PRECONDITION past config.total_steps.
  core::StatusOr<ProbeStepStats> TrainStep(const torch::Tensor& features,
                                           const torch::Tensor& labels);
  // One update on several views of the same samples, each [B, N_v, D]; the loss is the mean of
  // the per-view losses.
  core::StatusOr<ProbeStepStats> TrainStep(const std::vector<torch::Tensor>& view_features,
                                           const torch::Tensor& labels);
  // As above with the tokens of each view produced by `extract` from `view_inputs`.
  core::StatusOr<ProbeStepStats> TrainStepOnInputs(const FeatureExtractor& extract,
                                                   const std::vector<torch::Tensor>& view_inputs,
                                                   const torch::Tensor& labels);

  // Class probabilities [B, C], softmax averaged over the views (eval mode, no grad).
  core::StatusOr<torch::Tensor> Predict(const std::vector<torch::Tensor>& view_features);
  core::StatusOr<torch::Tensor> PredictOnInputs(const FeatureExtractor& extract,
                                                const std::vector<torch::Tensor>& view_inputs);

  // `epochs` passes over features [S, N, D] / labels [S] in batches of batch_size, each pass in
  // an order drawn from config.seed.
  core::StatusOr<ProbeFitSummary> Fit(const torch::Tensor& features, const torch::Tensor& labels,
                                      int64_t batch_size, int64_t epochs);
  // Top-1 accuracy (fraction) over a set given as views [S, N_v, D] with labels [S].
  core::StatusOr<double> Evaluate(const std::vector<torch::Tensor>& view_features,
                                  const torch::Tensor& labels, int64_t batch_size);

  int64_t steps_done() const { return steps_done_; }
  const ProbeTrainConfig& config() const { return config_; }
  ProbeClassifier& classifier() { return classifier_; }
  torch::optim::AdamW& optimizer() { return *optimizer_; }

 private:
  ProbeTrainer(ProbeClassifier classifier, const ProbeTrainConfig& config,
               std::unique_ptr<torch::optim::AdamW> optimizer);
  core::Status CheckViews(const std::vector<torch::Tensor>& views, int64_t batch) const;
  core::StatusOr<std::vector<torch::Tensor>> Extract(
      const FeatureExtractor& extract, const std::vector<torch::Tensor>& inputs) const;

  ProbeClassifier classifier_;
  ProbeTrainConfig config_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  at::Generator shuffle_generator_;
  int64_t steps_done_ = 0;
};

}  // namespace vjepa::probe

#endif  // VJEPA_SERVICES_TRAINER_PROBE_PROBE_TRAINER_H_
