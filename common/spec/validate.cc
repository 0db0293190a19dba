// ValidateJobSpec: every rule of docs/job-spec.md, in the order of the document.

#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/spec/enum_names.h"
#include "common/spec/job_spec.h"
#include "common/spec/yaml_tree.h"
#include "common/status/status_macros.h"

namespace vjepa::spec {
namespace {

using internal::EnumName;
using internal::FormatNumber;
using internal::QuoteString;

constexpr int64_t kMaxSteps = 1000000000;
constexpr int64_t kMaxTokensPerSample = 262144;
constexpr size_t kMaxPathBytes = 4096;
constexpr size_t kMaxNameBytes = 63;

absl::Status Error(absl::string_view path, absl::string_view rule, absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", rule, ", got ", got));
}

std::string Num(double v) { return FormatNumber(v); }

std::string Pair(double a, double b) { return absl::StrCat("[", Num(a), ", ", Num(b), "]"); }

absl::Status IntIn(absl::string_view path, int64_t v, int64_t lo, int64_t hi) {
  if (v < lo || v > hi) {
    return Error(path, absl::StrCat("must be in [", lo, ", ", hi, "]"), absl::StrCat(v));
  }
  return absl::OkStatus();
}

// [lo, hi]; NaN fails every check.
absl::Status NumIn(absl::string_view path, double v, double lo, double hi) {
  if (!(v >= lo && v <= hi)) {
    return Error(path, absl::StrCat("must be in [", Num(lo), ", ", Num(hi), "]"), Num(v));
  }
  return absl::OkStatus();
}

// (0, hi], reported as "must be > 0" and "must be <= hi".
absl::Status PositiveUpTo(absl::string_view path, double v, double hi) {
  if (!(v > 0)) return Error(path, "must be > 0", Num(v));
  if (!(v <= hi)) return Error(path, absl::StrCat("must be <= ", Num(hi)), Num(v));
  return absl::OkStatus();
}

// An interval inside [lo, hi] (or (lo, hi] when `open_low`) with min <= max.
absl::Status IntervalIn(absl::string_view path, const Interval& iv, double lo, double hi,
                        bool open_low) {
  auto inside = [&](double v) { return (open_low ? v > lo : v >= lo) && v <= hi; };
  if (!inside(iv.min) || !inside(iv.max)) {
    return Error(
        path, absl::StrCat("must lie within ", open_low ? "(" : "[", Num(lo), ", ", Num(hi), "]"),
        Pair(iv.min, iv.max));
  }
  if (!(iv.min <= iv.max)) return Error(path, "min must be <= max", Pair(iv.min, iv.max));
  return absl::OkStatus();
}

absl::Status DivisibleBy(absl::string_view path, int64_t v, absl::string_view divisor_path,
                         int64_t divisor) {
  if (divisor > 0 && v % divisor != 0) {
    return Error(path, absl::StrCat("must be divisible by ", divisor_path, " (", divisor, ")"),
                 absl::StrCat(v));
  }
  return absl::OkStatus();
}

template <typename E>
absl::Status KnownEnum(absl::string_view path, E v) {
  if (EnumName(v).empty()) {
    return Error(path, "must be a known value", absl::StrCat(static_cast<int>(v)));
  }
  return absl::OkStatus();
}

absl::Status PathString(absl::string_view path, const std::string& s, bool required) {
  if (s.empty()) {
    if (required) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": required field is missing"));
    }
    return absl::OkStatus();
  }
  if (s.size() > kMaxPathBytes) {
    return Error(path, absl::StrCat("must be at most ", kMaxPathBytes, " bytes"),
                 absl::StrCat(s.size(), " bytes"));
  }
  RETURN_IF_ERROR(internal::CheckUtf8(s, path));
  if (s.find('\0') != std::string::npos) {
    return Error(path, "must not contain a NUL character", QuoteString(s, 64));
  }
  return absl::OkStatus();
}

absl::Status ValidateName(const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError("name: required field is missing");
  bool ok = name.size() <= kMaxNameBytes && name.front() != '-' && name.back() != '-';
  for (char c : name) {
    ok = ok && (absl::ascii_islower(static_cast<unsigned char>(c)) ||
                absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '-');
  }
  if (!ok) {
    return Error("name",
                 "must be 1 to 63 characters of a-z, 0-9 and '-', starting and ending with a "
                 "letter or digit",
                 QuoteString(name, 80));
  }
  return absl::OkStatus();
}

