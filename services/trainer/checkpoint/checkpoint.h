// The V-JEPA training checkpoint (docs/architecture.md §6): one safetensors file holding the
// context encoder, the predictor and the EMA target encoder under the reference's state_dict
// names, the optimizer state, and the metadata needed to resume: step, generation, job spec,
// dataset identity. Independent of the model classes: callers pass named tensors, e.g. from
// ToNamedTensors(module->named_parameters()), and load them back with CopyStateInto.
//
// Tensor names in the file:
//   encoder.<key>, predictor.<key>, target_encoder.<key>   <key> = the reference's state_dict key
//                                                          (patch_embed.proj.weight, pos_embed,
//                                                          mask_tokens.0, predictor_blocks.0...)
//   optim.<state>.<param>   e.g. optim.exp_avg.encoder.blocks.0.attn.qkv.weight
// Metadata (all strings): format, format_version, step, generation, iterations_per_epoch, spec,
// dataset.size, dataset.manifest_sha256, dataset.recipe_version, optim.param_groups (JSON),
// x.<key> for extra entries, and tensor_sha256 (added by WriteSafetensors).
#ifndef VJEPA_SERVICES_TRAINER_CHECKPOINT_CHECKPOINT_H_
#define VJEPA_SERVICES_TRAINER_CHECKPOINT_CHECKPOINT_H_

#include <c10/util/Exception.h>
#include <torch/ordered_dict.h>
#include <torch/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/status.h"
#include "services/trainer/checkpoint/safetensors.h"

namespace vjepa::checkpoint {

inline constexpr char kCheckpointFormat[] = "vjepa-checkpoint";
inline constexpr int kCheckpointFormatVersion = 1;

inline constexpr char kEncoderPrefix[] = "encoder.";
inline constexpr char kPredictorPrefix[] = "predictor.";
inline constexpr char kTargetEncoderPrefix[] = "target_encoder.";
inline constexpr char kOptimizerPrefix[] = "optim.";

// One optimizer parameter group, as in a PyTorch optimizer's param_groups.
struct OptimizerParamGroup {
  std::vector<std::string> params;  // parameter names, e.g. "encoder.blocks.0.attn.qkv.weight"
  std::map<std::string, double> options;  // e.g. lr, weight_decay, beta1, beta2, eps, WD_exclude
};

struct OptimizerState {
  // "<state>.<param name>": e.g. "exp_avg.encoder.pos_embed", "step.encoder.pos_embed" (0-d).
  std::vector<NamedTensor> state;
  std::vector<OptimizerParamGroup> param_groups;
};

// Which data the run trains on; a resume refuses a different dataset.
struct DatasetIdentity {
  int64_t size = 0;             // number of videos
  std::string manifest_sha256;  // digest of the dataset manifest
  std::string recipe_version;   // version of the decoding/transform recipe
};

struct TrainingCheckpoint {
  // Module-local names (the reference's state_dict keys, without the model prefix).
  std::vector<NamedTensor> encoder;
  std::vector<NamedTensor> predictor;
  std::vector<NamedTensor> target_encoder;
  OptimizerState optimizer;
  int64_t step = 0;                  // optimizer updates done
  int64_t generation = 0;            // job generation that wrote the checkpoint
  int64_t iterations_per_epoch = 0;  // 0 when unknown
  std::string spec;                  // the job spec text
  DatasetIdentity dataset;
  std::map<std::string, std::string> extra;  // free-form, stored as metadata x.<key>
};

// The checkpoint as one tensor file (names prefixed, metadata as above) and back.
// FromTensorFile: INVALID_ARGUMENT when the file is not a V-JEPA checkpoint or its metadata is
// malformed, FAILED_PRECONDITION for a newer format version.
core::StatusOr<TensorFile> ToTensorFile(const TrainingCheckpoint& checkpoint);
core::StatusOr<TrainingCheckpoint> FromTensorFile(TensorFile file);

// Atomic, verified write and read (see WriteSafetensors / ReadSafetensors).
core::Status SaveCheckpoint(const std::string& path, const TrainingCheckpoint& checkpoint);
struct LoadOptions {
  bool optimizer_state = true;  // false: skip optimizer tensors (param_groups are still read)
};
core::StatusOr<TrainingCheckpoint> LoadCheckpoint(const std::string& path,
                                                  const LoadOptions& options = {});

// The tensors whose names start with prefix, with the prefix removed, in their order.
std::vector<NamedTensor> SelectByPrefix(const std::vector<NamedTensor>& tensors,
                                        std::string_view prefix);
// The same tensors with prefix prepended to every name.
std::vector<NamedTensor> AddPrefix(const std::vector<NamedTensor>& tensors,
                                   std::string_view prefix);

// A module's named_parameters() / named_buffers() as named tensors (sharing storage).
std::vector<NamedTensor> ToNamedTensors(const torch::OrderedDict<std::string, torch::Tensor>& dict);

// Copies saved values into destination tensors (e.g. a module's parameters, which share storage
// with it), like load_state_dict(strict=True): the names must match exactly both ways and every
// shape and dtype must agree, else INVALID_ARGUMENT naming the differences; nothing is copied
// then. `what` names the model in messages.
core::Status CopyStateInto(const std::vector<NamedTensor>& saved,
                           const std::vector<NamedTensor>& destination, std::string_view what);

}  // namespace vjepa::checkpoint

#endif  // VJEPA_SERVICES_TRAINER_CHECKPOINT_CHECKPOINT_H_
