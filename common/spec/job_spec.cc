#include "common/spec/job_spec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/spec/decode.h"
#include "common/spec/enum_names.h"
#include "common/spec/schema.h"
#include "common/spec/yaml_tree.h"
#include "common/status/status_macros.h"

namespace vjepa::spec {
namespace {

using internal::Node;

// Debian's Abseil has its own string_view type; the public API uses the standard one.
std::string_view StdView(absl::string_view s) { return std::string_view(s.data(), s.size()); }
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// The preset whose defaults fill lists that an override indexes into: that of the last
// "model.preset=" override, else the document's, else vit_large.
ModelPreset PresetForDefaults(const Node& root, const std::vector<std::string>& overrides) {
  ModelPreset preset = ModelPreset::kVitLarge;
  if (const Node* model = root.Find("model"); model != nullptr && model->is_map()) {
    if (const Node* p = model->Find("preset"); p != nullptr && p->is_scalar()) {
      internal::ParseEnum(p->scalar, &preset);
    }
  }
  for (const std::string& o : overrides) {
    if (internal::OverrideKey(o) == "model.preset") {
      internal::ParseEnum(absl::StripAsciiWhitespace(o.substr(o.find('=') + 1)), &preset);
    }
  }
  return preset;
}

// Puts "--set <override>: " in front of an error about a field that an override set (the last
// such override, which is the one in effect).
absl::Status AttributeToOverrides(const absl::Status& error,
                                  const std::vector<std::string>& overrides) {
  for (auto it = overrides.rbegin(); it != overrides.rend(); ++it) {
    std::optional<absl::Status> attributed =
        internal::Attribute(error, internal::OverrideKey(*it), absl::StrCat("--set ", *it, ": "));
    if (attributed) return *attributed;
  }
  return error;
}

}  // namespace

std::string_view ToString(JobKind v) { return StdView(internal::EnumName(v)); }
std::string_view ToString(ModelPreset v) { return StdView(internal::EnumName(v)); }
std::string_view ToString(MaskType v) { return StdView(internal::EnumName(v)); }
std::string_view ToString(LossTarget v) { return StdView(internal::EnumName(v)); }
std::string_view ToString(Pooling v) { return StdView(internal::EnumName(v)); }
std::string_view ToString(Device v) { return StdView(internal::EnumName(v)); }
std::string_view ToString(Precision v) { return StdView(internal::EnumName(v)); }

ModelSpec PresetModel(ModelPreset preset) {
  ModelSpec m;
  m.preset = preset;
  auto size = [&m](int64_t dim, int64_t depth, int64_t heads) {
    m.embed_dim = dim;
    m.depth = depth;
    m.heads = heads;
    m.predictor.heads = heads;
  };
  switch (preset) {
    case ModelPreset::kNano:
      size(64, 2, 4);
      m.frames = 4;
      m.crop = 32;
      m.predictor.depth = 2;
      m.predictor.width = 32;
      break;
    case ModelPreset::kVitTiny:
      size(192, 12, 3);
      break;
    case ModelPreset::kVitSmall:
      size(384, 12, 6);
      break;
    case ModelPreset::kVitBase:
      size(768, 12, 12);
      break;
    case ModelPreset::kVitLarge:
      size(1024, 24, 16);
      break;
    case ModelPreset::kVitHuge:
      size(1280, 32, 16);
      break;
    case ModelPreset::kVitGiant:
      size(1408, 40, 16);
      m.mlp_ratio = 48.0 / 11.0;
      break;
  }
  return m;
}

std::vector<MaskSpec> DefaultMasks(ModelPreset preset) {
  const ModelSpec model = PresetModel(preset);
  MaskSpec short_range;
  MaskSpec long_range;
  if (preset == ModelPreset::kNano) {
    // On nano's 2 × 2 grid int(4 × 0.15) is 0 cells: one block of 1 and one of 2 cells instead.
    short_range.num_blocks = 1;
    short_range.spatial_scale = {0.25, 0.25};
    long_range.num_blocks = 1;
    long_range.spatial_scale = {0.5, 0.5};
  } else {
    short_range.num_blocks = 8;
    short_range.spatial_scale = {0.15, 0.15};
    long_range.num_blocks = 2;
    long_range.spatial_scale = {0.7, 0.7};
  }
  for (MaskSpec* m : {&short_range, &long_range}) {
    m->context_frames = DefaultContextFrames(model.frames, model.tubelet);
  }
  return {short_range, long_range};
}

int64_t DefaultWarmup(int64_t steps) {
  if (steps <= 0 || steps > std::numeric_limits<int64_t>::max() / 8) return 0;
  // round(40 · steps / 300) = round(2 · steps / 15), halves rounded up.
  return (4 * steps + 15) / 30;
}

int64_t DefaultIpe(int64_t steps) {
  if (steps <= 0) return 1;
  // round(steps / 300), halves rounded up, at least 1.
  return std::max<int64_t>(1, steps / 300 + (steps % 300 >= 150 ? 1 : 0));
}

int64_t DefaultContextFrames(int64_t frames, int64_t tubelet) {
  if (tubelet <= 0) return frames / 2;
  return std::max(tubelet, frames / 2 / tubelet * tubelet);
}

int64_t WarmupSteps(const JobSpec& spec) { return spec.optim.warmup; }

int64_t ScheduleLength(const JobSpec& spec) {
  const double t = spec.optim.schedule_scale * static_cast<double>(spec.optim.steps);
  if (!(t > 0)) return 0;
  if (t >= 9.0e18) return std::numeric_limits<int64_t>::max();
  return static_cast<int64_t>(t);
}

int64_t ClipStartStep(const JobSpec& spec) {
  const int64_t ipe = std::max<int64_t>(1, spec.optim.ipe);
  return (std::max<int64_t>(0, spec.optim.warmup) / ipe + 1) * ipe + 1;
}

TokenGrid GridOf(const ModelSpec& model) {
  if (model.tubelet <= 0 || model.patch <= 0) return TokenGrid{};
  return TokenGrid{model.frames / model.tubelet, model.crop / model.patch,
                   model.crop / model.patch};
}

int64_t TokensPerClip(const JobSpec& spec) { return GridOf(spec.model).tokens(); }

absl::StatusOr<JobSpec> ParseJobSpec(std::string_view yaml,
                                     const std::vector<std::string>& overrides) {
  size_t override_bytes = 0;
  for (const std::string& o : overrides) override_bytes += o.size();
  if (override_bytes > kMaxSpecBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "--set: ", override_bytes, " bytes in all is over the limit of ", kMaxSpecBytes));
  }
  ASSIGN_OR_RETURN(Node root, internal::LoadYaml(AbslView(yaml), "spec"));
  if (root.is_null()) return absl::InvalidArgumentError("spec: empty document");
  if (!root.is_map()) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec: the top level must be a map, got ", internal::Describe(root)));
  }

  const ModelPreset preset = PresetForDefaults(root, overrides);
  for (size_t i = 0; i < overrides.size(); ++i) {
    const std::string& o = overrides[i];
    RETURN_IF_ERROR(internal::CheckUtf8(o, absl::StrCat("--set #", i + 1)));
    const std::string prefix = absl::StrCat("--set ", o, ": ");
    if (internal::OverrideKey(o).empty()) {
      return absl::InvalidArgumentError(absl::StrCat(prefix, "expected key.path=value"));
    }
    const absl::Status status = internal::ApplyOverride(o, preset, &root);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat(prefix, status.message()));
    }
  }

  JobSpec spec;
  std::set<std::string> present;
  absl::Status status = internal::DecodeSpec(root, &spec, &present);
  if (!status.ok()) return AttributeToOverrides(status, overrides);
  internal::ResolveDefaults(present, &spec);
  status = ValidateJobSpec(spec);
  if (!status.ok()) return AttributeToOverrides(status, overrides);
  return spec;
}

