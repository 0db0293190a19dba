// ImportReferenceConfig: a facebookresearch/jepa pretrain config (app/vjepa/train.py reads it)
// translated into a job spec. Every key of the reference is either mapped, noted as having no
// effect here, or refused when it asks for something this implementation does not do.

#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "common/spec/decode.h"
#include "common/spec/emit.h"
#include "common/spec/enum_names.h"
#include "common/spec/job_spec.h"
#include "common/spec/schema.h"
#include "common/spec/yaml_tree.h"
#include "common/status/status_macros.h"

namespace vjepa::spec {
namespace {

using internal::Field;
using internal::Node;
using internal::Section;
using Shape = internal::Field::Shape;

Field V(absl::string_view name) { return Field{name, Shape::kValue, {}}; }
Field M(absl::string_view name, std::vector<Field> fields) {
  return Field{name, Shape::kMap, std::move(fields)};
}

// The keys that app/vjepa/train.py of the reference reads.
const Field& ReferenceSchema() {
  static const Field* const kSchema = new Field(M(
      "", {
              V("app"),
              V("nodes"),
              V("tasks_per_node"),
              M("data", {V("dataset_type"), V("datasets"), V("datasets_weights"), V("mask_type"),
                         V("decode_one_clip"), V("batch_size"), V("num_clips"), V("num_frames"),
                         V("tubelet_size"), V("sampling_rate"), V("clip_duration"), V("crop_size"),
                         V("patch_size"), V("pin_mem"), V("num_workers"), V("filter_short_videos"),
                         V("log_resource_utilization")}),
              M("data_aug", {V("auto_augment"), V("motion_shift"), V("random_resize_aspect_ratio"),
                             V("random_resize_scale"), V("reprob")}),
              M("logging", {V("folder"), V("write_tag")}),
              M("loss", {V("loss_exp"), V("reg_coeff")}),
              Field{"mask",
                    Shape::kMapList,
                    {V("aspect_ratio"), V("num_blocks"), V("spatial_scale"), V("temporal_scale"),
                     V("max_temporal_keep"), V("max_keep"), V("ratio")}},
              M("meta", {V("load_checkpoint"), V("read_checkpoint"), V("seed"), V("eval_freq"),
                         V("use_sdpa"), V("dtype"), V("save_every_freq"), V("skip_batches")}),
              M("model", {V("model_name"), V("pred_depth"), V("pred_embed_dim"), V("uniform_power"),
                          V("use_mask_tokens"), V("zero_init_mask_tokens"), V("use_sdpa")}),
              M("optimization", {V("ipe"), V("ipe_scale"), V("clip_grad"), V("weight_decay"),
                                 V("final_weight_decay"), V("epochs"), V("warmup"), V("start_lr"),
                                 V("lr"), V("final_lr"), V("ema"), V("betas"), V("eps")}),
          }));
  return *kSchema;
}

absl::Status Unsupported(absl::string_view path, absl::string_view why, const Node& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": ", why, ", got ", internal::Describe(got)));
}

// A run tag turned into a job name: lower case, other characters as '-', at most 63.
std::string NameFromTag(absl::string_view tag) {
  std::string name;
  for (char c : tag) {
    const auto u = static_cast<unsigned char>(c);
    name += absl::ascii_isalnum(u) && u < 0x80 ? absl::ascii_tolower(u) : '-';
  }
  if (name.size() > 63) name.resize(63);
  const size_t first = name.find_first_not_of('-');
  if (first == std::string::npos) return "imported";
  const size_t last = name.find_last_not_of('-');
  return name.substr(first, last - first + 1);
}

class Importer {
 public:
  absl::StatusOr<std::string> Run(const Node& root) {
    ASSIGN_OR_RETURN(Section top, Section::Open(&root, "", ReferenceSchema(), nullptr));
    RETURN_IF_ERROR(ImportTop(top));
    RETURN_IF_ERROR(ImportData(top));
    RETURN_IF_ERROR(ImportModel(top));
    RETURN_IF_ERROR(ImportOptimization(top));
    RETURN_IF_ERROR(ImportMasks(top));
    RETURN_IF_ERROR(ImportMeta(top));
    internal::ResolveDefaults(present_, &spec_);
    const absl::Status status = ValidateJobSpec(spec_);
    if (!status.ok()) return Attribute(status);
    return Render();
  }

 private:
  // Reads `key` of `s` into `out` and records it as the source of `spec_path`.
  template <typename T>
  absl::Status Map(const Section& s, absl::string_view key, std::string spec_path, T* out) {
    if (s.Get(key) == nullptr) return absl::OkStatus();
    RETURN_IF_ERROR(s.Read(key, out));
    Mapped(s.PathOf(key), std::move(spec_path));
    return absl::OkStatus();
  }

