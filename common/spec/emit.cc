#include "common/spec/emit.h"

#include <array>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/spec/enum_names.h"

namespace vjepa::spec::internal {
namespace {

Node Int(int64_t v) { return Node::Scalar(absl::StrCat(v), true); }

// Floats keep a decimal point or an exponent so that they read as floats elsewhere too.
Node Num(double v) {
  std::string text = FormatNumber(v);
  if (text.find_first_of(".en") == std::string::npos) text += ".0";
  return Node::Scalar(text, true);
}

Node Bool(bool v) { return Node::Scalar(v ? "true" : "false", true); }

template <typename E>
Node Enum(E v) {
  const absl::string_view name = EnumName(v);
  if (name.empty()) return Int(static_cast<int64_t>(v));
  return Node::Scalar(std::string(name), true);
}

Node Pair(double a, double b) {
  Node list = Node::List();
  list.items = {Num(a), Num(b)};
  return list;
}

Node Pair(const Interval& v) { return Pair(v.min, v.max); }

Node Triple(const std::array<double, 3>& v) {
  Node list = Node::List();
  list.items = {Num(v[0]), Num(v[1]), Num(v[2])};
  return list;
}

Node OptionalInt(const std::optional<int64_t>& v) { return v ? Int(*v) : Node::Null(); }

Node StartFinalNode(const StartFinal& v) {
  Node n = Node::Map();
  n.Add("start", Num(v.start));
  n.Add("final", Num(v.final));
  return n;
}

Node ModelNode(const ModelSpec& m) {
  Node n = Node::Map();
  n.Add("preset", Enum(m.preset));
  n.Add("embed_dim", Int(m.embed_dim));
  n.Add("depth", Int(m.depth));
  n.Add("heads", Int(m.heads));
  n.Add("mlp_ratio", Num(m.mlp_ratio));
  n.Add("frames", Int(m.frames));
  n.Add("crop", Int(m.crop));
  n.Add("patch", Int(m.patch));
  n.Add("tubelet", Int(m.tubelet));
  Node p = Node::Map();
  p.Add("depth", Int(m.predictor.depth));
  p.Add("width", Int(m.predictor.width));
  p.Add("heads", Int(m.predictor.heads));
  n.Add("predictor", std::move(p));
  n.Add("uniform_power", Bool(m.uniform_power));
  n.Add("use_mask_tokens", Bool(m.use_mask_tokens));
  n.Add("zero_init_mask_tokens", Bool(m.zero_init_mask_tokens));
  return n;
}

Node DataNode(const DataSpec& d) {
  Node n = Node::Map();
  n.Add("frame_step", Int(d.frame_step));
  n.Add("num_clips", Int(d.num_clips));
  Node rrc = Node::Map();
  rrc.Add("scale", Pair(d.random_resized_crop.scale));
  rrc.Add("ratio", Pair(d.random_resized_crop.ratio));
  n.Add("random_resized_crop", std::move(rrc));
  n.Add("flip", Num(d.flip));
  Node norm = Node::Map();
  norm.Add("mean", Triple(d.normalize.mean));
  norm.Add("std", Triple(d.normalize.stddev));
  n.Add("normalize", std::move(norm));
  return n;
}

Node OptimNode(const OptimSpec& o) {
  Node n = Node::Map();
  n.Add("steps", Int(o.steps));
  n.Add("batch_size", Int(o.batch_size));
  Node lr = Node::Map();
  lr.Add("start", Num(o.lr.start));
  lr.Add("peak", Num(o.lr.peak));
  lr.Add("final", Num(o.lr.final));
  n.Add("lr", std::move(lr));
  n.Add("wd", StartFinalNode(o.wd));
  n.Add("ema", StartFinalNode(o.ema));
  n.Add("clip", Num(o.clip));
  n.Add("warmup", Int(o.warmup));
  n.Add("schedule_scale", Num(o.schedule_scale));
  n.Add("betas", Pair(o.betas[0], o.betas[1]));
  n.Add("eps", Num(o.eps));
  n.Add("ipe", Int(o.ipe));
  return n;
}

Node ProbeNode(const ProbeSpec& p) {
  Node n = Node::Map();
  n.Add("checkpoint", Node::String(p.checkpoint));
  n.Add("checkpoint_key", Node::String(p.checkpoint_key));
  n.Add("checkpoint_step", OptionalInt(p.checkpoint_step));
  n.Add("num_classes", OptionalInt(p.num_classes));
  n.Add("pooling", Enum(p.pooling));
  n.Add("epochs", Int(p.epochs));
  n.Add("lr", Num(p.lr));
  n.Add("wd", StartFinalNode(p.wd));
  n.Add("clip", Num(p.clip));
  n.Add("batch_size", Int(p.batch_size));
  n.Add("segments", Int(p.segments));
  n.Add("views", Int(p.views));
  n.Add("val_manifest", Node::String(p.val_manifest));
  return n;
}

}  // namespace

Node MaskToNode(const MaskSpec& m) {
  Node n = Node::Map();
  n.Add("type", Enum(m.type));
  n.Add("num_blocks", Int(m.num_blocks));
  n.Add("spatial_scale", Pair(m.spatial_scale));
  n.Add("temporal_scale", Pair(m.temporal_scale));
  n.Add("aspect_ratio", Pair(m.aspect_ratio));
  n.Add("max_temporal_keep", Num(m.max_temporal_keep));
  n.Add("max_keep", OptionalInt(m.max_keep));
  n.Add("ratio", Num(m.ratio));
  n.Add("context_frames", Int(m.context_frames));
  return n;
}

Node SpecToNode(const JobSpec& spec) {
  Node root = Node::Map();
  root.Add("name", Node::String(spec.name));
  root.Add("kind", Enum(spec.kind));
  root.Add("seed", Int(spec.seed));
  root.Add("model", ModelNode(spec.model));
  Node dataset = Node::Map();
  dataset.Add("manifest", Node::String(spec.dataset.manifest));
  dataset.Add("root", Node::String(spec.dataset.root));
  root.Add("dataset", std::move(dataset));
  root.Add("data", DataNode(spec.data));
  Node masks = Node::List();
  for (const MaskSpec& m : spec.mask) masks.items.push_back(MaskToNode(m));
  root.Add("mask", std::move(masks));
  Node options = Node::Map();
  options.Add("share_block_size", Bool(spec.mask_options.share_block_size));
  root.Add("mask_options", std::move(options));
  Node loss = Node::Map();
  loss.Add("target", Enum(spec.loss.target));
  loss.Add("exponent", Num(spec.loss.exponent));
  loss.Add("reg_coeff", Num(spec.loss.reg_coeff));
  root.Add("loss", std::move(loss));
  root.Add("optim", OptimNode(spec.optim));
  root.Add("probe", ProbeNode(spec.probe));
  Node ckpt = Node::Map();
  ckpt.Add("every_steps", Int(spec.checkpoint.every_steps));
  ckpt.Add("keep_last", Int(spec.checkpoint.keep_last));
  ckpt.Add("keep_every", Int(spec.checkpoint.keep_every));
  ckpt.Add("initial", Bool(spec.checkpoint.initial));
  root.Add("checkpoint", std::move(ckpt));
  Node res = Node::Map();
  res.Add("trainers", Int(spec.resources.trainers));
  res.Add("dataworkers", Int(spec.resources.dataworkers));
  res.Add("device", Enum(spec.resources.device));
  res.Add("precision", Enum(spec.resources.precision));
  res.Add("torch_threads", Int(spec.resources.torch_threads));
  res.Add("priority", Int(spec.resources.priority));
  root.Add("resources", std::move(res));
  return root;
}

}  // namespace vjepa::spec::internal

namespace vjepa::spec {

std::string ToYaml(const JobSpec& spec) { return internal::RenderYaml(internal::SpecToNode(spec)); }

}  // namespace vjepa::spec
