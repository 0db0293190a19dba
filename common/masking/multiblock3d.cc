#include "common/masking/multiblock3d.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "common/masking/random.h"

namespace vjepa::masking {

int RoundHalfEven(double x) {
  double whole = std::floor(x);
  const double frac = x - whole;
  if (frac > 0.5 || (frac == 0.5 && std::fmod(whole, 2.0) != 0.0)) whole += 1.0;
  return static_cast<int>(whole);
}

BlockSize BlockSizeFromUniforms(const MaskConfig& config, Grid grid, double u1, double u2,
                                double u3) {
  const Range& ts = config.temporal_scale;
  const Range& ss = config.spatial_scale;
  const Range& ar_range = config.aspect_ratio;
  const double temporal = ts.min + u1 * (ts.max - ts.min);
  const int t = std::min(grid.t, std::max(1, static_cast<int>(grid.t * temporal)));
  const double spatial = ss.min + u2 * (ss.max - ss.min);
  const int keep = static_cast<int>(static_cast<double>(grid.h * grid.w) * spatial);
  const double ar = ar_range.min + u3 * (ar_range.max - ar_range.min);
  const int h = std::min(RoundHalfEven(std::sqrt(keep * ar)), grid.h);
  const int w = std::min(RoundHalfEven(std::sqrt(keep / ar)), grid.w);
  return {t, h, w};
}

int ContextSlots(const MaskConfig& config, Grid grid) {
  int slots = std::max(1, static_cast<int>(grid.t * config.max_temporal_keep));
  if (config.type == MaskType::kCausalMultiblock && config.tubelet > 0) {
    slots = std::min(slots, config.context_frames / config.tubelet);
  }
  return std::min(slots, grid.t);
}

Multiblock3dGenerator::Multiblock3dGenerator(const MaskConfig& config, Grid grid,
                                             bool share_block_size)
    : config_(config),
      grid_(grid),
      share_block_size_(share_block_size),
      context_slots_(ContextSlots(config, grid)) {}

BlockSize Multiblock3dGenerator::BlockSizeFor(const BatchKey& key, int mask_index) const {
  RandomStream rng =
      RandomStream::ForBatch(key.seed, DrawKind::kMaskBlockSize, key.epoch, key.batch_index);
  if (!share_block_size_) rng = rng.Derive(static_cast<uint64_t>(mask_index));
  const double u1 = rng.Uniform();
  const double u2 = rng.Uniform();
  const double u3 = rng.Uniform();
  return BlockSizeFromUniforms(config_, grid_, u1, u2, u3);
}

core::StatusOr<BatchMasks> Multiblock3dGenerator::Generate(const BatchKey& key, int mask_index,
                                                           int batch_size) const {
  const std::string name(MaskTypeName(config_.type));
  if (batch_size < 1) {
    return core::InvalidArgumentError(name + ": batch_size must be >= 1, got " +
                                      std::to_string(batch_size));
  }
  if (mask_index < 0) {
    return core::InvalidArgumentError(name + ": mask_index must be >= 0, got " +
                                      std::to_string(mask_index));
  }
  const BlockSize block = BlockSizeFor(key, mask_index);
  const int T = grid_.t, H = grid_.h, W = grid_.w;
  const int plane = H * W;
  const RandomStream positions =
      RandomStream::ForBatch(key.seed, DrawKind::kMaskPosition, key.epoch, key.batch_index)
          .Derive(static_cast<uint64_t>(mask_index));

  std::vector<std::vector<int32_t>> context(static_cast<size_t>(batch_size));
  std::vector<std::vector<int32_t>> target(static_cast<size_t>(batch_size));
  std::vector<uint8_t> visible(static_cast<size_t>(grid_.tokens()));
  int redraws = 0;
  for (int sample = 0; sample < batch_size; ++sample) {
    RandomStream rng = positions.Derive(static_cast<uint64_t>(sample));
    int64_t num_context = 0;
    for (int draw = 0; num_context == 0; ++draw) {
      if (draw == kMaxDraws) {
        return core::InvalidArgumentError(
            name + ": every one of " + std::to_string(kMaxDraws) + " draws of sample " +
            std::to_string(sample) + " (seed " + std::to_string(key.seed) + ", epoch " +
            std::to_string(key.epoch) + ", batch " + std::to_string(key.batch_index) + ", mask " +
            std::to_string(mask_index) + ") left no context: " +
            std::to_string(config_.num_blocks) + " boxes of " + std::to_string(block.t) + " × " +
            std::to_string(block.h) + " × " + std::to_string(block.w) + " cover the " +
            std::to_string(T) + " × " + std::to_string(H) + " × " + std::to_string(W) +
            " grid; lower num_blocks or spatial_scale");
      }
      if (draw > 0) ++redraws;
      const auto early = static_cast<size_t>(context_slots_) * plane;
      std::fill(visible.begin(), visible.begin() + early, uint8_t{1});
      std::fill(visible.begin() + early, visible.end(), uint8_t{0});
      for (int b = 0; b < config_.num_blocks; ++b) {
        const auto top = static_cast<int>(rng.UniformInt(0, H - block.h));
        const auto left = static_cast<int>(rng.UniformInt(0, W - block.w));
        const auto start = static_cast<int>(rng.UniformInt(0, T - block.t));
        for (int t = start; t < start + block.t; ++t) {
          for (int y = top; y < top + block.h; ++y) {
            uint8_t* row = visible.data() + static_cast<size_t>(t) * plane + y * W;
            std::fill(row + left, row + left + block.w, uint8_t{0});
          }
        }
      }
      num_context = std::count(visible.begin(), visible.end(), uint8_t{1});
    }
    std::vector<int32_t>& ctx = context[sample];
    std::vector<int32_t>& tgt = target[sample];
    ctx.reserve(static_cast<size_t>(num_context));
    tgt.reserve(visible.size() - static_cast<size_t>(num_context));
    for (size_t i = 0; i < visible.size(); ++i) {
      (visible[i] ? ctx : tgt).push_back(static_cast<int32_t>(i));
    }
  }
  return CollateMasks(context, target, config_.max_keep, redraws);
}

}  // namespace vjepa::masking
