// The job spec: what a user submits (YAML), resolved into plain values.
//
// Every key, its default and its rule are listed in docs/job-spec.md. A JobSpec returned by
// ParseJobSpec is complete: every default is filled in (from the model preset, from optim.steps,
// ...) and every rule holds, so consumers read fields directly.
#ifndef VJEPA_COMMON_SPEC_JOB_SPEC_H_
#define VJEPA_COMMON_SPEC_JOB_SPEC_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace vjepa::spec {

// Specs (and the total size of the --set overrides) above this size are refused with
// RESOURCE_EXHAUSTED.
inline constexpr size_t kMaxSpecBytes = 1 << 20;
// At most this many mask configs (entries of `mask`).
inline constexpr size_t kMaxMaskConfigs = 8;
// At most this many tokens per clip: (frames / tubelet) × (crop / patch)².
inline constexpr int64_t kMaxTokensPerClip = 65536;

enum class JobKind { kPretrain, kProbe };
enum class ModelPreset { kNano, kVitTiny, kVitSmall, kVitBase, kVitLarge, kVitHuge, kVitGiant };
enum class MaskType { kMultiblock3d, kRandomTube, kCausalMultiblock };
enum class LossTarget { kFeatures, kPixels };
enum class Pooling { kAttentive, kAverage, kBoth };
enum class Device { kCpu, kCuda };
enum class Precision { kFloat32, kBfloat16 };

// The YAML spelling of each value ("vit_large", "multiblock3d", ...); "" for a value outside the
// enum.
std::string_view ToString(JobKind v);
std::string_view ToString(ModelPreset v);
std::string_view ToString(MaskType v);
std::string_view ToString(LossTarget v);
std::string_view ToString(Pooling v);
std::string_view ToString(Device v);
std::string_view ToString(Precision v);

// A closed range [min, max] written as a two-element list.
struct Interval {
  double min = 0;
  double max = 0;
};

// A value that moves from `start` to `final` over the schedule.
struct StartFinal {
  double start = 0;
  double final = 0;
};

struct PredictorSpec {
  int64_t depth = 12;
  int64_t width = 384;
  int64_t heads = 16;  // default: model.heads
};

// Defaults here are those of vit_large; a preset fills the fields the spec leaves out.
struct ModelSpec {
  ModelPreset preset = ModelPreset::kVitLarge;
  int64_t embed_dim = 1024;
  int64_t depth = 24;
  int64_t heads = 16;
  double mlp_ratio = 4.0;
  int64_t frames = 16;
  int64_t crop = 224;
  int64_t patch = 16;
  int64_t tubelet = 2;
  PredictorSpec predictor;
  bool uniform_power = true;
  bool use_mask_tokens = true;
  bool zero_init_mask_tokens = true;
};

struct DatasetSpec {
  std::string manifest;  // "path label" lines (space or comma separated)
  std::string root;      // base directory of relative video paths
};

struct RandomResizedCropSpec {
  Interval scale{0.3, 1.0};    // fraction of the frame area
  Interval ratio{0.75, 1.35};  // width / height, drawn log-uniformly
};

struct NormalizeSpec {  // YAML keys: mean, std
  std::array<double, 3> mean{0.485, 0.456, 0.406};
  std::array<double, 3> stddev{0.229, 0.224, 0.225};
};

struct DataSpec {
  int64_t frame_step = 4;
  int64_t num_clips = 1;
  RandomResizedCropSpec random_resized_crop;
  double flip = 0.5;  // probability of a horizontal flip of the whole clip
  NormalizeSpec normalize;
};

// One mask configuration. The defaults are those of a mask entry that leaves keys out (the
// short-range V-JEPA entry); `ratio` is read by random_tube only, `context_frames` by
// causal_multiblock only.
struct MaskSpec {
  MaskType type = MaskType::kMultiblock3d;
  int64_t num_blocks = 8;
  Interval spatial_scale{0.15, 0.15};
  Interval temporal_scale{1.0, 1.0};
  Interval aspect_ratio{0.75, 1.5};
  double max_temporal_keep = 1.0;
  std::optional<int64_t> max_keep;  // null: no cap on the context length
  double ratio = 0.9;
  int64_t context_frames = 8;  // default: half of model.frames, a multiple of model.tubelet
};

