#include "services/trainer/probe/probe_trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <exception>
#include <sstream>
#include <utility>

namespace vjepa::probe {
namespace {

constexpr double kPi = 3.14159265358979323846;

std::string Shape(const torch::Tensor& t) {
  std::ostringstream os;
  os << t.sizes();
  return os.str();
}

torch::optim::AdamWOptions& GroupOptions(torch::optim::AdamW& optimizer, size_t group) {
  return static_cast<torch::optim::AdamWOptions&>(optimizer.param_groups()[group].options());
}

core::Status CheckLabels(const torch::Tensor& labels, int64_t batch, int64_t num_classes) {
  if (!labels.defined() || labels.dim() != 1 || labels.size(0) != batch) {
    return core::InvalidArgumentError("probe: labels must be [" + std::to_string(batch) +
                                      "], got " + (labels.defined() ? Shape(labels) : "none"));
  }
  if (!c10::isIntegralType(labels.scalar_type(), /*includeBool=*/false)) {
    return core::InvalidArgumentError("probe: labels must be integer class indices");
  }
  if (batch > 0) {
    const int64_t lo = labels.min().item<int64_t>();
    const int64_t hi = labels.max().item<int64_t>();
    if (lo < 0 || hi >= num_classes) {
      return core::InvalidArgumentError("probe: label " + std::to_string(lo < 0 ? lo : hi) +
                                        " is outside [0, " + std::to_string(num_classes) + ")");
    }
  }
  return core::OkStatus();
}

constexpr size_t kDecayGroup = 0;
constexpr size_t kNoDecayGroup = 1;

}  // namespace

core::Status ValidateProbeTrainConfig(const ProbeTrainConfig& c) {
  if (c.total_steps <= 0) {
    return core::InvalidArgumentError("probe config: total_steps must be positive, got " +
                                      std::to_string(c.total_steps));
  }
  if (c.warmup_steps < 0 || c.warmup_steps > c.total_steps) {
    return core::InvalidArgumentError("probe config: warmup_steps " +
                                      std::to_string(c.warmup_steps) + " is outside [0, " +
                                      std::to_string(c.total_steps) + "]");
  }
  if (!(c.lr > 0.0) || c.start_lr < 0.0 || c.final_lr < 0.0 || c.final_lr > c.lr) {
    return core::InvalidArgumentError(
        "probe config: need lr > 0, start_lr >= 0 and 0 <= final_lr <= lr");
  }
  if (c.weight_decay < 0.0 || c.final_weight_decay < 0.0) {
    return core::InvalidArgumentError("probe config: weight decays must be >= 0");
  }
  if (!(c.grad_clip > 0.0)) {
    return core::InvalidArgumentError("probe config: grad_clip must be positive");
  }
  if (!(c.beta1 >= 0.0 && c.beta1 < 1.0) || !(c.beta2 >= 0.0 && c.beta2 < 1.0) || !(c.eps > 0.0)) {
    return core::InvalidArgumentError("probe config: need betas in [0, 1) and eps > 0");
  }
  return core::OkStatus();
}

double ProbeLrAt(const ProbeTrainConfig& c, int64_t step) {
  if (step < c.warmup_steps) {
    const double progress =
        static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, c.warmup_steps));
    return c.start_lr + progress * (c.lr - c.start_lr);
  }
  const double progress = static_cast<double>(step - c.warmup_steps) /
                          static_cast<double>(std::max<int64_t>(1, c.total_steps - c.warmup_steps));
  return std::max(c.final_lr,
                  c.final_lr + (c.lr - c.final_lr) * 0.5 * (1.0 + std::cos(kPi * progress)));
}

double ProbeWeightDecayAt(const ProbeTrainConfig& c, int64_t step) {
  const double progress = static_cast<double>(step) / static_cast<double>(c.total_steps);
  const double wd = c.final_weight_decay + (c.weight_decay - c.final_weight_decay) * 0.5 *
                                               (1.0 + std::cos(kPi * progress));
  return c.final_weight_decay <= c.weight_decay ? std::max(c.final_weight_decay, wd)
                                                : std::min(c.final_weight_decay, wd);
}

int64_t ProbeStepsPerEpoch(int64_t num_samples, int64_t batch_size) {
  if (num_samples <= 0 || batch_size <= 0) return 0;
  return (num_samples + batch_size - 1) / batch_size;
}

