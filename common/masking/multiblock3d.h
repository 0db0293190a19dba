// The multi-block masks: multiblock3d (docs/vjepa-spec.md §3) and causal_multiblock (§8), which
// is multiblock3d with the context limited to the early time steps.
#ifndef VJEPA_COMMON_MASKING_MULTIBLOCK3D_H_
#define VJEPA_COMMON_MASKING_MULTIBLOCK3D_H_

#include "common/masking/mask.h"

namespace vjepa::masking {

// Extent of one box in time steps, rows and columns.
struct BlockSize {
  int t = 0;
  int h = 0;
  int w = 0;
};
inline bool operator==(const BlockSize& a, const BlockSize& b) {
  return a.t == b.t && a.h == b.h && a.w == b.w;
}
inline bool operator<(const BlockSize& a, const BlockSize& b) {
  if (a.t != b.t) return a.t < b.t;
  if (a.h != b.h) return a.h < b.h;
  return a.w < b.w;
}

// The reference's block size from three uniforms in [0, 1):
//   t = max(1, int(T·(tmin + u1·(tmax − tmin)))),
//   keep = int(H·W·(smin + u2·(smax − smin))), ar = armin + u3·(armax − armin),
//   h = min(H, round(√(keep·ar))), w = min(W, round(√(keep/ar))),
// rounding half to even as Python's round().
BlockSize BlockSizeFromUniforms(const MaskConfig& config, Grid grid, double u1, double u2,
                                double u3);

// Python's round() on a non-negative double: to the nearest integer, ties to even.
int RoundHalfEven(double x);

// Time steps that may hold context: max(1, int(T·max_temporal_keep)), and for
// causal_multiblock at most context_frames / tubelet.
int ContextSlots(const MaskConfig& config, Grid grid);

// Per batch, one block size (BlockSizeFor); per sample, num_blocks boxes at positions
// top ∈ [0, H−h], left ∈ [0, W−w], start ∈ [0, T−t] drawn in that order per box; targets are the
// cells inside any box or in a time step ≥ ContextSlots, context the others. A sample with no
// context is drawn again from the continuing stream.
class Multiblock3dGenerator final : public MaskGenerator {
 public:
  // `config` must have passed ValidateMaskConfig for `grid` (MakeMaskGenerator does that).
  Multiblock3dGenerator(const MaskConfig& config, Grid grid, bool share_block_size);

  const MaskConfig& config() const override { return config_; }
  Grid grid() const override { return grid_; }
  core::StatusOr<BatchMasks> Generate(const BatchKey& key, int mask_index,
                                      int batch_size) const override;

  // The block size of batch `key` for config `mask_index`: u1, u2, u3 are the first three
  // Uniform() draws of ForBatch(seed, kMaskBlockSize, epoch, batch) → mask_index (without the
  // mask index when the block size is shared).
  BlockSize BlockSizeFor(const BatchKey& key, int mask_index) const;

 private:
  MaskConfig config_;
  Grid grid_;
  bool share_block_size_;
  int context_slots_;
};

}  // namespace vjepa::masking

#endif  // VJEPA_COMMON_MASKING_MULTIBLOCK3D_H_