  void Mapped(std::string ref_path, std::string spec_path, std::string detail = "") {
    mappings_.push_back(absl::StrCat(ref_path, " -> ", spec_path, detail));
    present_.insert(spec_path);
    origins_.emplace_back(std::move(spec_path), std::move(ref_path));
  }

  // Keys that have no effect here, with the reason.
  void Ignore(const Section& s, absl::string_view key, absl::string_view why) {
    if (s.Get(key) != nullptr) notes_.push_back(absl::StrCat(s.PathOf(key), ": ", why));
  }

  // A boolean option the reference may turn on but this implementation does not have.
  absl::Status RequireFalse(const Section& s, absl::string_view key, absl::string_view why) {
    const Node* n = s.Get(key);
    if (n == nullptr) return absl::OkStatus();
    ASSIGN_OR_RETURN(bool on, internal::AsBool(*n, s.PathOf(key)));
    if (on) return Unsupported(s.PathOf(key), why, *n);
    return absl::OkStatus();
  }

  absl::Status ImportTop(const Section& top) {
    if (const Node* app = top.Get("app"); app != nullptr) {
      ASSIGN_OR_RETURN(std::string name, internal::AsString(*app, "app"));
      if (name != "vjepa") {
        return Unsupported("app", "must be vjepa (a V-JEPA pretrain config)", *app);
      }
    }
    int64_t nodes = 1;
    int64_t tasks = 1;
    RETURN_IF_ERROR(top.Read("nodes", &nodes));
    RETURN_IF_ERROR(top.Read("tasks_per_node", &tasks));
    if (top.Get("nodes") != nullptr || top.Get("tasks_per_node") != nullptr) {
      if (nodes < 1 || nodes > 1000000 || tasks < 1 || tasks > 1000000) {
        return absl::InvalidArgumentError(
            absl::StrCat("nodes: nodes and tasks_per_node must be in [1, 1000000], got ", nodes,
                         " and ", tasks));
      }
      spec_.resources.trainers = nodes * tasks;
      Mapped("nodes", "resources.trainers",
             absl::StrCat(" (nodes × tasks_per_node = ", nodes, " × ", tasks, ")"));
      spec_.resources.device = Device::kCuda;
      Mapped("tasks_per_node", "resources.device", " (one GPU per task: cuda)");
    }
    ASSIGN_OR_RETURN(Section logging, top.Sub("logging"));
    spec_.name = "imported";
    if (const Node* tag = logging.Get("write_tag"); tag != nullptr) {
      ASSIGN_OR_RETURN(std::string text, internal::AsString(*tag, "logging.write_tag"));
      spec_.name = NameFromTag(text);
      Mapped("logging.write_tag", "name");
    }
    present_.insert("name");
    Ignore(logging, "folder", "checkpoints and logs go to the coordinator's store");
    return absl::OkStatus();
  }

