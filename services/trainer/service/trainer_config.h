// The job spec (common/spec) as the LibTorch trainer's configuration: model and predictor sizes,
// the LR/WD/EMA schedules over optim.steps, AdamW, clipping and the loss.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_TRAINER_CONFIG_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_TRAINER_CONFIG_H_

#include "absl/status/statusor.h"
#include "common/spec/job_spec.h"
#include "services/trainer/vjepa/trainer.h"

namespace vjepa::trainer {

// INVALID_ARGUMENT naming the field for a spec the trainer cannot run (a probe job, a loss
// regularizer).
absl::StatusOr<jepa::TrainerConfig> TrainerConfigFromSpec(const spec::JobSpec& spec);

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_TRAINER_CONFIG_H_