bool operator==(const Interval& a, const Interval& b) { return a.min == b.min && a.max == b.max; }
bool operator==(const StartFinal& a, const StartFinal& b) {
  return a.start == b.start && a.final == b.final;
}
bool operator==(const PredictorSpec& a, const PredictorSpec& b) {
  return std::tie(a.depth, a.width, a.heads) == std::tie(b.depth, b.width, b.heads);
}
bool operator==(const ModelSpec& a, const ModelSpec& b) {
  return std::tie(a.preset, a.embed_dim, a.depth, a.heads, a.mlp_ratio, a.frames, a.crop, a.patch,
                  a.tubelet, a.predictor, a.uniform_power, a.use_mask_tokens,
                  a.zero_init_mask_tokens) == std::tie(b.preset, b.embed_dim, b.depth, b.heads,
                                                       b.mlp_ratio, b.frames, b.crop, b.patch,
                                                       b.tubelet, b.predictor, b.uniform_power,
                                                       b.use_mask_tokens, b.zero_init_mask_tokens);
}
bool operator==(const DatasetSpec& a, const DatasetSpec& b) {
  return a.manifest == b.manifest && a.root == b.root;
}
bool operator==(const RandomResizedCropSpec& a, const RandomResizedCropSpec& b) {
  return a.scale == b.scale && a.ratio == b.ratio;
}
bool operator==(const NormalizeSpec& a, const NormalizeSpec& b) {
  return a.mean == b.mean && a.stddev == b.stddev;
}
bool operator==(const DataSpec& a, const DataSpec& b) {
  return std::tie(a.frame_step, a.num_clips, a.random_resized_crop, a.flip, a.normalize) ==
         std::tie(b.frame_step, b.num_clips, b.random_resized_crop, b.flip, b.normalize);
}
bool operator==(const MaskSpec& a, const MaskSpec& b) {
  return std::tie(a.type, a.num_blocks, a.spatial_scale, a.temporal_scale, a.aspect_ratio,
                  a.max_temporal_keep, a.max_keep, a.ratio, a.context_frames) ==
         std::tie(b.type, b.num_blocks, b.spatial_scale, b.temporal_scale, b.aspect_ratio,
                  b.max_temporal_keep, b.max_keep, b.ratio, b.context_frames);
}
bool operator==(const MaskOptions& a, const MaskOptions& b) {
  return a.share_block_size == b.share_block_size;
}
bool operator==(const LossSpec& a, const LossSpec& b) {
  return std::tie(a.target, a.exponent, a.reg_coeff) == std::tie(b.target, b.exponent, b.reg_coeff);
}
bool operator==(const LrSpec& a, const LrSpec& b) {
  return std::tie(a.start, a.peak, a.final) == std::tie(b.start, b.peak, b.final);
}
bool operator==(const OptimSpec& a, const OptimSpec& b) {
  return std::tie(a.steps, a.batch_size, a.lr, a.wd, a.ema, a.clip, a.warmup, a.schedule_scale,
                  a.betas, a.eps, a.ipe) == std::tie(b.steps, b.batch_size, b.lr, b.wd, b.ema,
                                                     b.clip, b.warmup, b.schedule_scale, b.betas,
                                                     b.eps, b.ipe);
}
bool operator==(const ProbeSpec& a, const ProbeSpec& b) {
  return std::tie(a.checkpoint, a.checkpoint_key, a.checkpoint_step, a.num_classes, a.pooling,
                  a.epochs, a.lr, a.wd, a.clip, a.batch_size, a.segments, a.views,
                  a.val_manifest) ==
         std::tie(b.checkpoint, b.checkpoint_key, b.checkpoint_step, b.num_classes, b.pooling,
                  b.epochs, b.lr, b.wd, b.clip, b.batch_size, b.segments, b.views, b.val_manifest);
}
bool operator==(const CheckpointSpec& a, const CheckpointSpec& b) {
  return std::tie(a.every_steps, a.keep_last, a.keep_every, a.initial) ==
         std::tie(b.every_steps, b.keep_last, b.keep_every, b.initial);
}
bool operator==(const ResourcesSpec& a, const ResourcesSpec& b) {
  return std::tie(a.trainers, a.dataworkers, a.device, a.precision, a.torch_threads, a.priority) ==
         std::tie(b.trainers, b.dataworkers, b.device, b.precision, b.torch_threads, b.priority);
}
bool operator==(const JobSpec& a, const JobSpec& b) {
  return std::tie(a.name, a.kind, a.seed, a.model, a.dataset, a.data, a.mask, a.mask_options,
                  a.loss, a.optim, a.probe, a.checkpoint, a.resources) ==
         std::tie(b.name, b.kind, b.seed, b.model, b.dataset, b.data, b.mask, b.mask_options,
                  b.loss, b.optim, b.probe, b.checkpoint, b.resources);
}

ProbeBatchPlan PlanProbeBatches(const JobSpec& spec, int64_t train_size, int64_t val_size) {
  const int64_t b = std::max<int64_t>(1, spec.probe.batch_size);
  ProbeBatchPlan plan;
  plan.train_batches = (std::max<int64_t>(0, train_size) + b - 1) / b;
  plan.val_batches = (std::max<int64_t>(0, val_size) + b - 1) / b;
  return plan;
}

}  // namespace vjepa::spec
