#include "common/spec/decode.h"

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"

namespace vjepa::spec::internal {
namespace {

absl::Status TypeError(absl::string_view path, absl::string_view expected, const Node& node) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": must be ", expected, ", got ", Describe(node)));
}

template <typename T>
absl::Status Assign(absl::StatusOr<T> value, T* out) {
  if (!value.ok()) return value.status();
  *out = *std::move(value);
  return absl::OkStatus();
}

absl::Status DecodeModel(const Section& top, ModelSpec* m) {
  ASSIGN_OR_RETURN(Section s, top.Sub("model"));
  RETURN_IF_ERROR(s.ReadEnum("preset", &m->preset));
  RETURN_IF_ERROR(s.Read("embed_dim", &m->embed_dim));
  RETURN_IF_ERROR(s.Read("depth", &m->depth));
  RETURN_IF_ERROR(s.Read("heads", &m->heads));
  RETURN_IF_ERROR(s.Read("mlp_ratio", &m->mlp_ratio));
  RETURN_IF_ERROR(s.Read("frames", &m->frames));
  RETURN_IF_ERROR(s.Read("crop", &m->crop));
  RETURN_IF_ERROR(s.Read("patch", &m->patch));
  RETURN_IF_ERROR(s.Read("tubelet", &m->tubelet));
  ASSIGN_OR_RETURN(Section p, s.Sub("predictor"));
  RETURN_IF_ERROR(p.Read("depth", &m->predictor.depth));
  RETURN_IF_ERROR(p.Read("width", &m->predictor.width));
  RETURN_IF_ERROR(p.Read("heads", &m->predictor.heads));
  RETURN_IF_ERROR(s.Read("uniform_power", &m->uniform_power));
  RETURN_IF_ERROR(s.Read("use_mask_tokens", &m->use_mask_tokens));
  return s.Read("zero_init_mask_tokens", &m->zero_init_mask_tokens);
}

absl::Status DecodeData(const Section& top, DatasetSpec* dataset, DataSpec* d) {
  ASSIGN_OR_RETURN(Section ds, top.Sub("dataset"));
  RETURN_IF_ERROR(ds.Read("manifest", &dataset->manifest));
  RETURN_IF_ERROR(ds.Read("root", &dataset->root));
  ASSIGN_OR_RETURN(Section s, top.Sub("data"));
  RETURN_IF_ERROR(s.Read("frame_step", &d->frame_step));
  RETURN_IF_ERROR(s.Read("num_clips", &d->num_clips));
  ASSIGN_OR_RETURN(Section rrc, s.Sub("random_resized_crop"));
  RETURN_IF_ERROR(rrc.Read("scale", &d->random_resized_crop.scale));
  RETURN_IF_ERROR(rrc.Read("ratio", &d->random_resized_crop.ratio));
  RETURN_IF_ERROR(s.Read("flip", &d->flip));
  ASSIGN_OR_RETURN(Section norm, s.Sub("normalize"));
  RETURN_IF_ERROR(norm.Read("mean", &d->normalize.mean));
  return norm.Read("std", &d->normalize.stddev);
}

absl::Status DecodeMasks(const Section& top, std::set<std::string>* present,
                         std::vector<MaskSpec>* masks) {
  const Node* list = top.Get("mask");
  if (list == nullptr) return absl::OkStatus();
  if (!list->is_list()) return TypeError("mask", "a list of mask configs", *list);
  if (list->items.empty() || list->items.size() > kMaxMaskConfigs) {
    return absl::InvalidArgumentError(absl::StrCat("mask: must have 1 to ", kMaxMaskConfigs,
                                                   " entries, got ", list->items.size()));
  }
  const Field& schema = *SpecSchema().Find("mask");
  masks->clear();
  for (size_t i = 0; i < list->items.size(); ++i) {
    MaskSpec m;
    ASSIGN_OR_RETURN(Section s,
                     Section::Open(&list->items[i], absl::StrCat("mask.", i), schema, present));
    RETURN_IF_ERROR(s.ReadEnum("type", &m.type));
    RETURN_IF_ERROR(s.Read("num_blocks", &m.num_blocks));
    RETURN_IF_ERROR(s.Read("spatial_scale", &m.spatial_scale));
    RETURN_IF_ERROR(s.Read("temporal_scale", &m.temporal_scale));
    RETURN_IF_ERROR(s.Read("aspect_ratio", &m.aspect_ratio));
    RETURN_IF_ERROR(s.Read("max_temporal_keep", &m.max_temporal_keep));
    RETURN_IF_ERROR(s.Read("max_keep", &m.max_keep));
    RETURN_IF_ERROR(s.Read("ratio", &m.ratio));
    RETURN_IF_ERROR(s.Read("context_frames", &m.context_frames));
    masks->push_back(m);
  }
  return absl::OkStatus();
}

