#include "services/trainer/model/config.h"

#include <cstdlib>
#include <sstream>
#include <type_traits>

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

std::map<std::string, std::string> ToMetadata(const VitConfig& v, const PredictorConfig& p) {
  auto num = [](double x) {
    std::ostringstream s;
    s.precision(17);
    s << x;
    return s.str();
  };
  return {
      {"model.embed_dim", std::to_string(v.embed_dim)},
      {"model.depth", std::to_string(v.depth)},
      {"model.heads", std::to_string(v.heads)},
      {"model.mlp_ratio", num(v.mlp_ratio)},
      {"model.frames", std::to_string(v.frames)},
      {"model.crop", std::to_string(v.crop)},
      {"model.patch", std::to_string(v.patch)},
      {"model.tubelet", std::to_string(v.tubelet)},
      {"model.uniform_power", v.uniform_power ? "true" : "false"},
      {"predictor.width", std::to_string(p.width)},
      {"predictor.depth", std::to_string(p.depth)},
      {"predictor.heads", std::to_string(p.heads)},
      {"predictor.mlp_ratio", num(p.mlp_ratio)},
      {"predictor.num_mask_tokens", std::to_string(p.num_mask_tokens)},
      {"predictor.output_dim", std::to_string(p.output_dim)},
  };
}

core::Status FromMetadata(const std::map<std::string, std::string>& m, VitConfig* v,
                          PredictorConfig* p) {
  auto get = [&](const std::string& key, auto* out) -> core::Status {
    auto it = m.find(key);
    if (it == m.end()) return core::NotFoundError("checkpoint metadata: no " + key);
    char* end = nullptr;
    const double x = std::strtod(it->second.c_str(), &end);
    if (it->second.empty() || *end != '\0') {
      return core::InvalidArgumentError("checkpoint metadata: " + key + " is not a number: \"" +
                                        it->second + "\"");
    }
    *out = static_cast<std::remove_pointer_t<decltype(out)>>(x);
    return core::OkStatus();
  };
  CORE_RETURN_IF_ERROR(get("model.embed_dim", &v->embed_dim));
  CORE_RETURN_IF_ERROR(get("model.depth", &v->depth));
  CORE_RETURN_IF_ERROR(get("model.heads", &v->heads));
  CORE_RETURN_IF_ERROR(get("model.mlp_ratio", &v->mlp_ratio));
  CORE_RETURN_IF_ERROR(get("model.frames", &v->frames));
  CORE_RETURN_IF_ERROR(get("model.crop", &v->crop));
  CORE_RETURN_IF_ERROR(get("model.patch", &v->patch));
  CORE_RETURN_IF_ERROR(get("model.tubelet", &v->tubelet));
  auto up = m.find("model.uniform_power");
  v->uniform_power = up == m.end() || up->second == "true";
  CORE_RETURN_IF_ERROR(get("predictor.width", &p->width));
  CORE_RETURN_IF_ERROR(get("predictor.depth", &p->depth));
  CORE_RETURN_IF_ERROR(get("predictor.heads", &p->heads));
  CORE_RETURN_IF_ERROR(get("predictor.mlp_ratio", &p->mlp_ratio));
  CORE_RETURN_IF_ERROR(get("predictor.num_mask_tokens", &p->num_mask_tokens));
  CORE_RETURN_IF_ERROR(get("predictor.output_dim", &p->output_dim));
  return Validate(*p, *v);
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