  absl::Status ImportData(const Section& top) {
    ASSIGN_OR_RETURN(Section d, top.Sub("data"));
    if (const Node* type = d.Get("dataset_type"); type != nullptr) {
      ASSIGN_OR_RETURN(std::string name, internal::AsString(*type, "data.dataset_type"));
      if (absl::AsciiStrToLower(name) != "videodataset") {
        return Unsupported("data.dataset_type", "only VideoDataset is supported", *type);
      }
    }
    if (const Node* list = d.Get("datasets"); list != nullptr) {
      if (!list->is_list() || list->items.empty()) {
        return Unsupported("data.datasets", "must be a list of at least one manifest", *list);
      }
      ASSIGN_OR_RETURN(spec_.dataset.manifest,
                       internal::AsString(list->items[0], "data.datasets.0"));
      Mapped("data.datasets[0]", "dataset.manifest");
      std::vector<std::string> rest;
      for (size_t i = 1; i < list->items.size() && i <= 8; ++i) {
        rest.push_back(internal::Describe(list->items[i]));
      }
      if (list->items.size() > 9)
        rest.push_back(absl::StrCat("and ", list->items.size() - 9, " more"));
      if (!rest.empty()) {
        notes_.push_back(
            absl::StrCat("data.datasets[1:]: a job reads one manifest; concatenate these into it: ",
                         absl::StrJoin(rest, ", ")));
      }
    }
    Ignore(d, "datasets_weights", "sampling is uniform over the one manifest");
    if (const Node* type = d.Get("mask_type"); type != nullptr) {
      ASSIGN_OR_RETURN(std::string name, internal::AsString(*type, "data.mask_type"));
      // The reference builds its random-tube collator for any value but multiblock3d.
      mask_type_ = name == "multiblock3d" ? MaskType::kMultiblock3d : MaskType::kRandomTube;
      Mapped("data.mask_type", "mask[i].type");
    }
    RETURN_IF_ERROR(Map(d, "batch_size", "optim.batch_size", &spec_.optim.batch_size));
    RETURN_IF_ERROR(Map(d, "num_clips", "data.num_clips", &spec_.data.num_clips));
    RETURN_IF_ERROR(Map(d, "num_frames", "model.frames", &spec_.model.frames));
    RETURN_IF_ERROR(Map(d, "tubelet_size", "model.tubelet", &spec_.model.tubelet));
    RETURN_IF_ERROR(Map(d, "sampling_rate", "data.frame_step", &spec_.data.frame_step));
    RETURN_IF_ERROR(Map(d, "crop_size", "model.crop", &spec_.model.crop));
    RETURN_IF_ERROR(Map(d, "patch_size", "model.patch", &spec_.model.patch));
    RETURN_IF_ERROR(RequireFalse(d, "filter_short_videos",
                                 "must be false: short videos are padded with their last frame"));
    Ignore(d, "decode_one_clip", "unused for video by the reference");
    Ignore(d, "clip_duration", "unused for video by the reference");
    Ignore(d, "pin_mem", "a data-loader detail");
    Ignore(d, "num_workers", "decoding runs on the dataworkers (resources.dataworkers)");
    Ignore(d, "log_resource_utilization", "see the services' metrics");

    ASSIGN_OR_RETURN(Section aug, top.Sub("data_aug"));
    RETURN_IF_ERROR(Map(aug, "random_resize_aspect_ratio", "data.random_resized_crop.ratio",
                        &spec_.data.random_resized_crop.ratio));
    RETURN_IF_ERROR(Map(aug, "random_resize_scale", "data.random_resized_crop.scale",
                        &spec_.data.random_resized_crop.scale));
    RETURN_IF_ERROR(RequireFalse(aug, "auto_augment", "must be false: not implemented"));
    RETURN_IF_ERROR(RequireFalse(aug, "motion_shift", "must be false: not implemented"));
    if (const Node* reprob = aug.Get("reprob"); reprob != nullptr) {
      ASSIGN_OR_RETURN(double p, internal::AsNumber(*reprob, "data_aug.reprob"));
      if (p != 0) {
        return Unsupported("data_aug.reprob", "must be 0: random erasing is not implemented",
                           *reprob);
      }
    }

    ASSIGN_OR_RETURN(Section loss, top.Sub("loss"));
    RETURN_IF_ERROR(Map(loss, "loss_exp", "loss.exponent", &spec_.loss.exponent));
    return Map(loss, "reg_coeff", "loss.reg_coeff", &spec_.loss.reg_coeff);
  }

  absl::Status ImportModel(const Section& top) {
    ASSIGN_OR_RETURN(Section m, top.Sub("model"));
    if (const Node* name = m.Get("model_name"); name != nullptr) {
      ModelPreset preset;
      if (!name->is_scalar() || !internal::ParseEnum(name->scalar, &preset) ||
          preset == ModelPreset::kNano) {
        return Unsupported("model.model_name",
                           "must be one of vit_tiny, vit_small, vit_base, vit_large, vit_huge or "
                           "vit_giant",
                           *name);
      }
      spec_.model.preset = preset;
      Mapped("model.model_name", "model.preset");
    }
    RETURN_IF_ERROR(Map(m, "pred_depth", "model.predictor.depth", &spec_.model.predictor.depth));
    RETURN_IF_ERROR(
        Map(m, "pred_embed_dim", "model.predictor.width", &spec_.model.predictor.width));
    RETURN_IF_ERROR(Map(m, "uniform_power", "model.uniform_power", &spec_.model.uniform_power));
    RETURN_IF_ERROR(
        Map(m, "use_mask_tokens", "model.use_mask_tokens", &spec_.model.use_mask_tokens));
    RETURN_IF_ERROR(Map(m, "zero_init_mask_tokens", "model.zero_init_mask_tokens",
                        &spec_.model.zero_init_mask_tokens));
    Ignore(m, "use_sdpa", "attention always uses scaled dot-product attention");
    return absl::OkStatus();
  }