absl::Status DecodeStartFinal(const Section& parent, absl::string_view key, StartFinal* out) {
  ASSIGN_OR_RETURN(Section s, parent.Sub(key));
  RETURN_IF_ERROR(s.Read("start", &out->start));
  return s.Read("final", &out->final);
}

absl::Status DecodeOptim(const Section& top, OptimSpec* o) {
  ASSIGN_OR_RETURN(Section s, top.Sub("optim"));
  RETURN_IF_ERROR(s.Read("steps", &o->steps));
  RETURN_IF_ERROR(s.Read("batch_size", &o->batch_size));
  ASSIGN_OR_RETURN(Section lr, s.Sub("lr"));
  RETURN_IF_ERROR(lr.Read("start", &o->lr.start));
  RETURN_IF_ERROR(lr.Read("peak", &o->lr.peak));
  RETURN_IF_ERROR(lr.Read("final", &o->lr.final));
  RETURN_IF_ERROR(DecodeStartFinal(s, "wd", &o->wd));
  RETURN_IF_ERROR(DecodeStartFinal(s, "ema", &o->ema));
  RETURN_IF_ERROR(s.Read("clip", &o->clip));
  RETURN_IF_ERROR(s.Read("warmup", &o->warmup));
  RETURN_IF_ERROR(s.Read("schedule_scale", &o->schedule_scale));
  RETURN_IF_ERROR(s.Read("betas", &o->betas));
  RETURN_IF_ERROR(s.Read("eps", &o->eps));
  return s.Read("ipe", &o->ipe);
}

absl::Status DecodeProbe(const Section& top, ProbeSpec* p) {
  ASSIGN_OR_RETURN(Section s, top.Sub("probe"));
  RETURN_IF_ERROR(s.Read("checkpoint", &p->checkpoint));
  RETURN_IF_ERROR(s.Read("checkpoint_key", &p->checkpoint_key));
  RETURN_IF_ERROR(s.Read("checkpoint_step", &p->checkpoint_step));
  RETURN_IF_ERROR(s.Read("num_classes", &p->num_classes));
  RETURN_IF_ERROR(s.ReadEnum("pooling", &p->pooling));
  RETURN_IF_ERROR(s.Read("epochs", &p->epochs));
  RETURN_IF_ERROR(s.Read("lr", &p->lr));
  RETURN_IF_ERROR(DecodeStartFinal(s, "wd", &p->wd));
  RETURN_IF_ERROR(s.Read("clip", &p->clip));
  RETURN_IF_ERROR(s.Read("batch_size", &p->batch_size));
  RETURN_IF_ERROR(s.Read("segments", &p->segments));
  RETURN_IF_ERROR(s.Read("views", &p->views));
  return s.Read("val_manifest", &p->val_manifest);
}

absl::Status DecodeRest(const Section& top, JobSpec* spec) {
  ASSIGN_OR_RETURN(Section options, top.Sub("mask_options"));
  RETURN_IF_ERROR(options.Read("share_block_size", &spec->mask_options.share_block_size));
  ASSIGN_OR_RETURN(Section loss, top.Sub("loss"));
  RETURN_IF_ERROR(loss.ReadEnum("target", &spec->loss.target));
  RETURN_IF_ERROR(loss.Read("exponent", &spec->loss.exponent));
  RETURN_IF_ERROR(loss.Read("reg_coeff", &spec->loss.reg_coeff));
  RETURN_IF_ERROR(DecodeOptim(top, &spec->optim));
  RETURN_IF_ERROR(DecodeProbe(top, &spec->probe));
  ASSIGN_OR_RETURN(Section ckpt, top.Sub("checkpoint"));
  RETURN_IF_ERROR(ckpt.Read("every_steps", &spec->checkpoint.every_steps));
  RETURN_IF_ERROR(ckpt.Read("keep_last", &spec->checkpoint.keep_last));
  RETURN_IF_ERROR(ckpt.Read("keep_every", &spec->checkpoint.keep_every));
  RETURN_IF_ERROR(ckpt.Read("initial", &spec->checkpoint.initial));
  ASSIGN_OR_RETURN(Section res, top.Sub("resources"));
  RETURN_IF_ERROR(res.Read("trainers", &spec->resources.trainers));
  RETURN_IF_ERROR(res.Read("dataworkers", &spec->resources.dataworkers));
  RETURN_IF_ERROR(res.ReadEnum("device", &spec->resources.device));
  RETURN_IF_ERROR(res.ReadEnum("precision", &spec->resources.precision));
  RETURN_IF_ERROR(res.Read("torch_threads", &spec->resources.torch_threads));
  return res.Read("priority", &spec->resources.priority);
}

}  // namespace