ProbeParamGroups SplitProbeParams(const torch::nn::Module& module) {
  ProbeParamGroups groups;
  for (const auto& item : module.named_parameters(/*recurse=*/true)) {
    const bool no_decay = item.key().find("bias") != std::string::npos || item.value().dim() == 1;
    (no_decay ? groups.no_decay_names : groups.decay_names).push_back(item.key());
    (no_decay ? groups.no_decay : groups.decay).push_back(item.value());
  }
  return groups;
}

core::StatusOr<torch::Tensor> AverageViewProbabilities(
    const std::vector<torch::Tensor>& view_logits) {
  if (view_logits.empty()) {
    return core::InvalidArgumentError("probe: no views to average");
  }
  const torch::Tensor& first = view_logits.front();
  if (!first.defined() || first.dim() != 2) {
    return core::InvalidArgumentError("probe: view logits must be [B, C]");
  }
  torch::NoGradGuard no_grad;
  torch::Tensor sum = torch::zeros(first.sizes(), first.options().dtype(torch::kFloat));
  for (size_t v = 0; v < view_logits.size(); ++v) {
    const torch::Tensor& logits = view_logits[v];
    if (!logits.defined() || !logits.sizes().equals(first.sizes())) {
      return core::InvalidArgumentError("probe: logits of view " + std::to_string(v) + " are " +
                                        (logits.defined() ? Shape(logits) : "none") +
                                        ", expected " + Shape(first));
    }
    sum += torch::softmax(logits.to(torch::kFloat), /*dim=*/1);
  }
  return sum / static_cast<double>(view_logits.size());
}

core::StatusOr<double> Top1Accuracy(const torch::Tensor& scores, const torch::Tensor& labels) {
  if (!scores.defined() || scores.dim() != 2 || scores.size(0) == 0) {
    return core::InvalidArgumentError("probe: scores must be [B > 0, C]");
  }
  CORE_RETURN_IF_ERROR(CheckLabels(labels, scores.size(0), scores.size(1)));
  torch::NoGradGuard no_grad;
  const int64_t correct =
      scores.argmax(1).eq(labels.to(scores.device(), torch::kLong)).sum().item<int64_t>();
  return static_cast<double>(correct) / static_cast<double>(scores.size(0));
}

core::StatusOr<std::unique_ptr<ProbeTrainer>> ProbeTrainer::Create(ProbeClassifier classifier,
                                                                   const ProbeTrainConfig& config) {
  CORE_RETURN_IF_ERROR(ValidateProbeTrainConfig(config));
  if (classifier.is_empty()) {
    return core::InvalidArgumentError("probe trainer: no classifier");
  }
  ProbeParamGroups split = SplitProbeParams(*classifier);
  if (split.decay.empty() || split.no_decay.empty()) {
    return core::InvalidArgumentError(
        "probe trainer: the classifier needs both weights and biases (two optimiser groups)");
  }
  auto options = [&](double weight_decay) {
    auto o = std::make_unique<torch::optim::AdamWOptions>(ProbeLrAt(config, 1));
    o->betas(std::make_tuple(config.beta1, config.beta2))
        .eps(config.eps)
        .weight_decay(weight_decay)
        .amsgrad(false);
    return o;
  };
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(split.decay, options(ProbeWeightDecayAt(config, 1)));
  groups.emplace_back(split.no_decay, options(0.0));
  auto optimizer = std::make_unique<torch::optim::AdamW>(std::move(groups));
  return std::unique_ptr<ProbeTrainer>(
      new ProbeTrainer(std::move(classifier), config, std::move(optimizer)));
}

ProbeTrainer::ProbeTrainer(ProbeClassifier classifier, const ProbeTrainConfig& config,
                           std::unique_ptr<torch::optim::AdamW> optimizer)
    : classifier_(std::move(classifier)),
      config_(config),
      optimizer_(std::move(optimizer)),
      shuffle_generator_(at::make_generator<at::CPUGeneratorImpl>(config.seed)) {}

core::Status ProbeTrainer::CheckViews(const std::vector<torch::Tensor>& views,
                                      int64_t batch) const {
  if (views.empty()) return core::InvalidArgumentError("probe: no views");
  const torch::Tensor param = classifier_->parameters().front();
  for (size_t v = 0; v < views.size(); ++v) {
    const torch::Tensor& t = views[v];
    const std::string name = "probe: tokens of view " + std::to_string(v);
    if (!t.defined() || t.dim() != 3 || t.size(0) != batch || t.size(1) == 0 ||
        t.size(2) != classifier_->embed_dim()) {
      return core::InvalidArgumentError(name + " must be [" + std::to_string(batch) + ", N > 0, " +
                                        std::to_string(classifier_->embed_dim()) + "], got " +
                                        (t.defined() ? Shape(t) : "none"));
    }
    if (!t.is_floating_point()) {
      return core::InvalidArgumentError(name + " must be floating point");
    }
    if (t.device() != param.device()) {
      return core::InvalidArgumentError(name + " are on " + t.device().str() +
                                        " but the probe is on " + param.device().str());
    }
  }
  return core::OkStatus();
}