  absl::Status ImportOptimization(const Section& top) {
    ASSIGN_OR_RETURN(Section o, top.Sub("optimization"));
    OptimSpec& opt = spec_.optim;
    const Node* ipe_node = o.Get("ipe");
    if (ipe_node == nullptr) {
      return absl::InvalidArgumentError(
          "optimization.ipe: required (the reference falls back to the data loader's length, "
          "which is not known here)");
    }
    ASSIGN_OR_RETURN(ipe_, internal::AsInt(*ipe_node, "optimization.ipe"));
    if (ipe_ < 1 || ipe_ > 1000000000) {
      return Unsupported("optimization.ipe", "must be in [1, 1000000000]", *ipe_node);
    }
    opt.ipe = ipe_;
    Mapped("optimization.ipe", "optim.ipe");
    if (const Node* epochs = o.Get("epochs"); epochs != nullptr) {
      ASSIGN_OR_RETURN(int64_t n, internal::AsInt(*epochs, "optimization.epochs"));
      if (n < 1 || n > 1000000000) {
        return Unsupported("optimization.epochs", "must be in [1, 1000000000]", *epochs);
      }
      opt.steps = n * ipe_;
      Mapped("optimization.epochs", "optim.steps",
             absl::StrCat(" (epochs × ipe = ", n, " × ", ipe_, ")"));
    }
    if (const Node* warmup = o.Get("warmup"); warmup != nullptr) {
      ASSIGN_OR_RETURN(double epochs, internal::AsNumber(*warmup, "optimization.warmup"));
      if (epochs < 0 || epochs > 1e9) {
        return Unsupported("optimization.warmup", "must be in [0, 1000000000]", *warmup);
      }
      // As the reference's scheduler: int(warmup · ipe).
      opt.warmup = static_cast<int64_t>(epochs * static_cast<double>(ipe_));
      Mapped("optimization.warmup", "optim.warmup",
             absl::StrCat(" (int(warmup × ipe) = ", opt.warmup, ")"));
    }
    // Absent from a reference config, ipe_scale is 1.0 and clip_grad None (no clipping).
    opt.schedule_scale = 1.0;
    RETURN_IF_ERROR(Map(o, "ipe_scale", "optim.schedule_scale", &opt.schedule_scale));
    present_.insert("optim.schedule_scale");
    opt.clip = 0;
    RETURN_IF_ERROR(Map(o, "clip_grad", "optim.clip", &opt.clip));
    present_.insert("optim.clip");
    RETURN_IF_ERROR(Map(o, "weight_decay", "optim.wd.start", &opt.wd.start));
    RETURN_IF_ERROR(Map(o, "final_weight_decay", "optim.wd.final", &opt.wd.final));
    RETURN_IF_ERROR(Map(o, "start_lr", "optim.lr.start", &opt.lr.start));
    RETURN_IF_ERROR(Map(o, "lr", "optim.lr.peak", &opt.lr.peak));
    RETURN_IF_ERROR(Map(o, "final_lr", "optim.lr.final", &opt.lr.final));
    if (const Node* ema = o.Get("ema"); ema != nullptr) {
      ASSIGN_OR_RETURN(std::vector<double> v,
                       internal::AsNumbers(*ema, "optimization.ema", 2, "[start, final]"));
      opt.ema = StartFinal{v[0], v[1]};
      Mapped("optimization.ema", "optim.ema.start, optim.ema.final");
      origins_.emplace_back("optim.ema", "optimization.ema");
    }
    RETURN_IF_ERROR(Map(o, "betas", "optim.betas", &opt.betas));
    return Map(o, "eps", "optim.eps", &opt.eps);
  }

  absl::Status ImportMasks(const Section& top) {
    const Node* list = top.Get("mask");
    if (list == nullptr) return absl::OkStatus();
    if (!list->is_list() || list->items.empty() || list->items.size() > kMaxMaskConfigs) {
      return Unsupported(
          "mask", absl::StrCat("must be a list of 1 to ", kMaxMaskConfigs, " entries"), *list);
    }
    const Field& schema = *ReferenceSchema().Find("mask");
    spec_.mask.clear();
    for (size_t i = 0; i < list->items.size(); ++i) {
      ASSIGN_OR_RETURN(Section s,
                       Section::Open(&list->items[i], absl::StrCat("mask.", i), schema, nullptr));
      MaskSpec m;
      m.type = mask_type_;
      RETURN_IF_ERROR(s.Read("aspect_ratio", &m.aspect_ratio));
      RETURN_IF_ERROR(s.Read("num_blocks", &m.num_blocks));
      RETURN_IF_ERROR(s.Read("spatial_scale", &m.spatial_scale));
      RETURN_IF_ERROR(s.Read("temporal_scale", &m.temporal_scale));
      RETURN_IF_ERROR(s.Read("max_temporal_keep", &m.max_temporal_keep));
      RETURN_IF_ERROR(s.Read("max_keep", &m.max_keep));
      RETURN_IF_ERROR(s.Read("ratio", &m.ratio));
      spec_.mask.push_back(m);
    }
    mappings_.push_back("mask -> mask (same keys)");
    present_.insert("mask");
    return absl::OkStatus();
  }

