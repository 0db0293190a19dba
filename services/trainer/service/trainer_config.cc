#include "services/trainer/service/trainer_config.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vjepa::trainer {

absl::StatusOr<jepa::TrainerConfig> TrainerConfigFromSpec(const spec::JobSpec& spec) {
  if (spec.kind != spec::JobKind::kPretrain) {
    return absl::InvalidArgumentError(absl::StrCat("kind: the trainer runs pretrain jobs, got ",
                                                   std::string(ToString(spec.kind))));
  }
  if (spec.loss.reg_coeff != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("loss.reg_coeff: not supported by the trainer, got ", spec.loss.reg_coeff));
  }
  const spec::ModelSpec& m = spec.model;
  jepa::TrainerConfig c;
  c.vit.embed_dim = m.embed_dim;
  c.vit.depth = m.depth;
  c.vit.heads = m.heads;
  c.vit.mlp_ratio = m.mlp_ratio;
  c.vit.frames = m.frames;
  c.vit.crop = m.crop;
  c.vit.patch = m.patch;
  c.vit.tubelet = m.tubelet;
  c.vit.uniform_power = m.uniform_power;

  c.predictor.width = m.predictor.width;
  c.predictor.depth = m.predictor.depth;
  c.predictor.heads = m.predictor.heads;
  c.predictor.mlp_ratio = m.mlp_ratio;
  c.predictor.num_mask_tokens = static_cast<int64_t>(spec.mask.size());
  c.predictor.zero_init_mask_tokens = m.zero_init_mask_tokens;

  const spec::OptimSpec& o = spec.optim;
  c.schedule.warmup_steps = spec::WarmupSteps(spec);
  c.schedule.length = spec::ScheduleLength(spec);
  c.schedule.lr_start = o.lr.start;
  c.schedule.lr_peak = o.lr.peak;
  c.schedule.lr_final = o.lr.final;
  c.schedule.wd_start = o.wd.start;
  c.schedule.wd_final = o.wd.final;
  c.schedule.ema_start = o.ema.start;
  c.schedule.ema_final = o.ema.final;
  c.beta1 = o.betas[0];
  c.beta2 = o.betas[1];
  c.eps = o.eps;
  c.clip = o.clip;
  c.clip_start_update = spec::ClipStartStep(spec);
  c.loss_exponent = spec.loss.exponent;
  c.target = spec.loss.target == spec::LossTarget::kPixels ? jepa::Target::kPixels
                                                           : jepa::Target::kFeatures;
  c.precision = spec.resources.precision == spec::Precision::kBfloat16 ? jepa::Precision::kBfloat16
                                                                       : jepa::Precision::kFloat32;
  return c;
}

}  // namespace vjepa::trainer
