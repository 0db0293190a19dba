// Masks of V-JEPA: for every clip of a batch, the context (token indices the encoder sees) and the
// targets (token indices the predictor predicts), per mask config. docs/vjepa-spec.md §3
// (multiblock3d) and §8 (random_tube, causal_multiblock); the wire format is MaskIndices in
// proto/vjepa/v1/data.proto (see pack.h).
//
// Every draw comes from RandomStream (random.h): block sizes from
// ForBatch(seed, kMaskBlockSize, epoch, batch) → mask index (no mask index with
// share_block_size), positions from ForBatch(seed, kMaskPosition, epoch, batch) → mask index →
// sample. A batch's masks are therefore a pure function of (config, grid, key, mask index,
// batch size).
#ifndef VJEPA_COMMON_MASKING_MASK_H_
#define VJEPA_COMMON_MASKING_MASK_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/core/status.h"

namespace vjepa::masking {

// Token grid of a clip: t = frames / tubelet, h = crop / patch, w = crop / patch. Tokens are
// numbered in (t, h, w) row-major order.
struct Grid {
  int t = 0;
  int h = 0;
  int w = 0;
  int64_t tokens() const { return static_cast<int64_t>(t) * h * w; }
};

// At most this many tokens per clip (the job spec allows 65,536).
inline constexpr int64_t kMaxGridTokens = int64_t{1} << 20;
// At most this many boxes per sample (as the job spec).
inline constexpr int kMaxBlocks = 64;
// A multi-block sample whose boxes leave no context is redrawn up to this many times in a row.
inline constexpr int kMaxDraws = 1000;

enum class MaskType { kMultiblock3d, kRandomTube, kCausalMultiblock };
// "multiblock3d", "random_tube", "causal_multiblock" (the job-spec names).
std::string_view MaskTypeName(MaskType type);

struct Range {
  double min = 0;
  double max = 0;
};

inline constexpr int kNoMaxKeep = -1;

// One mask config; field names and defaults are the job spec's `mask[i]` (docs/job-spec.md),
// whose defaults are the short-range V-JEPA entry.
struct MaskConfig {
  MaskType type = MaskType::kMultiblock3d;
  int max_keep = kNoMaxKeep;  // cap on the context length after truncation; -1: none
  // multiblock3d and causal_multiblock.
  int num_blocks = 8;
  Range spatial_scale{0.15, 0.15};  // a box keeps int(h·w·s) cells of a frame
  Range temporal_scale{1.0, 1.0};   // a box spans max(1, int(t·s)) time steps
  Range aspect_ratio{0.75, 1.5};    // box height / width, drawn linearly
  double max_temporal_keep = 1.0;   // context only in the first max(1, int(t·k)) time steps
  // random_tube: fraction of the spatial positions that are targets.
  double ratio = 0.9;
  // causal_multiblock: context only in the first context_frames frames, i.e. time steps
  // t < context_frames / tubelet.
  int context_frames = 8;
  int tubelet = 2;
};

// Identity of a batch (docs/architecture.md §4).
struct BatchKey {
  uint64_t seed = 0;
  int64_t epoch = 0;
  int64_t batch_index = 0;
};

// What happened before the within-batch truncation, for statistics and metrics.
struct MaskStats {
  int redraws = 0;  // draws thrown away for an empty context, over all samples
  std::vector<int32_t> full_context_lengths;  // per sample, before truncation
  std::vector<int32_t> full_target_lengths;
};

// Index lists of one mask config for a whole batch: row-major [batch, length], each row the
// ascending flat (t, h, w) indices of one sample, truncated to equal length within the batch by
// keeping the first entries (docs/vjepa-spec.md §3 step 5).
struct BatchMasks {
  int batch = 0;
  int context_length = 0;
  int target_length = 0;
  std::vector<int32_t> context;  // batch × context_length
  std::vector<int32_t> target;   // batch × target_length
  MaskStats stats;
};

class MaskGenerator {
 public:
  virtual ~MaskGenerator() = default;
  virtual const MaskConfig& config() const = 0;
  virtual Grid grid() const = 0;
  // The masks of config `mask_index` (its position in the job's mask list) for the batch `key`.
  // Errors: batch_size < 1 or mask_index < 0 (INVALID_ARGUMENT); a multi-block sample with an
  // empty context in kMaxDraws draws in a row (INVALID_ARGUMENT: the config covers the grid).
  virtual core::StatusOr<BatchMasks> Generate(const BatchKey& key, int mask_index,
                                              int batch_size) const = 0;
};

// INVALID_ARGUMENT naming the field and the rule when `config` cannot produce masks on `grid`:
// a grid dimension < 1 or too many tokens, ranges with min > max or outside their bounds,
// a box of zero cells or zero height/width, one box able to cover the whole grid, a random tube
// that leaves no context or no target, causal context_frames not a multiple of tubelet or
// outside [tubelet, t·tubelet]. Fields that the type does not read are not checked.
core::Status ValidateMaskConfig(const MaskConfig& config, Grid grid);

// A generator for `config` on `grid` (validated first). share_block_size: every multi-block
// config of a batch draws its block size from the same random numbers (the reference's
// correlated draws; job spec mask_options.share_block_size).
core::StatusOr<std::unique_ptr<MaskGenerator>> MakeMaskGenerator(const MaskConfig& config,
                                                                 Grid grid,
                                                                 bool share_block_size = false);

// Stacks per-sample ascending index lists into BatchMasks: every context list truncated to the
// shortest one (and to max_keep unless kNoMaxKeep), every target list to the shortest target
// list, keeping the first entries. Fills stats' full lengths; stats.redraws is left as given.
BatchMasks CollateMasks(const std::vector<std::vector<int32_t>>& context,
                        const std::vector<std::vector<int32_t>>& target, int max_keep, int redraws);

}  // namespace vjepa::masking

#endif  // VJEPA_COMMON_MASKING_MASK_H_