  absl::Status ImportMeta(const Section& top) {
    ASSIGN_OR_RETURN(Section meta, top.Sub("meta"));
    // Absent, the reference's seed is 0 (_GLOBAL_SEED).
    spec_.seed = 0;
    RETURN_IF_ERROR(Map(meta, "seed", "seed", &spec_.seed));
    present_.insert("seed");
    if (const Node* dtype = meta.Get("dtype"); dtype != nullptr) {
      ASSIGN_OR_RETURN(std::string name, internal::AsString(*dtype, "meta.dtype"));
      name = absl::AsciiStrToLower(name);
      if (name == "bfloat16") {
        spec_.resources.precision = Precision::kBfloat16;
      } else if (name == "float32") {
        spec_.resources.precision = Precision::kFloat32;
      } else {
        return Unsupported("meta.dtype", "must be bfloat16 or float32", *dtype);
      }
      Mapped("meta.dtype", "resources.precision");
    }
    if (const Node* every = meta.Get("save_every_freq"); every != nullptr) {
      ASSIGN_OR_RETURN(int64_t epochs, internal::AsInt(*every, "meta.save_every_freq"));
      if (epochs > 1000000000) {
        return Unsupported("meta.save_every_freq", "must be <= 1000000000", *every);
      }
      if (epochs > 0) {
        spec_.checkpoint.keep_every = epochs * ipe_;
        Mapped("meta.save_every_freq", "checkpoint.keep_every",
               absl::StrCat(" (save_every_freq × ipe = ", epochs, " × ", ipe_, ")"));
      }
    }
    Ignore(meta, "load_checkpoint", "a job resumes from its own checkpoints");
    Ignore(meta, "read_checkpoint", "a job resumes from its own checkpoints");
    Ignore(meta, "eval_freq", "unused by pretraining");
    Ignore(meta, "use_sdpa", "attention always uses scaled dot-product attention");
    Ignore(meta, "skip_batches", "the data position of a job is its step");
    return absl::OkStatus();
  }

  // A validation error about a field that a reference key set, with that key in front.
  absl::Status Attribute(const absl::Status& error) const {
    for (auto it = origins_.rbegin(); it != origins_.rend(); ++it) {
      std::optional<absl::Status> attributed =
          internal::Attribute(error, it->first, absl::StrCat(it->second, ": "));
      if (attributed) return *attributed;
    }
    return error;
  }

  std::string Render() const {
    std::string out =
        "# Imported from a facebookresearch/jepa pretrain config (configs/pretrain/*.yaml).\n"
        "# Every key below is spelled out; see docs/job-spec.md.\n#\n"
        "# Reference key -> job-spec key:\n";
    for (const std::string& m : mappings_) absl::StrAppend(&out, "#   ", m, "\n");
    absl::StrAppend(&out,
                    "#   (the reference checkpoints every virtual epoch: checkpoint.every_steps = "
                    "optim.ipe)\n");
    if (!notes_.empty()) {
      absl::StrAppend(&out, "# Without effect here:\n");
      for (const std::string& n : notes_) absl::StrAppend(&out, "#   ", n, "\n");
    }
    absl::StrAppend(&out, "\n", ToYaml(spec_));
    return out;
  }

  JobSpec spec_;
  std::set<std::string> present_;
  std::vector<std::pair<std::string, std::string>> origins_;  // (spec path, reference path)
  std::vector<std::string> mappings_;
  std::vector<std::string> notes_;
  MaskType mask_type_ = MaskType::kMultiblock3d;
  int64_t ipe_ = 1;
};

}  // namespace

absl::StatusOr<std::string> ImportReferenceConfig(std::string_view reference_yaml) {
  ASSIGN_OR_RETURN(
      Node root, internal::LoadYaml(absl::string_view(reference_yaml.data(), reference_yaml.size()),
                                    "reference config"));
  if (root.is_null()) return absl::InvalidArgumentError("reference config: empty document");
  if (!root.is_map()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "reference config: the top level must be a map, got ", internal::Describe(root)));
  }
  Importer importer;
  return importer.Run(root);
}

}  // namespace vjepa::spec
