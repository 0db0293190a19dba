#include "common/masking/mask.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/masking/multiblock3d.h"
#include "common/masking/random_tube.h"

namespace vjepa::masking {
namespace {

std::string Num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%g", x);
  return buf;
}

std::string Str(const Range& r) { return "[" + Num(r.min) + ", " + Num(r.max) + "]"; }

std::string GridStr(Grid g) {
  return std::to_string(g.t) + " × " + std::to_string(g.h) + " × " + std::to_string(g.w);
}

core::Status Invalid(MaskType type, const std::string& message) {
  return core::InvalidArgumentError(std::string(MaskTypeName(type)) + ": " + message);
}

// `r` within (0, upper] with min <= max.
core::Status CheckRange(MaskType type, const char* field, const Range& r, double upper) {
  if (!(r.min <= r.max)) {
    return Invalid(type, std::string(field) + " " + Str(r) + ": min must be <= max");
  }
  if (!(r.min > 0 && r.max <= upper)) {
    return Invalid(type,
                   std::string(field) + " " + Str(r) + " must lie within (0, " + Num(upper) + "]");
  }
  return core::OkStatus();
}

core::Status ValidateBlocks(const MaskConfig& c, Grid g) {
  const MaskType type = c.type;
  if (c.num_blocks < 1 || c.num_blocks > kMaxBlocks) {
    return Invalid(type, "num_blocks must be in [1, " + std::to_string(kMaxBlocks) + "], got " +
                             std::to_string(c.num_blocks));
  }
  CORE_RETURN_IF_ERROR(CheckRange(type, "spatial_scale", c.spatial_scale, 1.0));
  CORE_RETURN_IF_ERROR(CheckRange(type, "temporal_scale", c.temporal_scale, 1.0));
  CORE_RETURN_IF_ERROR(CheckRange(type, "aspect_ratio", c.aspect_ratio, 100.0));
  if (!(c.max_temporal_keep > 0 && c.max_temporal_keep <= 1)) {
    return Invalid(type, "max_temporal_keep must be in (0, 1], got " + Num(c.max_temporal_keep));
  }
  const int cells = g.h * g.w;
  const std::string plane = std::to_string(g.h) + " × " + std::to_string(g.w) + " grid";
  // The smallest box: u1 = u2 = 0, and the extreme aspect ratios for its height and width.
  const BlockSize low = BlockSizeFromUniforms(c, g, 0, 0, 0);
  const int keep_min = static_cast<int>(static_cast<double>(cells) * c.spatial_scale.min);
  if (keep_min < 1) {
    return Invalid(type, "spatial_scale " + Str(c.spatial_scale) + " selects no cell of the " +
                             plane + " (int(" + std::to_string(cells) + " × " +
                             Num(c.spatial_scale.min) + ") = 0)");
  }
  const int narrowest = RoundHalfEven(std::sqrt(keep_min / c.aspect_ratio.max));
  if (low.h < 1 || narrowest < 1) {
    return Invalid(type, "aspect_ratio " + Str(c.aspect_ratio) +
                             " makes a block 0 cells high or wide when it keeps " +
                             std::to_string(keep_min) + " of the " + std::to_string(cells) +
                             " cells of the " + plane);
  }
  // The largest box reaches every time step and covers the plane when some aspect ratio in
  // range gives round(√(keep·ar)) >= H and round(√(keep/ar)) >= W.
  const int t_max = std::max(1, static_cast<int>(g.t * c.temporal_scale.max));
  const auto keep_max =
      static_cast<double>(static_cast<int>(static_cast<double>(cells) * c.spatial_scale.max));
  const double ar_low = std::max(c.aspect_ratio.min, (g.h - 0.5) * (g.h - 0.5) / keep_max);
  const double ar_high = std::min(c.aspect_ratio.max, keep_max / ((g.w - 0.5) * (g.w - 0.5)));
  if (t_max >= g.t && ar_low <= ar_high) {
    return Invalid(type, "spatial_scale " + Str(c.spatial_scale) + " with aspect_ratio " +
                             Str(c.aspect_ratio) + " lets one block cover the whole " + GridStr(g) +
                             " grid, leaving no context");
  }
  if (type == MaskType::kCausalMultiblock) {
    if (c.tubelet < 1) {
      return Invalid(type, "tubelet must be >= 1, got " + std::to_string(c.tubelet));
    }
    const int frames = g.t * c.tubelet;
    if (c.context_frames < c.tubelet || c.context_frames > frames) {
      return Invalid(type, "context_frames must be in [" + std::to_string(c.tubelet) + ", " +
                               std::to_string(frames) + "] (tubelet to frames), got " +
                               std::to_string(c.context_frames));
    }
    if (c.context_frames % c.tubelet != 0) {
      return Invalid(type, "context_frames " + std::to_string(c.context_frames) +
                               " must be a multiple of tubelet " + std::to_string(c.tubelet));
    }
  }
  return core::OkStatus();
}

core::Status ValidateTube(const MaskConfig& c, Grid g) {
  if (!(c.ratio > 0 && c.ratio < 1)) {
    return Invalid(c.type, "ratio must be in (0, 1), got " + Num(c.ratio));
  }
  const int cells = g.h * g.w;
  const int keep = RandomTubeContextPositions(c.ratio, g);
  if (keep < 1 || keep > cells - 1) {
    return Invalid(c.type, "ratio " + Num(c.ratio) + " must leave between 1 and " +
                               std::to_string(cells - 1) + " of the " + std::to_string(g.h) +
                               " × " + std::to_string(g.w) + " positions as context (int(" +
                               std::to_string(cells) + " × (1 − " + Num(c.ratio) +
                               ")) = " + std::to_string(keep) + ")");
  }
  return core::OkStatus();
}

}  // namespace