absl::Status ValidateModel(const ModelSpec& m) {
  RETURN_IF_ERROR(KnownEnum("model.preset", m.preset));
  RETURN_IF_ERROR(IntIn("model.embed_dim", m.embed_dim, 1, 16384));
  RETURN_IF_ERROR(IntIn("model.depth", m.depth, 1, 256));
  RETURN_IF_ERROR(IntIn("model.heads", m.heads, 1, 256));
  RETURN_IF_ERROR(PositiveUpTo("model.mlp_ratio", m.mlp_ratio, 16));
  RETURN_IF_ERROR(IntIn("model.frames", m.frames, 1, 1024));
  RETURN_IF_ERROR(IntIn("model.crop", m.crop, 1, 4096));
  RETURN_IF_ERROR(IntIn("model.patch", m.patch, 1, 1024));
  RETURN_IF_ERROR(IntIn("model.tubelet", m.tubelet, 1, 64));
  RETURN_IF_ERROR(IntIn("model.predictor.depth", m.predictor.depth, 1, 256));
  RETURN_IF_ERROR(IntIn("model.predictor.width", m.predictor.width, 1, 16384));
  RETURN_IF_ERROR(IntIn("model.predictor.heads", m.predictor.heads, 1, 256));
  RETURN_IF_ERROR(DivisibleBy("model.embed_dim", m.embed_dim, "model.heads", m.heads));
  RETURN_IF_ERROR(DivisibleBy("model.predictor.width", m.predictor.width, "model.predictor.heads",
                              m.predictor.heads));
  RETURN_IF_ERROR(DivisibleBy("model.frames", m.frames, "model.tubelet", m.tubelet));
  RETURN_IF_ERROR(DivisibleBy("model.crop", m.crop, "model.patch", m.patch));
  if (!m.uniform_power) {
    // Without uniform_power the sin-cos table splits the width D/2 (time), D/4, D/4, each even.
    if (m.embed_dim % 8 != 0) {
      return Error("model.embed_dim", "must be divisible by 8 when model.uniform_power is false",
                   absl::StrCat(m.embed_dim));
    }
    if (m.predictor.width % 8 != 0) {
      return Error("model.predictor.width",
                   "must be divisible by 8 when model.uniform_power is false",
                   absl::StrCat(m.predictor.width));
    }
  }
  const TokenGrid g = GridOf(m);
  if (g.tokens() > kMaxTokensPerClip) {
    return Error("model",
                 absl::StrCat("tokens per clip, (frames / tubelet) × (crop / patch)², must be <= ",
                              kMaxTokensPerClip),
                 absl::StrCat(g.tokens(), " (", g.t, " × ", g.h, " × ", g.w, ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateData(const DatasetSpec& dataset, const DataSpec& d) {
  RETURN_IF_ERROR(PathString("dataset.manifest", dataset.manifest, /*required=*/true));
  RETURN_IF_ERROR(PathString("dataset.root", dataset.root, /*required=*/false));
  RETURN_IF_ERROR(IntIn("data.frame_step", d.frame_step, 1, 64));
  RETURN_IF_ERROR(IntIn("data.num_clips", d.num_clips, 1, 16));
  RETURN_IF_ERROR(IntervalIn("data.random_resized_crop.scale", d.random_resized_crop.scale, 0, 1,
                             /*open_low=*/true));
  RETURN_IF_ERROR(IntervalIn("data.random_resized_crop.ratio", d.random_resized_crop.ratio, 0, 10,
                             /*open_low=*/true));
  RETURN_IF_ERROR(NumIn("data.flip", d.flip, 0, 1));
  const auto& mean = d.normalize.mean;
  const auto& sd = d.normalize.stddev;
  for (int i = 0; i < 3; ++i) {
    if (!(mean[i] >= 0 && mean[i] <= 1)) {
      return Error("data.normalize.mean", "must be 3 numbers in [0, 1]",
                   absl::StrCat("[", Num(mean[0]), ", ", Num(mean[1]), ", ", Num(mean[2]), "]"));
    }
    if (!(sd[i] > 0 && sd[i] <= 1)) {
      return Error("data.normalize.std", "must be 3 numbers in (0, 1]",
                   absl::StrCat("[", Num(sd[0]), ", ", Num(sd[1]), ", ", Num(sd[2]), "]"));
    }
  }
  return absl::OkStatus();
}

// The reference's block size on an h × w grid: keep = int(h·w·scale) cells, then
// height round(√(keep·ar)) and width round(√(keep/ar)) (half to even, as Python's round).
absl::Status ValidateBlocks(const std::string& path, const MaskSpec& m, const TokenGrid& g) {
  const int64_t cells = g.h * g.w;
  const auto keep_min = static_cast<int64_t>(static_cast<double>(cells) * m.spatial_scale.min);
  const std::string grid = absl::StrCat(g.h, " × ", g.w, " grid");
  if (keep_min < 1) {
    return Error(path + ".spatial_scale",
                 absl::StrCat("must select at least one cell of the ", grid, " (int(", cells, " × ",
                              Num(m.spatial_scale.min), ") = ", keep_min, ")"),
                 Pair(m.spatial_scale.min, m.spatial_scale.max));
  }
  const double k = static_cast<double>(keep_min);
  if (std::nearbyint(std::sqrt(k * m.aspect_ratio.min)) < 1 ||
      std::nearbyint(std::sqrt(k / m.aspect_ratio.max)) < 1) {
    return Error(path + ".aspect_ratio",
                 absl::StrCat("makes a block 0 cells high or wide when it keeps ", keep_min,
                              " of the ", cells, " cells of the ", grid),
                 Pair(m.aspect_ratio.min, m.aspect_ratio.max));
  }
  // One block covering every cell of every frame leaves no context, and the sample would be
  // redrawn for ever.
  const int64_t t_max =
      std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(g.t) * m.temporal_scale.max));
  const auto keep_max =
      static_cast<double>(static_cast<int64_t>(static_cast<double>(cells) * m.spatial_scale.max));
  const double ar_low = std::max(m.aspect_ratio.min, std::pow(g.h - 0.5, 2) / keep_max);
  const double ar_high = std::min(m.aspect_ratio.max, keep_max / std::pow(g.w - 0.5, 2));
  if (t_max >= g.t && ar_low <= ar_high) {
    return Error(path + ".spatial_scale",
                 absl::StrCat("lets one block cover the whole ", grid, ", leaving no context"),
                 Pair(m.spatial_scale.min, m.spatial_scale.max));
  }
  return absl::OkStatus();
}

absl::Status ValidateMasks(const JobSpec& spec) {
  if (spec.mask.empty() || spec.mask.size() > kMaxMaskConfigs) {
    return Error("mask", absl::StrCat("must have 1 to ", kMaxMaskConfigs, " entries"),
                 absl::StrCat(spec.mask.size()));
  }
  const ModelSpec& model = spec.model;
  const TokenGrid g = GridOf(model);
  for (size_t i = 0; i < spec.mask.size(); ++i) {
    const MaskSpec& m = spec.mask[i];
    const std::string path = absl::StrCat("mask.", i);
    RETURN_IF_ERROR(KnownEnum(path + ".type", m.type));
    RETURN_IF_ERROR(IntIn(path + ".num_blocks", m.num_blocks, 1, 64));
    RETURN_IF_ERROR(IntervalIn(path + ".spatial_scale", m.spatial_scale, 0, 1, true));
    RETURN_IF_ERROR(IntervalIn(path + ".temporal_scale", m.temporal_scale, 0, 1, true));
    RETURN_IF_ERROR(IntervalIn(path + ".aspect_ratio", m.aspect_ratio, 0, 100, true));
    RETURN_IF_ERROR(PositiveUpTo(path + ".max_temporal_keep", m.max_temporal_keep, 1));
    if (m.max_keep && *m.max_keep < 1) {
      return Error(path + ".max_keep", "must be null or >= 1", absl::StrCat(*m.max_keep));
    }
    if (!(m.ratio > 0 && m.ratio < 1)) {
      return Error(path + ".ratio", "must be in (0, 1)", Num(m.ratio));
    }
    if (m.context_frames < model.tubelet || m.context_frames > model.frames) {
      return Error(path + ".context_frames",
                   absl::StrCat("must be in [", model.tubelet, ", ", model.frames,
                                "] (model.tubelet to model.frames)"),
                   absl::StrCat(m.context_frames));
    }
    RETURN_IF_ERROR(
        DivisibleBy(path + ".context_frames", m.context_frames, "model.tubelet", model.tubelet));
    if (m.type == MaskType::kRandomTube) {
      const int64_t cells = g.h * g.w;
      const auto keep = static_cast<int64_t>(static_cast<double>(cells) * (1.0 - m.ratio));
      if (keep < 1 || keep > cells - 1) {
        return Error(path + ".ratio",
                     absl::StrCat("must leave between 1 and ", cells - 1, " of the ", g.h, " × ",
                                  g.w, " positions as context (int(", cells, " × (1 − ",
                                  Num(m.ratio), ")) = ", keep, ")"),
                     Num(m.ratio));
      }
    } else {
      RETURN_IF_ERROR(ValidateBlocks(path, m, g));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateLoss(const LossSpec& l) {
  RETURN_IF_ERROR(KnownEnum("loss.target", l.target));
  RETURN_IF_ERROR(PositiveUpTo("loss.exponent", l.exponent, 4));
  return NumIn("loss.reg_coeff", l.reg_coeff, 0, 1000);
}

absl::Status ValidateOptim(const OptimSpec& o) {
  RETURN_IF_ERROR(IntIn("optim.steps", o.steps, 1, kMaxSteps));
  RETURN_IF_ERROR(IntIn("optim.batch_size", o.batch_size, 1, 4096));
  RETURN_IF_ERROR(NumIn("optim.lr.start", o.lr.start, 0, 10));
  RETURN_IF_ERROR(PositiveUpTo("optim.lr.peak", o.lr.peak, 10));
  RETURN_IF_ERROR(NumIn("optim.lr.final", o.lr.final, 0, 10));
  if (o.lr.start > o.lr.peak) {
    return Error("optim.lr.start", absl::StrCat("must be <= optim.lr.peak (", Num(o.lr.peak), ")"),
                 Num(o.lr.start));
  }
  if (o.lr.final > o.lr.peak) {
    return Error("optim.lr.final", absl::StrCat("must be <= optim.lr.peak (", Num(o.lr.peak), ")"),
                 Num(o.lr.final));
  }
  RETURN_IF_ERROR(NumIn("optim.wd.start", o.wd.start, 0, 10));
  RETURN_IF_ERROR(NumIn("optim.wd.final", o.wd.final, 0, 10));
  RETURN_IF_ERROR(NumIn("optim.ema.start", o.ema.start, 0, 1));
  RETURN_IF_ERROR(NumIn("optim.ema.final", o.ema.final, 0, 1));
  RETURN_IF_ERROR(NumIn("optim.clip", o.clip, 0, 1e6));
  if (o.warmup < 0 || o.warmup > o.steps) {
    return Error("optim.warmup",
                 absl::StrCat("must be in [0, ", o.steps, "] (at most optim.steps)"),
                 absl::StrCat(o.warmup));
  }
  RETURN_IF_ERROR(NumIn("optim.schedule_scale", o.schedule_scale, 1, 100));
  for (double b : o.betas) {
    if (!(b >= 0 && b < 1)) {
      return Error("optim.betas", "must be 2 numbers in [0, 1)", Pair(o.betas[0], o.betas[1]));
    }
  }
  RETURN_IF_ERROR(PositiveUpTo("optim.eps", o.eps, 1));
  if (o.ipe < 1 || o.ipe > o.steps) {
    return Error("optim.ipe", absl::StrCat("must be in [1, ", o.steps, "] (at most optim.steps)"),
                 absl::StrCat(o.ipe));
  }
  return absl::OkStatus();
}

absl::Status ValidateProbe(const JobSpec& spec) {
  const ProbeSpec& p = spec.probe;
  if (spec.kind == JobKind::kProbe && p.checkpoint.empty()) {
    return absl::InvalidArgumentError("probe.checkpoint: required when kind is probe");
  }
  RETURN_IF_ERROR(PathString("probe.checkpoint", p.checkpoint, /*required=*/false));
  if (p.checkpoint_key != "target_encoder" && p.checkpoint_key != "encoder") {
    return Error("probe.checkpoint_key", "must be one of target_encoder or encoder",
                 QuoteString(p.checkpoint_key, 64));
  }
  if (p.checkpoint_step) {
    RETURN_IF_ERROR(IntIn("probe.checkpoint_step", *p.checkpoint_step, 0, kMaxSteps));
  }
  if (p.num_classes) {
    RETURN_IF_ERROR(IntIn("probe.num_classes", *p.num_classes, 2, 100000));
  } else if (spec.kind == JobKind::kProbe) {
    return absl::InvalidArgumentError("probe.num_classes: required when kind is probe");
  }
  RETURN_IF_ERROR(KnownEnum("probe.pooling", p.pooling));
  RETURN_IF_ERROR(IntIn("probe.epochs", p.epochs, 1, 10000));
  RETURN_IF_ERROR(PositiveUpTo("probe.lr", p.lr, 10));
  RETURN_IF_ERROR(NumIn("probe.wd.start", p.wd.start, 0, 10));
  RETURN_IF_ERROR(NumIn("probe.wd.final", p.wd.final, 0, 10));
  RETURN_IF_ERROR(NumIn("probe.clip", p.clip, 0, 1e6));
  RETURN_IF_ERROR(IntIn("probe.batch_size", p.batch_size, 1, 4096));
  RETURN_IF_ERROR(IntIn("probe.segments", p.segments, 1, 64));
  RETURN_IF_ERROR(IntIn("probe.views", p.views, 1, 16));
  RETURN_IF_ERROR(PathString("probe.val_manifest", p.val_manifest, /*required=*/false));
  if (spec.kind == JobKind::kProbe && spec.resources.trainers != 1) {
    return Error("resources.trainers",
                 "must be 1 for a probe job (one trainer extracts the features and trains the "
                 "probe on them; add dataworkers to feed it faster)",
                 absl::StrCat(spec.resources.trainers));
  }
  const int64_t tokens = p.segments * TokensPerClip(spec);
  if (tokens > kMaxTokensPerSample) {
    return Error("probe.segments",
                 absl::StrCat("tokens per probe sample (segments × tokens per clip) must be <= ",
                              kMaxTokensPerSample),
                 absl::StrCat(tokens, " (", p.segments, " × ", TokensPerClip(spec), ")"));
  }
  return absl::OkStatus();
}

absl::Status ValidateCheckpoint(const CheckpointSpec& c) {
  RETURN_IF_ERROR(IntIn("checkpoint.every_steps", c.every_steps, 1, kMaxSteps));
  RETURN_IF_ERROR(IntIn("checkpoint.keep_last", c.keep_last, 1, 1000));
  RETURN_IF_ERROR(IntIn("checkpoint.keep_every", c.keep_every, 0, kMaxSteps));
  if (c.keep_every % c.every_steps != 0) {
    return Error(
        "checkpoint.keep_every",
        absl::StrCat("must be 0 or a multiple of checkpoint.every_steps (", c.every_steps, ")"),
        absl::StrCat(c.keep_every));
  }
  return absl::OkStatus();
}

absl::Status ValidateResources(const ResourcesSpec& r) {
  RETURN_IF_ERROR(IntIn("resources.trainers", r.trainers, 1, 1024));
  RETURN_IF_ERROR(IntIn("resources.dataworkers", r.dataworkers, 1, 4096));
  RETURN_IF_ERROR(KnownEnum("resources.device", r.device));
  RETURN_IF_ERROR(KnownEnum("resources.precision", r.precision));
  RETURN_IF_ERROR(IntIn("resources.torch_threads", r.torch_threads, 0, 1024));
  return IntIn("resources.priority", r.priority, -1000, 1000);
}

}  // namespace

absl::Status ValidateJobSpec(const JobSpec& spec) {
  RETURN_IF_ERROR(ValidateName(spec.name));
  RETURN_IF_ERROR(KnownEnum("kind", spec.kind));
  if (spec.seed < 0) return Error("seed", "must be >= 0", absl::StrCat(spec.seed));
  RETURN_IF_ERROR(ValidateModel(spec.model));
  RETURN_IF_ERROR(ValidateData(spec.dataset, spec.data));
  RETURN_IF_ERROR(ValidateMasks(spec));
  RETURN_IF_ERROR(ValidateLoss(spec.loss));
  RETURN_IF_ERROR(ValidateOptim(spec.optim));
  RETURN_IF_ERROR(ValidateProbe(spec));
  RETURN_IF_ERROR(ValidateCheckpoint(spec.checkpoint));
  return ValidateResources(spec.resources);
}

}  // namespace vjepa::spec