struct MaskOptions {
  // Draw one block size per batch and use it for every mask config (the reference's
  // correlated draws); off: each config draws its own.
  bool share_block_size = false;
};

struct LossSpec {
  LossTarget target = LossTarget::kFeatures;
  double exponent = 1.0;
  double reg_coeff = 0.0;
};

struct LrSpec {
  double start = 2.0e-4;
  double peak = 6.25e-4;
  double final = 1.0e-6;
};

struct OptimSpec {
  int64_t steps = 90000;
  int64_t batch_size = 24;  // per trainer
  LrSpec lr;
  StartFinal wd{0.04, 0.4};
  StartFinal ema{0.998, 1.0};
  double clip = 10.0;      // 0 disables clipping
  int64_t warmup = 12000;  // default: DefaultWarmup(steps)
  double schedule_scale = 1.25;
  std::array<double, 2> betas{0.9, 0.999};
  double eps = 1.0e-8;
  int64_t ipe = 300;  // default: DefaultIpe(steps)
};

struct ProbeSpec {
  std::string checkpoint;  // job id or path of the pretrained checkpoint
  std::string checkpoint_key = "target_encoder";
  // With a job id in `checkpoint`: the step of that job's checkpoint; null: its latest.
  std::optional<int64_t> checkpoint_step;
  std::optional<int64_t> num_classes;  // required when kind is probe
  Pooling pooling = Pooling::kAttentive;
  int64_t epochs = 20;
  double lr = 1.0e-3;
  StartFinal wd{0.01, 1.0e-6};
  double clip = 1.0;
  int64_t batch_size = 4;
  int64_t segments = 1;
  int64_t views = 1;
  std::string val_manifest;  // "" when there is none
};

struct CheckpointSpec {
  int64_t every_steps = 300;  // default: optim.ipe
  int64_t keep_last = 3;
  int64_t keep_every = 0;  // also keep checkpoints at multiples of this step; 0: off
  bool initial = false;    // also write (and keep) the initial weights as the step-0 checkpoint
};

struct ResourcesSpec {
  int64_t trainers = 1;
  int64_t dataworkers = 1;
  Device device = Device::kCpu;
  Precision precision = Precision::kFloat32;  // default: bfloat16 on cuda, float32 on cpu
  int64_t torch_threads = 0;                  // 0: the library's choice
  int64_t priority = 0;  // higher is scheduled first; equal priorities in submission order
};

std::vector<MaskSpec> DefaultMasks(ModelPreset preset);

// A default-constructed JobSpec is the resolved default of the vit_large preset at 90,000 steps,
// with `name` and `dataset.manifest` still to be set.
struct JobSpec {
  std::string name;
  JobKind kind = JobKind::kPretrain;
  int64_t seed = 234;
  ModelSpec model;
  DatasetSpec dataset;
  DataSpec data;
  std::vector<MaskSpec> mask = DefaultMasks(ModelPreset::kVitLarge);
  MaskOptions mask_options;
  LossSpec loss;
  OptimSpec optim;
  ProbeSpec probe;
  CheckpointSpec checkpoint;
  ResourcesSpec resources;
};

bool operator==(const Interval& a, const Interval& b);
bool operator==(const StartFinal& a, const StartFinal& b);
bool operator==(const PredictorSpec& a, const PredictorSpec& b);
bool operator==(const ModelSpec& a, const ModelSpec& b);
bool operator==(const DatasetSpec& a, const DatasetSpec& b);
bool operator==(const RandomResizedCropSpec& a, const RandomResizedCropSpec& b);
bool operator==(const NormalizeSpec& a, const NormalizeSpec& b);
bool operator==(const DataSpec& a, const DataSpec& b);
bool operator==(const MaskSpec& a, const MaskSpec& b);
bool operator==(const MaskOptions& a, const MaskOptions& b);
bool operator==(const LossSpec& a, const LossSpec& b);
bool operator==(const LrSpec& a, const LrSpec& b);
bool operator==(const OptimSpec& a, const OptimSpec& b);
bool operator==(const ProbeSpec& a, const ProbeSpec& b);
bool operator==(const CheckpointSpec& a, const CheckpointSpec& b);
bool operator==(const ResourcesSpec& a, const ResourcesSpec& b);
bool operator==(const JobSpec& a, const JobSpec& b);
inline bool operator!=(const JobSpec& a, const JobSpec& b) { return !(a == b); }