absl::StatusOr<int64_t> AsInt(const Node& node, absl::string_view path) {
  int64_t v;
  if (!node.is_scalar() || !node.plain || !absl::SimpleAtoi(node.scalar, &v)) {
    return TypeError(path, "an integer", node);
  }
  return v;
}

absl::StatusOr<double> AsNumber(const Node& node, absl::string_view path) {
  double v;
  if (!node.is_scalar() || !node.plain || !absl::SimpleAtod(node.scalar, &v)) {
    return TypeError(path, "a number", node);
  }
  if (!std::isfinite(v)) return TypeError(path, "a finite number", node);
  return v;
}

absl::StatusOr<bool> AsBool(const Node& node, absl::string_view path) {
  if (node.is_scalar() && node.plain) {
    const std::string& s = node.scalar;
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
  }
  return TypeError(path, "true or false", node);
}

absl::StatusOr<std::string> AsString(const Node& node, absl::string_view path) {
  if (!node.is_scalar()) return TypeError(path, "a string", node);
  return node.scalar;
}

absl::StatusOr<std::vector<double>> AsNumbers(const Node& node, absl::string_view path, size_t n,
                                              absl::string_view shape) {
  const std::string expected = absl::StrCat("a list of ", n, " numbers ", shape);
  if (!node.is_list() || node.items.size() != n) return TypeError(path, expected, node);
  std::vector<double> out;
  for (const Node& item : node.items) {
    absl::StatusOr<double> v = AsNumber(item, path);
    if (!v.ok()) return TypeError(path, expected, node);
    out.push_back(*v);
  }
  return out;
}

absl::StatusOr<Section> Section::Open(const Node* node, std::string path, const Field& schema,
                                      std::set<std::string>* present) {
  if (node != nullptr && node->is_null()) node = nullptr;
  if (node != nullptr) {
    if (!node->is_map()) return TypeError(path, "a map", *node);
    RETURN_IF_ERROR(CheckKnownKeys(*node, path, schema));
  }
  return Section(node, std::move(path), &schema, present);
}

absl::StatusOr<Section> Section::Sub(absl::string_view key) const {
  const Field* child = schema_->Find(key);
  if (child == nullptr) {
    return absl::InternalError(absl::StrCat(PathOf(key), ": not in the schema"));
  }
  return Open(node_ ? node_->Find(key) : nullptr, PathOf(key), *child, present_);
}

const Node* Section::Get(absl::string_view key) const {
  if (node_ == nullptr) return nullptr;
  const Node* n = node_->Find(key);
  if (n == nullptr || n->is_null()) return nullptr;
  if (present_ != nullptr) present_->insert(PathOf(key));
  return n;
}

absl::Status Section::Read(absl::string_view key, int64_t* out) const {
  const Node* n = Get(key);
  return n ? Assign(AsInt(*n, PathOf(key)), out) : absl::OkStatus();
}

absl::Status Section::Read(absl::string_view key, double* out) const {
  const Node* n = Get(key);
  return n ? Assign(AsNumber(*n, PathOf(key)), out) : absl::OkStatus();
}

absl::Status Section::Read(absl::string_view key, bool* out) const {
  const Node* n = Get(key);
  return n ? Assign(AsBool(*n, PathOf(key)), out) : absl::OkStatus();
}

absl::Status Section::Read(absl::string_view key, std::string* out) const {
  const Node* n = Get(key);
  return n ? Assign(AsString(*n, PathOf(key)), out) : absl::OkStatus();
}

absl::Status Section::Read(absl::string_view key, Interval* out) const {
  const Node* n = Get(key);
  if (n == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<double> v, AsNumbers(*n, PathOf(key), 2, "[min, max]"));
  *out = Interval{v[0], v[1]};
  return absl::OkStatus();
}

