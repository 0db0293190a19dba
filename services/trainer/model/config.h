// Sizes of the V-JEPA encoder and predictor (docs/vjepa-spec.md §1, §2). Plain structs: the
// trainer service fills them from the job spec; tests and benchmarks use the presets.
#ifndef VJEPA_SERVICES_TRAINER_MODEL_CONFIG_H_
#define VJEPA_SERVICES_TRAINER_MODEL_CONFIG_H_

#include <cstdint>
#include <map>
#include <string>

#include "common/core/status.h"

namespace vjepa::model {

struct VitConfig {
  int64_t embed_dim = 1024;
  int64_t depth = 24;
  int64_t heads = 16;
  double mlp_ratio = 4.0;
  int64_t frames = 16;
  int64_t crop = 224;
  int64_t patch = 16;
  int64_t tubelet = 2;
  bool uniform_power = true;

  int64_t grid_t() const { return frames / tubelet; }
  int64_t grid_h() const { return crop / patch; }
  int64_t grid_w() const { return crop / patch; }
  int64_t num_tokens() const { return grid_t() * grid_h() * grid_w(); }
  // uint8 values per token: tubelet * patch * patch * 3, in (dt, dy, dx, c) order.
  int64_t token_values() const { return tubelet * patch * patch * 3; }
};

struct PredictorConfig {
  int64_t width = 384;  // pred_embed_dim
  int64_t depth = 12;
  int64_t heads = 16;  // = encoder heads in the reference configs
  double mlp_ratio = 4.0;
  int64_t num_mask_tokens = 2;  // one per mask config
  bool zero_init_mask_tokens = true;
  // 0: predict encoder features (output D); > 0: predict this many values per token (pixels).
  int64_t output_dim = 0;
};

// vit_tiny, vit_small, vit_base, vit_large, vit_huge, vit_giant, or nano (tests).
core::StatusOr<VitConfig> VitPreset(const std::string& name);

// The sizes as checkpoint metadata ("model.embed_dim" = "192", ..., "predictor.width" = ...):
// what a tool needs to rebuild the modules of a checkpoint without the job spec.
std::map<std::string, std::string> ToMetadata(const VitConfig& vit, const PredictorConfig& pred);
// Reads them back; NOT_FOUND / INVALID_ARGUMENT name the missing or malformed key.
core::Status FromMetadata(const std::map<std::string, std::string>& metadata, VitConfig* vit,
                          PredictorConfig* pred);

// Checks divisibility and bounds; messages name the field.
core::Status Validate(const VitConfig& vit);
core::Status Validate(const PredictorConfig& predictor, const VitConfig& vit);

}  // namespace vjepa::model

#endif  // VJEPA_SERVICES_TRAINER_MODEL_CONFIG_H_
