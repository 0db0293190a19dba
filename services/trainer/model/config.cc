#include "services/trainer/model/config.h"

namespace vjepa::model {

core::StatusOr<VitConfig> VitPreset(const std::string& name) {
  struct Preset {
    const char* name;
    int64_t dim, depth, heads;
    double mlp_ratio;
  };
  static constexpr Preset kPresets[] = {
      {"nano", 64, 2, 4, 4.0},
      {"vit_tiny", 192, 12, 3, 4.0},
      {"vit_small", 384, 12, 6, 4.0},
      {"vit_base", 768, 12, 12, 4.0},
      {"vit_large", 1024, 24, 16, 4.0},
      {"vit_huge", 1280, 32, 16, 4.0},
      {"vit_giant", 1408, 40, 16, 48.0 / 11.0},
  };
  for (const Preset& p : kPresets) {
    if (name == p.name) {
      VitConfig c;
      c.embed_dim = p.dim;
      c.depth = p.depth;
      c.heads = p.heads;
      c.mlp_ratio = p.mlp_ratio;
      if (name == "nano") {
        c.frames = 4;
        c.crop = 32;
      }
      return c;
    }
  }
  return core::InvalidArgumentError("model preset: unknown \"" + name +
                                    "\" (nano, vit_tiny, vit_small, vit_base, vit_large, "
                                    "vit_huge, vit_giant)");
}

core::Status Validate(const VitConfig& v) {
  auto bad = [](const std::string& m) { return core::InvalidArgumentError(m); };
  if (v.embed_dim <= 0 || v.depth <= 0 || v.heads <= 0) {
    return bad("model: embed_dim, depth and heads must be > 0");
  }
  if (v.embed_dim % v.heads != 0) {
    return bad("model.embed_dim: must be divisible by model.heads (" + std::to_string(v.heads) +
               "), got " + std::to_string(v.embed_dim));
  }
  if (v.patch <= 0 || v.tubelet <= 0 || v.crop <= 0 || v.frames <= 0) {
    return bad("model: frames, crop, patch and tubelet must be > 0");
  }
  if (v.crop % v.patch != 0) {
    return bad("model.crop: must be divisible by model.patch (" + std::to_string(v.patch) +
               "), got " + std::to_string(v.crop));
  }
  if (v.frames % v.tubelet != 0) {
    return bad("model.frames: must be divisible by model.tubelet (" + std::to_string(v.tubelet) +
               "), got " + std::to_string(v.frames));
  }
  return core::OkStatus();
}

core::Status Validate(const PredictorConfig& p, const VitConfig& v) {
  if (p.width <= 0 || p.depth <= 0 || p.heads <= 0 || p.width % p.heads != 0) {
    return core::InvalidArgumentError(
        "model.predictor: width, depth and heads must be > 0 and width divisible by heads, got "
        "width " +
        std::to_string(p.width) + ", heads " + std::to_string(p.heads));
  }
  if (p.num_mask_tokens <= 0) {
    return core::InvalidArgumentError("model.predictor: needs at least one mask token");
  }
  return Validate(v);
}

}  // namespace vjepa::model
