#include "services/trainer/vjepa/trainer.h"

#include <c10/util/StringUtil.h>
#include <torch/nn/functional/normalization.h>
#include <torch/nn/utils/clip_grad.h>

#include <chrono>
#include <map>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>

#include "services/trainer/vjepa/device.h"

namespace vjepa::jepa {
namespace {

using Clock = std::chrono::steady_clock;

double Seconds(Clock::time_point since) {
  return std::chrono::duration<double>(Clock::now() - since).count();
}

// The reference's rule: biases and 1-D parameters get no weight decay.
bool DecayOf(const std::string& name, const torch::Tensor& p) {
  return name.find("bias") == std::string::npos && p.dim() != 1;
}

// Per-token normalised pixels (MAE): each token's P values, after the ImageNet normalisation,
// shifted to mean 0 and scaled to variance 1.
torch::Tensor PixelTargets(const torch::Tensor& tokens_u8) {
  torch::Tensor x = model::NormalizeTokens(tokens_u8);
  torch::Tensor mean = x.mean(-1, /*keepdim=*/true);
  torch::Tensor var = x.var(-1, /*unbiased=*/false, /*keepdim=*/true);
  return (x - mean) / (var + 1e-6).sqrt();
}

// The key of a parameter's state in torch::optim: the address of its TensorImpl, as text in
// LibTorch 1.13 and as the pointer itself in later versions.
using OptimizerStateKey =
    std::decay_t<decltype(std::declval<torch::optim::Optimizer&>().state())>::key_type;

template <typename Key>
Key KeyOf(const torch::Tensor& p) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;  // as torch::optim writes it
    text << p.unsafeGetTensorImpl();
    return text.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

OptimizerStateKey ParamKey(const torch::Tensor& p) { return KeyOf<OptimizerStateKey>(p); }

}  // namespace

Trainer::Trainer(const TrainerConfig& config, torch::Device device)
    : config_(config), device_(device) {}

core::StatusOr<std::unique_ptr<Trainer>> Trainer::Create(const TrainerConfig& config,
                                                         torch::Device device) {
  CORE_RETURN_IF_ERROR(model::Validate(config.predictor, config.vit));
  if (config.schedule.warmup_steps < 0 || config.schedule.length <= 0) {
    return core::InvalidArgumentError("schedule: warmup must be >= 0 and length > 0");
  }
  std::unique_ptr<Trainer> t(new Trainer(config, device));
  t->encoder_ = model::VisionTransformer(config.vit);
  t->target_ = model::VisionTransformer(config.vit);
  model::PredictorConfig pc = config.predictor;
  if (config.target == Target::kPixels) pc.output_dim = config.vit.token_values();
  t->predictor_ = model::Predictor(config.vit, pc);
  t->predictor_config_ = pc;
  {
    // The target encoder starts as a copy of the context encoder and is never trained.
    torch::NoGradGuard no_grad;
    auto src = t->encoder_->named_parameters();
    for (auto& item : t->target_->named_parameters()) {
      item.value().copy_(src[item.key()]);
      item.value().set_requires_grad(false);
    }
  }
  t->encoder_->to(device);
  t->target_->to(device);
  t->predictor_->to(device);
  // The EMA pairs, in parameter order (the two encoders have the same structure).
  for (const torch::Tensor& p : t->target_->parameters()) t->target_params_.push_back(p);
  for (const torch::Tensor& p : t->encoder_->parameters()) t->ema_sources_.push_back(p.detach());

  std::vector<torch::Tensor> groups[4];  // enc decay, pred decay, enc no decay, pred no decay
  t->groups_.resize(4);
  for (int g = 0; g < 4; ++g) t->groups_[g].decay = g < 2;
  for (const auto& [name, p] : t->OptimizedParameters()) {
    const bool predictor = name.rfind("predictor.", 0) == 0;
    const int g = (DecayOf(name, p) ? 0 : 2) + (predictor ? 1 : 0);
    groups[g].push_back(p);
    t->groups_[g].names.push_back(name);
    (predictor ? t->predictor_params_ : t->encoder_params_).push_back(p);
    t->trainable_params_.push_back(p);
  }
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (auto& g : groups) {
    auto options = std::make_unique<torch::optim::AdamWOptions>(config.schedule.lr_start);
    options->betas({config.beta1, config.beta2}).eps(config.eps).weight_decay(0);
    param_groups.emplace_back(g, std::move(options));
  }
  t->optimizer_ = std::make_unique<torch::optim::AdamW>(std::move(param_groups));
  return t;
}

NamedTensors Trainer::OptimizedParameters() const {
  NamedTensors out;
  for (const auto& item : encoder_->named_parameters()) {
    if (item.value().requires_grad()) out.emplace_back("encoder." + item.key(), item.value());
  }
  for (const auto& item : predictor_->named_parameters()) {
    if (item.value().requires_grad()) out.emplace_back("predictor." + item.key(), item.value());
  }
  return out;
}

core::Status Trainer::CheckBatch(const Batch& batch) const {
  const auto& v = config_.vit;
  const torch::Tensor& t = batch.tokens;
  if (!t.defined() || t.dim() != 3 || t.scalar_type() != torch::kUInt8 ||
      t.size(1) != v.num_tokens() || t.size(2) != v.token_values()) {
    return core::InvalidArgumentError(
        "batch tokens: expected uint8 [B, " + std::to_string(v.num_tokens()) + ", " +
        std::to_string(v.token_values()) + "], got " +
        (t.defined() ? c10::str(t.scalar_type(), " ", t.sizes()) : std::string("nothing")));
  }
  if (static_cast<int64_t>(batch.masks.size()) != config_.predictor.num_mask_tokens) {
    return core::InvalidArgumentError("batch masks: expected " +
                                      std::to_string(config_.predictor.num_mask_tokens) +
                                      " mask configs, got " + std::to_string(batch.masks.size()));
  }
  for (size_t i = 0; i < batch.masks.size(); ++i) {
    for (const torch::Tensor* idx : {&batch.masks[i].context, &batch.masks[i].target}) {
      const char* what = idx == &batch.masks[i].context ? "context" : "target";
      if (!idx->defined() || idx->dim() != 2 || idx->size(0) != t.size(0) || idx->size(1) < 1 ||
          idx->scalar_type() != torch::kInt64) {
        return core::InvalidArgumentError(
            "batch mask " + std::to_string(i) + " " + what +
            ": expected int64 [B, K >= 1] with B = " + std::to_string(t.size(0)));
      }
      if (idx->min().item<int64_t>() < 0 || idx->max().item<int64_t>() >= v.num_tokens()) {
        return core::InvalidArgumentError("batch mask " + std::to_string(i) + " " + what +
                                          ": token index out of [0, " +
                                          std::to_string(v.num_tokens()) + ")");
      }
    }
  }
  return core::OkStatus();
}

core::StatusOr<StepStats> Trainer::Step(const Batch& batch) {
  CORE_RETURN_IF_ERROR(CheckBatch(batch));
  StepStats stats;
  stats.update = updates_ + 1;
  const ScheduleValues sched = ScheduleAt(config_.schedule, stats.update);
  stats.lr = sched.lr;
  stats.wd = sched.wd;
  stats.momentum = sched.momentum;
  auto& groups = optimizer_->param_groups();
  for (size_t g = 0; g < groups.size(); ++g) {
    auto& o = static_cast<torch::optim::AdamWOptions&>(groups[g].options());
    o.lr(sched.lr).weight_decay(g < 2 ? sched.wd : 0.0);
  }

  const torch::Tensor tokens = batch.tokens.to(device_);
  // On an accelerator the host only queues the work: values are read back once, at the end.
  auto phase_end = [&] {
    if (config_.synchronous_timing) SynchronizeDevice(device_);
  };
  auto start = Clock::now();
  torch::Tensor targets, target_std;
  {
    torch::NoGradGuard no_grad;
    AutocastScope autocast(device_, config_.precision);
    if (config_.target == Target::kFeatures) {
      targets = target_->forward(tokens).to(torch::kFloat32);
      std::vector<torch::Tensor> picked;
      for (const MaskIndices& m : batch.masks) {
        picked.push_back(
            model::GatherTokens(targets, m.target.to(device_)).reshape({-1, targets.size(-1)}));
      }
      target_std = torch::cat(picked, 0).var(0, /*unbiased=*/false).sqrt().mean();
      targets = torch::nn::functional::layer_norm(
          targets, torch::nn::functional::LayerNormFuncOptions({targets.size(-1)}).eps(1e-5));
    } else {
      targets = PixelTargets(tokens);
    }
  }
  phase_end();
  stats.target_s = Seconds(start);

  torch::Tensor loss = torch::zeros({}, torch::TensorOptions().device(device_));
  std::vector<torch::Tensor> loss_per_mask;
  for (size_t i = 0; i < batch.masks.size(); ++i) {
    const torch::Tensor ctx = batch.masks[i].context.to(device_);
    const torch::Tensor tgt = batch.masks[i].target.to(device_);
    AutocastScope autocast(device_, config_.precision);
    start = Clock::now();
    torch::Tensor z = encoder_->forward(tokens, ctx);
    phase_end();
    stats.context_s += Seconds(start);
    start = Clock::now();
    torch::Tensor pred =
        predictor_->forward(z, ctx, tgt, static_cast<int64_t>(i)).to(torch::kFloat32);
    phase_end();
    stats.predictor_s += Seconds(start);
    torch::Tensor li = (pred - model::GatherTokens(targets, tgt)).abs();
    if (config_.loss_exponent != 1.0) li = li.pow(config_.loss_exponent);
    li = li.mean() / config_.loss_exponent;
    loss_per_mask.push_back(li.detach());
    loss = loss + li;
  }
  loss = loss / static_cast<double>(batch.masks.size());

  start = Clock::now();
  optimizer_->zero_grad();
  loss.backward();
  if (gradient_hook_) CORE_RETURN_IF_ERROR(gradient_hook_(trainable_params_));
  phase_end();
  stats.backward_s = Seconds(start);

  start = Clock::now();
  if (config_.clip > 0 && stats.update >= config_.clip_start_update) {
    stats.encoder_grad_norm = torch::nn::utils::clip_grad_norm_(encoder_params_, config_.clip);
    stats.predictor_grad_norm = torch::nn::utils::clip_grad_norm_(predictor_params_, config_.clip);
  }
  optimizer_->step();
  {
    // target = m * target + (1 - m) * encoder, over all tensors at once.
    torch::NoGradGuard no_grad;
    const double m = sched.momentum;
    torch::_foreach_mul_(target_params_, m);
    torch::_foreach_add_(target_params_, ema_sources_, 1.0 - m);
  }
  phase_end();
  stats.optimizer_s = Seconds(start);

  // One read-back for every value of the step.
  std::vector<torch::Tensor> values = loss_per_mask;
  values.push_back(loss.detach());
  if (target_std.defined()) values.push_back(target_std);
  const torch::Tensor host = torch::stack(values).to(torch::kCPU, torch::kFloat64);
  const double* v = host.data_ptr<double>();
  for (size_t i = 0; i < loss_per_mask.size(); ++i) stats.loss_per_mask.push_back(v[i]);
  stats.loss = v[loss_per_mask.size()];
  if (target_std.defined()) stats.target_feature_std = v[loss_per_mask.size() + 1];
  ++updates_;
  return stats;
}

NamedTensors Trainer::State() const {
  NamedTensors out;
  for (const auto& item : encoder_->named_parameters()) {
    out.emplace_back("encoder." + item.key(), item.value().detach());
  }
  for (const auto& item : predictor_->named_parameters()) {
    out.emplace_back("predictor." + item.key(), item.value().detach());
  }
  for (const auto& item : target_->named_parameters()) {
    out.emplace_back("target_encoder." + item.key(), item.value().detach());
  }
  const auto& state = optimizer_->state();
  for (const auto& [name, p] : OptimizedParameters()) {
    auto it = state.find(ParamKey(p));
    if (it == state.end()) continue;  // no step taken yet
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    out.emplace_back("optim.exp_avg." + name, s.exp_avg());
    out.emplace_back("optim.exp_avg_sq." + name, s.exp_avg_sq());
    out.emplace_back("optim.step." + name, torch::tensor({s.step()}, torch::kInt64));
  }
  return out;
}

core::Status Trainer::LoadState(const NamedTensors& state, int64_t updates) {
  std::map<std::string, torch::Tensor> by_name(state.begin(), state.end());
  torch::NoGradGuard no_grad;
  auto load = [&](torch::nn::Module& m, const std::string& prefix) -> core::Status {
    for (auto& item : m.named_parameters()) {
      auto it = by_name.find(prefix + item.key());
      if (it == by_name.end())
        return core::NotFoundError("checkpoint: no tensor " + prefix + item.key());
      if (it->second.sizes() != item.value().sizes()) {
        return core::InvalidArgumentError(c10::str("checkpoint: ", prefix, item.key(),
                                                   " has shape ", it->second.sizes(),
                                                   ", the model needs ", item.value().sizes()));
      }
      item.value().copy_(it->second);
    }
    return core::OkStatus();
  };
  CORE_RETURN_IF_ERROR(load(*encoder_, "encoder."));
  CORE_RETURN_IF_ERROR(load(*predictor_, "predictor."));
  CORE_RETURN_IF_ERROR(load(*target_, "target_encoder."));
  auto& opt_state = optimizer_->state();
  opt_state.clear();
  for (const auto& [name, p] : OptimizedParameters()) {
    auto avg = by_name.find("optim.exp_avg." + name);
    auto sq = by_name.find("optim.exp_avg_sq." + name);
    auto step = by_name.find("optim.step." + name);
    if (avg == by_name.end() || sq == by_name.end() || step == by_name.end()) {
      if (updates == 0) continue;
      return core::NotFoundError("checkpoint: no optimizer state for " + name);
    }
    if (avg->second.sizes() != p.sizes() || sq->second.sizes() != p.sizes()) {
      return core::InvalidArgumentError("checkpoint: optimizer state of " + name +
                                        " does not match its parameter's shape");
    }
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->step(step->second.item<int64_t>());
    s->exp_avg(avg->second.to(p.device()).clone());
    s->exp_avg_sq(sq->second.to(p.device()).clone());
    opt_state[ParamKey(p)] = std::move(s);
  }
  updates_ = updates;
  return core::OkStatus();
}

}  // namespace vjepa::jepa