absl::Status Section::Read(absl::string_view key, std::array<double, 2>* out) const {
  const Node* n = Get(key);
  if (n == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<double> v, AsNumbers(*n, PathOf(key), 2, "[a, b]"));
  *out = {v[0], v[1]};
  return absl::OkStatus();
}

absl::Status Section::Read(absl::string_view key, std::array<double, 3>* out) const {
  const Node* n = Get(key);
  if (n == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<double> v, AsNumbers(*n, PathOf(key), 3, "[r, g, b]"));
  *out = {v[0], v[1], v[2]};
  return absl::OkStatus();
}

absl::Status Section::Read(absl::string_view key, std::optional<int64_t>* out) const {
  const Node* n = Get(key);
  if (n == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(int64_t v, AsInt(*n, PathOf(key)));
  *out = v;
  return absl::OkStatus();
}

absl::Status DecodeSpec(const Node& root, JobSpec* spec, std::set<std::string>* present) {
  ASSIGN_OR_RETURN(Section top, Section::Open(&root, "", SpecSchema(), present));
  RETURN_IF_ERROR(top.Read("name", &spec->name));
  RETURN_IF_ERROR(top.ReadEnum("kind", &spec->kind));
  RETURN_IF_ERROR(top.Read("seed", &spec->seed));
  RETURN_IF_ERROR(DecodeModel(top, &spec->model));
  RETURN_IF_ERROR(DecodeData(top, &spec->dataset, &spec->data));
  RETURN_IF_ERROR(DecodeMasks(top, present, &spec->mask));
  return DecodeRest(top, spec);
}

void ResolveDefaults(const std::set<std::string>& present, JobSpec* spec) {
  auto set = [&present](const std::string& path) { return present.count(path) > 0; };
  ModelSpec& m = spec->model;
  const ModelSpec preset = PresetModel(m.preset);
  if (!set("model.embed_dim")) m.embed_dim = preset.embed_dim;
  if (!set("model.depth")) m.depth = preset.depth;
  if (!set("model.heads")) m.heads = preset.heads;
  if (!set("model.mlp_ratio")) m.mlp_ratio = preset.mlp_ratio;
  if (!set("model.frames")) m.frames = preset.frames;
  if (!set("model.crop")) m.crop = preset.crop;
  if (!set("model.patch")) m.patch = preset.patch;
  if (!set("model.tubelet")) m.tubelet = preset.tubelet;
  if (!set("model.predictor.depth")) m.predictor.depth = preset.predictor.depth;
  if (!set("model.predictor.width")) m.predictor.width = preset.predictor.width;
  if (!set("model.predictor.heads")) m.predictor.heads = m.heads;

  if (!set("mask")) spec->mask = DefaultMasks(m.preset);
  for (size_t i = 0; i < spec->mask.size(); ++i) {
    if (!set(absl::StrCat("mask.", i, ".context_frames"))) {
      spec->mask[i].context_frames = DefaultContextFrames(m.frames, m.tubelet);
    }
  }

  OptimSpec& o = spec->optim;
  if (!set("optim.warmup")) o.warmup = DefaultWarmup(o.steps);
  if (!set("optim.ipe")) o.ipe = DefaultIpe(o.steps);
  if (!set("checkpoint.every_steps")) spec->checkpoint.every_steps = o.ipe;
  if (!set("resources.precision")) {
    spec->resources.precision =
        spec->resources.device == Device::kCuda ? Precision::kBfloat16 : Precision::kFloat32;
  }
}

std::optional<absl::Status> Attribute(const absl::Status& error, absl::string_view key_path,
                                      absl::string_view prefix) {
  const absl::string_view message = error.message();
  const size_t colon = message.find(": ");
  if (colon == absl::string_view::npos || key_path.empty()) return std::nullopt;
  const absl::string_view field = message.substr(0, colon);
  auto within = [](absl::string_view inner, absl::string_view outer) {
    return inner == outer || (inner.size() > outer.size() &&
                              inner.substr(0, outer.size()) == outer && inner[outer.size()] == '.');
  };
  // An error of the whole mask list (its length) is caused by an override of one of its entries.
  if (!within(field, key_path) && !(field == "mask" && within(key_path, field))) {
    return std::nullopt;
  }
  return absl::Status(error.code(), absl::StrCat(prefix, message));
}

}  // namespace vjepa::spec::internal
