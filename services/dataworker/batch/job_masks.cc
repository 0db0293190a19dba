#include "services/dataworker/batch/job_masks.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/masking/pack.h"

namespace vjepa::dataworker {

absl::Status FromCoreStatus(const core::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(static_cast<int>(status.code())),
                      status.message());
}

masking::Grid ToMaskGrid(const spec::ModelSpec& model) {
  const spec::TokenGrid grid = spec::GridOf(model);
  return masking::Grid{static_cast<int>(grid.t), static_cast<int>(grid.h),
                       static_cast<int>(grid.w)};
}

masking::MaskConfig ToMaskConfig(const spec::MaskSpec& mask, const spec::ModelSpec& model) {
  masking::MaskConfig c;
  switch (mask.type) {
    case spec::MaskType::kMultiblock3d:
      c.type = masking::MaskType::kMultiblock3d;
      break;
    case spec::MaskType::kRandomTube:
      c.type = masking::MaskType::kRandomTube;
      break;
    case spec::MaskType::kCausalMultiblock:
      c.type = masking::MaskType::kCausalMultiblock;
      break;
  }
  c.max_keep = mask.max_keep.has_value() ? static_cast<int>(*mask.max_keep) : masking::kNoMaxKeep;
  c.num_blocks = static_cast<int>(mask.num_blocks);
  c.spatial_scale = {mask.spatial_scale.min, mask.spatial_scale.max};
  c.temporal_scale = {mask.temporal_scale.min, mask.temporal_scale.max};
  c.aspect_ratio = {mask.aspect_ratio.min, mask.aspect_ratio.max};
  c.max_temporal_keep = mask.max_temporal_keep;
  c.ratio = mask.ratio;
  c.context_frames = static_cast<int>(mask.context_frames);
  c.tubelet = static_cast<int>(model.tubelet);
  return c;
}

absl::StatusOr<std::vector<std::unique_ptr<masking::MaskGenerator>>> MakeJobMaskGenerators(
    const spec::JobSpec& spec) {
  std::vector<std::unique_ptr<masking::MaskGenerator>> out;
  const masking::Grid grid = ToMaskGrid(spec.model);
  for (size_t i = 0; i < spec.mask.size(); ++i) {
    auto gen = masking::MakeMaskGenerator(ToMaskConfig(spec.mask[i], spec.model), grid,
                                          spec.mask_options.share_block_size);
    if (!gen.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("mask.", i, ": ", gen.status().message()));
    }
    out.push_back(std::move(gen).value());
  }
  return out;
}

absl::Status AddBatchMasks(const std::vector<std::unique_ptr<masking::MaskGenerator>>& generators,
                           const masking::BatchKey& key, int batch_size, v1::BatchHeader* header) {
  for (size_t i = 0; i < generators.size(); ++i) {
    core::StatusOr<masking::BatchMasks> masks =
        generators[i]->Generate(key, static_cast<int>(i), batch_size);
    if (!masks.ok()) {
      const core::Status& s = masks.status();
      return absl::Status(static_cast<absl::StatusCode>(static_cast<int>(s.code())),
                          absl::StrCat("mask.", i, ": ", s.message()));
    }
    masking::PackedMasks packed = masking::PackMasks(*masks);
    v1::MaskIndices* out = header->add_masks();
    out->set_length(packed.context_length);
    out->set_element_bytes(packed.element_bytes);
    out->set_context_length(packed.context_length);
    out->set_target_length(packed.target_length);
    out->set_context_idx(std::move(packed.context));
    out->set_target_idx(std::move(packed.target));
  }
  return absl::OkStatus();
}

}  // namespace vjepa::dataworker