// Parses YAML text, applies `overrides` ("key.path=value"; the value is parsed as YAML, e.g. a
// scalar, "[0.2, 0.8]" or "{num_blocks: 2}"; list entries are addressed by index, as in
// "mask.1.num_blocks=3"), fills defaults and validates. Errors are INVALID_ARGUMENT
// (RESOURCE_EXHAUSTED for sizes) with the message "<field path>: <rule>, got <value>"; an error
// caused by an override starts with "--set <override>: ".
absl::StatusOr<JobSpec> ParseJobSpec(std::string_view yaml,
                                     const std::vector<std::string>& overrides = {});

// Checks every rule of docs/job-spec.md; the first violation is returned.
absl::Status ValidateJobSpec(const JobSpec& spec);

// Canonical YAML with every field spelled out; ParseJobSpec(ToYaml(s)) yields s again.
std::string ToYaml(const JobSpec& spec);

// Translates a pretrain config of the reference implementation (facebookresearch/jepa,
// configs/pretrain/*.yaml) into job-spec YAML, with a comment block that says where each
// reference key went. The result passes ParseJobSpec.
absl::StatusOr<std::string> ImportReferenceConfig(std::string_view reference_yaml);

// The model of a preset, as resolved when the spec sets nothing else under `model`.
ModelSpec PresetModel(ModelPreset preset);

// Default warm-up: round(40/300 × steps) (the reference's 40 of 300 virtual epochs).
int64_t DefaultWarmup(int64_t steps);
// Default virtual-epoch length: round(steps / 300), at least 1.
int64_t DefaultIpe(int64_t steps);
// Default causal_multiblock context: half of the frames, rounded down to a multiple of the
// tubelet, at least one tubelet.
int64_t DefaultContextFrames(int64_t frames, int64_t tubelet);

// Steps of linear LR warm-up (optim.warmup).
int64_t WarmupSteps(const JobSpec& spec);
// Length T of the LR/WD/EMA schedules: int(schedule_scale × steps), truncated as the reference
// does (112,500 at 90,000 steps and scale 1.25).
int64_t ScheduleLength(const JobSpec& spec);
// The first update (counting from 1) whose gradients are clipped: the reference clips once the
// 0-based virtual epoch ⌊(s−1)/ipe⌋ exceeds the warm-up in epochs ⌊warmup/ipe⌋ (12,301 for
// vit_large defaults).
int64_t ClipStartStep(const JobSpec& spec);

// The token grid of one clip: (frames/tubelet) × (crop/patch) × (crop/patch).
struct TokenGrid {
  int64_t t = 0;
  int64_t h = 0;
  int64_t w = 0;
  int64_t tokens() const { return t * h * w; }
};
TokenGrid GridOf(const ModelSpec& model);
int64_t TokensPerClip(const JobSpec& spec);

// The batches of a probe job: every labelled sample once, in manifest order, in batches of
// probe.batch_size (the last batch of a manifest may be smaller): ⌈N / B⌉ batches of the
// probe-train manifest (dataset.manifest), then ⌈N_val / B⌉ of probe.val_manifest. Global index g
// in [0, total()) runs through them in that order, like the steps of a one-trainer job.
struct ProbeBatchPlan {
  int64_t train_batches = 0;
  int64_t val_batches = 0;
  int64_t total() const { return train_batches + val_batches; }
  bool is_val(int64_t g) const { return g >= train_batches; }
  // Index of g's batch within its manifest.
  int64_t batch_index(int64_t g) const { return is_val(g) ? g - train_batches : g; }
};
ProbeBatchPlan PlanProbeBatches(const JobSpec& spec, int64_t train_size, int64_t val_size);

}  // namespace vjepa::spec

#endif  // VJEPA_COMMON_SPEC_JOB_SPEC_H_
