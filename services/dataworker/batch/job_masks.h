// The masks of a pretrain job: its `mask` list as masking::MaskConfig entries on the job's token
// grid, and the packing of a batch's masks into BatchHeader.masks (proto/vjepa/v1/data.proto).
#ifndef VJEPA_SERVICES_DATAWORKER_BATCH_JOB_MASKS_H_
#define VJEPA_SERVICES_DATAWORKER_BATCH_JOB_MASKS_H_

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/core/status.h"
#include "common/masking/mask.h"
#include "common/spec/job_spec.h"
#include "vjepa/v1/data.pb.h"

namespace vjepa::dataworker {

// The core status as an absl::Status (the codes share numbers).
absl::Status FromCoreStatus(const core::Status& status);

// `mask` of the spec as a masking config (tubelet from spec.model).
masking::MaskConfig ToMaskConfig(const spec::MaskSpec& mask, const spec::ModelSpec& model);
masking::Grid ToMaskGrid(const spec::ModelSpec& model);

// One generator per entry of spec.mask, in spec order; share_block_size from
// spec.mask_options. INVALID_ARGUMENT naming the entry ("mask.1: ...") for a config that cannot
// produce masks on the grid.
absl::StatusOr<std::vector<std::unique_ptr<masking::MaskGenerator>>> MakeJobMaskGenerators(
    const spec::JobSpec& spec);

// The masks of every config for batch `key` of `batch_size` clips, packed into `header` (one
// MaskIndices per config, in spec order; `length` is the context length per sample).
absl::Status AddBatchMasks(const std::vector<std::unique_ptr<masking::MaskGenerator>>& generators,
                           const masking::BatchKey& key, int batch_size, v1::BatchHeader* header);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_BATCH_JOB_MASKS_H_
