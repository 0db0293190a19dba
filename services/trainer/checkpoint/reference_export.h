// Export of a training checkpoint in the reference's own layout (facebookresearch/jepa): a
// `.pth.tar` that Python's torch.load reads as
//   {"encoder": {"module.backbone.<key>": tensor, ...}, "predictor": {...},
//    "target_encoder": {...}, "epoch": int}
// so that the reference's resume code loads the three dicts strictly and its frozen evaluation
// reads checkpoint["epoch"] (docs/vjepa-spec.md §9). The archive is the zip format of
// torch.save / torch::pickle_save; its dicts carry no TorchScript type tags, so
// torch.load(weights_only=True) accepts it too.
#ifndef VJEPA_SERVICES_TRAINER_CHECKPOINT_REFERENCE_EXPORT_H_
#define VJEPA_SERVICES_TRAINER_CHECKPOINT_REFERENCE_EXPORT_H_

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "common/core/status.h"
#include "services/trainer/checkpoint/checkpoint.h"

namespace vjepa::checkpoint {

inline constexpr char kReferenceKeyPrefix[] = "module.backbone.";

// The epoch the reference would record: step / iterations_per_epoch (completed epochs), or the
// step itself when iterations_per_epoch is unknown (0).
int64_t ReferenceEpoch(const TrainingCheckpoint& checkpoint);

// The dict described above. FAILED_PRECONDITION when a model has no tensors or the patch
// embedding weight is not a convolution weight (the reference's Conv3d/Conv2d shape).
core::StatusOr<c10::IValue> ToReferenceDict(const TrainingCheckpoint& checkpoint);

struct ReferenceExportSummary {
  int64_t epoch = 0;
  size_t encoder_tensors = 0;
  size_t predictor_tensors = 0;
  size_t target_encoder_tensors = 0;
  uint64_t bytes = 0;  // size of the written file
};

// Writes ToReferenceDict(checkpoint) to out_path atomically (temp file, fsync, rename).
core::StatusOr<ReferenceExportSummary> ExportReferencePth(const TrainingCheckpoint& checkpoint,
                                                          const std::string& out_path);

}  // namespace vjepa::checkpoint

#endif  // VJEPA_SERVICES_TRAINER_CHECKPOINT_REFERENCE_EXPORT_H_
