// random_tube[r] (docs/vjepa-spec.md §8): per sample, int(H·W·(1 − r)) of the H·W spatial
// positions stay context at every time step, drawn uniformly without replacement; every token
// at the other positions is a target (tubes through the whole clip).
#ifndef VJEPA_COMMON_MASKING_RANDOM_TUBE_H_
#define VJEPA_COMMON_MASKING_RANDOM_TUBE_H_

#include "common/masking/mask.h"

namespace vjepa::masking {

// Spatial positions left as context: int(H·W·(1 − ratio)).
int RandomTubeContextPositions(double ratio, Grid grid);

class RandomTubeGenerator final : public MaskGenerator {
 public:
  // `config` must have passed ValidateMaskConfig for `grid` (MakeMaskGenerator does that).
  RandomTubeGenerator(const MaskConfig& config, Grid grid);

  const MaskConfig& config() const override { return config_; }
  Grid grid() const override { return grid_; }
  // The context positions of a sample are SampleWithoutReplacement(H·W, keep) of
  // ForBatch(seed, kMaskPosition, epoch, batch) → mask_index → sample.
  core::StatusOr<BatchMasks> Generate(const BatchKey& key, int mask_index,
                                      int batch_size) const override;

 private:
  MaskConfig config_;
  Grid grid_;
  int keep_;  // context positions per time step
};

}  // namespace vjepa::masking

#endif  // VJEPA_COMMON_MASKING_RANDOM_TUBE_H_
