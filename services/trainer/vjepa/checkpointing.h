// A Trainer as a training checkpoint (services/trainer/checkpoint) and back: the three models
// under the reference names, the AdamW state, the step, and the model sizes as metadata so that
// tools (vjepa-embed, vjepa-export) rebuild the modules without the job spec.
#ifndef VJEPA_SERVICES_TRAINER_VJEPA_CHECKPOINTING_H_
#define VJEPA_SERVICES_TRAINER_VJEPA_CHECKPOINTING_H_

#include <string>

#include "common/core/status.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/vjepa/trainer.h"

namespace vjepa::jepa {

struct CheckpointInfo {
  int64_t generation = 0;
  int64_t iterations_per_epoch = 0;
  std::string spec;
  checkpoint::DatasetIdentity dataset;
};

checkpoint::TrainingCheckpoint MakeCheckpoint(const Trainer& trainer, const CheckpointInfo& info);
// Loads every tensor strictly (names and shapes must match the trainer's models) and the step.
core::Status RestoreCheckpoint(const checkpoint::TrainingCheckpoint& ckpt, Trainer* trainer);

// The encoder sizes stored in a checkpoint's metadata (model.*, predictor.*).
core::Status ModelConfigOf(const checkpoint::TrainingCheckpoint& ckpt, model::VitConfig* vit,
                           model::PredictorConfig* predictor);

// One encoder of a checkpoint file, frozen for evaluation (vjepa-embed, probe jobs).
struct FrozenEncoder {
  model::VitConfig vit;                       // its sizes, from the checkpoint's metadata
  model::VisionTransformer encoder{nullptr};  // in eval mode
  int64_t step = 0;                           // the checkpoint's step
};
// Reads `path` (without the optimizer state) and loads its `part` ("target_encoder" or
// "encoder") strictly into a VisionTransformer of the checkpoint's sizes. Errors name the file;
// INVALID_ARGUMENT for another part.
core::StatusOr<FrozenEncoder> LoadFrozenEncoder(const std::string& path, const std::string& part);

}  // namespace vjepa::jepa

#endif  // VJEPA_SERVICES_TRAINER_VJEPA_CHECKPOINTING_H_
