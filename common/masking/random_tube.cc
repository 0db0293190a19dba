#include "common/masking/random_tube.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/masking/random.h"

namespace vjepa::masking {

int RandomTubeContextPositions(double ratio, Grid grid) {
  return static_cast<int>(static_cast<double>(grid.h * grid.w) * (1.0 - ratio));
}

RandomTubeGenerator::RandomTubeGenerator(const MaskConfig& config, Grid grid)
    : config_(config), grid_(grid), keep_(RandomTubeContextPositions(config.ratio, grid)) {}

core::StatusOr<BatchMasks> RandomTubeGenerator::Generate(const BatchKey& key, int mask_index,
                                                         int batch_size) const {
  if (batch_size < 1) {
    return core::InvalidArgumentError("random_tube: batch_size must be >= 1, got " +
                                      std::to_string(batch_size));
  }
  if (mask_index < 0) {
    return core::InvalidArgumentError("random_tube: mask_index must be >= 0, got " +
                                      std::to_string(mask_index));
  }
  const int plane = grid_.h * grid_.w;
  const RandomStream positions =
      RandomStream::ForBatch(key.seed, DrawKind::kMaskPosition, key.epoch, key.batch_index)
          .Derive(static_cast<uint64_t>(mask_index));
  std::vector<std::vector<int32_t>> context(static_cast<size_t>(batch_size));
  std::vector<std::vector<int32_t>> target(static_cast<size_t>(batch_size));
  std::vector<uint8_t> kept(static_cast<size_t>(plane));
  for (int sample = 0; sample < batch_size; ++sample) {
    RandomStream rng = positions.Derive(static_cast<uint64_t>(sample));
    std::fill(kept.begin(), kept.end(), uint8_t{0});
    for (const int32_t p : rng.SampleWithoutReplacement(plane, keep_)) kept[p] = 1;
    std::vector<int32_t>& ctx = context[sample];
    std::vector<int32_t>& tgt = target[sample];
    ctx.reserve(static_cast<size_t>(keep_) * grid_.t);
    tgt.reserve(static_cast<size_t>(plane - keep_) * grid_.t);
    for (int t = 0; t < grid_.t; ++t) {
      for (int p = 0; p < plane; ++p) {
        (kept[p] ? ctx : tgt).push_back(t * plane + p);
      }
    }
  }
  return CollateMasks(context, target, config_.max_keep, /*redraws=*/0);
}

}  // namespace vjepa::masking