std::string_view MaskTypeName(MaskType type) {
  switch (type) {
    case MaskType::kMultiblock3d:
      return "multiblock3d";
    case MaskType::kRandomTube:
      return "random_tube";
    case MaskType::kCausalMultiblock:
      return "causal_multiblock";
  }
  return "unknown";
}

core::Status ValidateMaskConfig(const MaskConfig& config, Grid grid) {
  const std::string_view name = MaskTypeName(config.type);
  if (name == "unknown") {
    return core::InvalidArgumentError("mask type " + std::to_string(static_cast<int>(config.type)) +
                                      " is not multiblock3d, random_tube or causal_multiblock");
  }
  if (grid.t < 1 || grid.h < 1 || grid.w < 1) {
    return Invalid(config.type, "grid " + GridStr(grid) + ": every dimension must be >= 1");
  }
  if (grid.tokens() > kMaxGridTokens) {
    return Invalid(config.type, "grid " + GridStr(grid) + " has " + std::to_string(grid.tokens()) +
                                    " tokens, more than " + std::to_string(kMaxGridTokens));
  }
  if (config.max_keep != kNoMaxKeep && config.max_keep < 1) {
    return Invalid(config.type,
                   "max_keep must be -1 (none) or >= 1, got " + std::to_string(config.max_keep));
  }
  if (config.type == MaskType::kRandomTube) return ValidateTube(config, grid);
  return ValidateBlocks(config, grid);
}

core::StatusOr<std::unique_ptr<MaskGenerator>> MakeMaskGenerator(const MaskConfig& config,
                                                                 Grid grid, bool share_block_size) {
  CORE_RETURN_IF_ERROR(ValidateMaskConfig(config, grid));
  std::unique_ptr<MaskGenerator> generator;
  if (config.type == MaskType::kRandomTube) {
    generator = std::make_unique<RandomTubeGenerator>(config, grid);
  } else {
    generator = std::make_unique<Multiblock3dGenerator>(config, grid, share_block_size);
  }
  return generator;
}

BatchMasks CollateMasks(const std::vector<std::vector<int32_t>>& context,
                        const std::vector<std::vector<int32_t>>& target, int max_keep,
                        int redraws) {
  BatchMasks out;
  out.batch = static_cast<int>(context.size());
  out.stats.redraws = redraws;
  if (context.empty()) return out;
  size_t ctx_len = context[0].size();
  size_t tgt_len = target.empty() ? 0 : target[0].size();
  for (const auto& c : context) {
    ctx_len = std::min(ctx_len, c.size());
    out.stats.full_context_lengths.push_back(static_cast<int32_t>(c.size()));
  }
  for (const auto& t : target) {
    tgt_len = std::min(tgt_len, t.size());
    out.stats.full_target_lengths.push_back(static_cast<int32_t>(t.size()));
  }
  if (max_keep != kNoMaxKeep && max_keep >= 0) {
    ctx_len = std::min(ctx_len, static_cast<size_t>(max_keep));
  }
  out.context_length = static_cast<int>(ctx_len);
  out.target_length = static_cast<int>(tgt_len);
  out.context.reserve(context.size() * ctx_len);
  out.target.reserve(target.size() * tgt_len);
  for (const auto& c : context)
    out.context.insert(out.context.end(), c.begin(), c.begin() + ctx_len);
  for (const auto& t : target) out.target.insert(out.target.end(), t.begin(), t.begin() + tgt_len);
  return out;
}

}  // namespace vjepa::masking