core::StatusOr<std::vector<torch::Tensor>> ProbeTrainer::Extract(
    const FeatureExtractor& extract, const std::vector<torch::Tensor>& inputs) const {
  if (!extract) return core::InvalidArgumentError("probe: no feature extractor");
  std::vector<torch::Tensor> features;
  features.reserve(inputs.size());
  torch::NoGradGuard no_grad;
  for (size_t v = 0; v < inputs.size(); ++v) {
    try {
      features.push_back(extract(inputs[v]).detach());
    } catch (const std::exception& e) {
      return core::InternalError("probe: feature extractor failed on view " + std::to_string(v) +
                                 ": " + e.what());
    }
  }
  return features;
}

core::StatusOr<ProbeStepStats> ProbeTrainer::TrainStep(const torch::Tensor& features,
                                                       const torch::Tensor& labels) {
  return TrainStep(std::vector<torch::Tensor>{features}, labels);
}

core::StatusOr<ProbeStepStats> ProbeTrainer::TrainStep(
    const std::vector<torch::Tensor>& view_features, const torch::Tensor& labels) {
  if (steps_done_ >= config_.total_steps) {
    return core::FailedPreconditionError("probe trainer: the schedule of " +
                                         std::to_string(config_.total_steps) +
                                         " steps is finished");
  }
  const int64_t batch =
      view_features.empty() || !view_features.front().defined() ? 0 : view_features.front().size(0);
  if (batch == 0) return core::InvalidArgumentError("probe: empty batch");
  CORE_RETURN_IF_ERROR(CheckViews(view_features, batch));
  CORE_RETURN_IF_ERROR(CheckLabels(labels, batch, classifier_->num_classes()));

  ProbeStepStats stats;
  stats.step = steps_done_ + 1;
  stats.lr = ProbeLrAt(config_, stats.step);
  stats.weight_decay = ProbeWeightDecayAt(config_, stats.step);
  stats.count = batch;
  try {
    GroupOptions(*optimizer_, kDecayGroup).lr(stats.lr).weight_decay(stats.weight_decay);
    GroupOptions(*optimizer_, kNoDecayGroup).lr(stats.lr).weight_decay(0.0);
    const torch::Tensor param = classifier_->parameters().front();
    const torch::Tensor targets = labels.to(param.device(), torch::kLong);
    classifier_->train();
    // Gradients are cleared before the backward pass (not after the update), so the clipped
    // gradients of the last update stay readable.
    optimizer_->zero_grad();
    std::vector<torch::Tensor> logits;
    torch::Tensor loss;
    for (const torch::Tensor& view : view_features) {
      logits.push_back(classifier_->forward(view.to(param.scalar_type())));
      torch::Tensor view_loss = torch::nn::functional::cross_entropy(logits.back(), targets);
      loss = loss.defined() ? loss + view_loss : view_loss;
    }
    loss = loss / static_cast<double>(logits.size());
    loss.backward();
    stats.grad_norm =
        torch::nn::utils::clip_grad_norm_(classifier_->parameters(), config_.grad_clip);
    optimizer_->step();
    stats.loss = loss.item<double>();
    torch::NoGradGuard no_grad;
    for (torch::Tensor& l : logits) l = l.detach();
    CORE_ASSIGN_OR_RETURN(torch::Tensor probs, AverageViewProbabilities(logits));
    stats.correct = probs.argmax(1).eq(targets).sum().item<int64_t>();
  } catch (const c10::Error& e) {
    return core::InternalError("probe trainer: update " + std::to_string(stats.step) +
                               " failed: " + e.what_without_backtrace());
  }
  steps_done_ = stats.step;
  return stats;
}

core::StatusOr<ProbeStepStats> ProbeTrainer::TrainStepOnInputs(
    const FeatureExtractor& extract, const std::vector<torch::Tensor>& view_inputs,
    const torch::Tensor& labels) {
  CORE_ASSIGN_OR_RETURN(std::vector<torch::Tensor> features, Extract(extract, view_inputs));
  return TrainStep(features, labels);
}

core::StatusOr<torch::Tensor> ProbeTrainer::Predict(
    const std::vector<torch::Tensor>& view_features) {
  const int64_t batch =
      view_features.empty() || !view_features.front().defined() ? 0 : view_features.front().size(0);
  CORE_RETURN_IF_ERROR(CheckViews(view_features, batch));
  std::vector<torch::Tensor> logits;
  try {
    torch::NoGradGuard no_grad;
    classifier_->eval();
    const c10::ScalarType dtype = classifier_->parameters().front().scalar_type();
    for (const torch::Tensor& view : view_features) {
      logits.push_back(classifier_->forward(view.to(dtype)));
    }
  } catch (const c10::Error& e) {
    return core::InternalError(std::string("probe: prediction failed: ") +
                               e.what_without_backtrace());
  }
  return AverageViewProbabilities(logits);
}

core::StatusOr<torch::Tensor> ProbeTrainer::PredictOnInputs(
    const FeatureExtractor& extract, const std::vector<torch::Tensor>& view_inputs) {
  CORE_ASSIGN_OR_RETURN(std::vector<torch::Tensor> features, Extract(extract, view_inputs));
  return Predict(features);
}

core::StatusOr<ProbeFitSummary> ProbeTrainer::Fit(const torch::Tensor& features,
                                                  const torch::Tensor& labels, int64_t batch_size,
                                                  int64_t epochs) {
  if (!features.defined() || features.dim() != 3 || features.size(0) == 0) {
    return core::InvalidArgumentError("probe fit: features must be [S > 0, N, D]");
  }
  if (batch_size <= 0 || epochs < 0) {
    return core::InvalidArgumentError("probe fit: need batch_size > 0 and epochs >= 0");
  }
  const int64_t num_samples = features.size(0);
  CORE_RETURN_IF_ERROR(CheckLabels(labels, num_samples, classifier_->num_classes()));
  const int64_t needed = epochs * ProbeStepsPerEpoch(num_samples, batch_size);
  if (steps_done_ + needed > config_.total_steps) {
    return core::FailedPreconditionError(
        "probe fit: " + std::to_string(needed) + " more updates exceed the schedule of " +
        std::to_string(config_.total_steps) + " (" + std::to_string(steps_done_) + " done)");
  }
  ProbeFitSummary summary;
  for (int64_t epoch = 0; epoch < epochs; ++epoch) {
    const torch::Tensor order =
        torch::randperm(num_samples, shuffle_generator_, torch::kLong).to(features.device());
    int64_t correct = 0;
    for (int64_t start = 0; start < num_samples; start += batch_size) {
      const torch::Tensor idx = order.slice(0, start, std::min(start + batch_size, num_samples));
      CORE_ASSIGN_OR_RETURN(ProbeStepStats stats,
                            TrainStep(features.index_select(0, idx),
                                      labels.index_select(0, idx.to(labels.device()))));
      correct += stats.correct;
      summary.last_loss = stats.loss;
      ++summary.steps;
    }
    summary.train_top1 = static_cast<double>(correct) / static_cast<double>(num_samples);
  }
  return summary;
}

core::StatusOr<double> ProbeTrainer::Evaluate(const std::vector<torch::Tensor>& view_features,
                                              const torch::Tensor& labels, int64_t batch_size) {
  if (view_features.empty() || !view_features.front().defined() ||
      view_features.front().dim() != 3 || view_features.front().size(0) == 0) {
    return core::InvalidArgumentError("probe evaluate: views must be [S > 0, N, D]");
  }
  if (batch_size <= 0) return core::InvalidArgumentError("probe evaluate: batch_size <= 0");
  const int64_t num_samples = view_features.front().size(0);
  CORE_RETURN_IF_ERROR(CheckViews(view_features, num_samples));
  CORE_RETURN_IF_ERROR(CheckLabels(labels, num_samples, classifier_->num_classes()));
  int64_t correct = 0;
  for (int64_t start = 0; start < num_samples; start += batch_size) {
    const int64_t end = std::min(start + batch_size, num_samples);
    std::vector<torch::Tensor> views;
    for (const torch::Tensor& v : view_features) views.push_back(v.slice(0, start, end));
    CORE_ASSIGN_OR_RETURN(torch::Tensor probs, Predict(views));
    correct += probs.argmax(1)
                   .eq(labels.slice(0, start, end).to(probs.device(), torch::kLong))
                   .sum()
                   .item<int64_t>();
  }
  return static_cast<double>(correct) / static_cast<double>(num_samples);
}

}  // namespace vjepa::probe
