#include "common/spec/schema.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/spec/emit.h"
#include "common/status/status_macros.h"

namespace vjepa::spec::internal {
namespace {

using Shape = Field::Shape;

Field V(absl::string_view name) { return Field{name, Shape::kValue, {}}; }
Field L(absl::string_view name) { return Field{name, Shape::kList, {}}; }
Field M(absl::string_view name, std::vector<Field> fields) {
  return Field{name, Shape::kMap, std::move(fields)};
}
Field ML(absl::string_view name, std::vector<Field> fields) {
  return Field{name, Shape::kMapList, std::move(fields)};
}

Field* BuildSchema() {
  return new Field(M(
      "",
      {
          V("name"),
          V("kind"),
          V("seed"),
          M("model", {V("preset"), V("embed_dim"), V("depth"), V("heads"), V("mlp_ratio"),
                      V("frames"), V("crop"), V("patch"), V("tubelet"),
                      M("predictor", {V("depth"), V("width"), V("heads")}), V("uniform_power"),
                      V("use_mask_tokens"), V("zero_init_mask_tokens")}),
          M("dataset", {V("manifest"), V("root")}),
          M("data",
            {V("frame_step"), V("num_clips"), M("random_resized_crop", {L("scale"), L("ratio")}),
             V("flip"), M("normalize", {L("mean"), L("std")})}),
          ML("mask", {V("type"), V("num_blocks"), L("spatial_scale"), L("temporal_scale"),
                      L("aspect_ratio"), V("max_temporal_keep"), V("max_keep"), V("ratio"),
                      V("context_frames")}),
          M("mask_options", {V("share_block_size")}),
          M("loss", {V("target"), V("exponent"), V("reg_coeff")}),
          M("optim", {V("steps"), V("batch_size"), M("lr", {V("start"), V("peak"), V("final")}),
                      M("wd", {V("start"), V("final")}), M("ema", {V("start"), V("final")}),
                      V("clip"), V("warmup"), V("schedule_scale"), L("betas"), V("eps"), V("ipe")}),
          M("probe", {V("checkpoint"), V("checkpoint_key"), V("checkpoint_step"), V("num_classes"),
                      V("pooling"), V("epochs"), V("lr"), M("wd", {V("start"), V("final")}),
                      V("clip"), V("batch_size"), V("segments"), V("views"), V("val_manifest")}),
          M("checkpoint", {V("every_steps"), V("keep_last"), V("keep_every"), V("initial")}),
          M("resources", {V("trainers"), V("dataworkers"), V("device"), V("precision"),
                          V("torch_threads"), V("priority")}),
      }));
}

void CollectLeaves(const Field& map, const std::string& prefix, std::vector<std::string>* out) {
  for (const Field& f : map.fields) {
    const std::string path = JoinPath(prefix, f.name);
    switch (f.shape) {
      case Shape::kValue:
      case Shape::kList:
        out->push_back(path);
        break;
      case Shape::kMap:
        CollectLeaves(f, path, out);
        break;
      case Shape::kMapList:
        CollectLeaves(f, path + "[i]", out);
        break;
    }
  }
}

// Looks `path` (dot-separated, list entries by index) up in `tree`.
const Node* Lookup(const Node& tree, absl::string_view path) {
  const Node* cur = &tree;
  for (absl::string_view seg : absl::StrSplit(path, '.')) {
    size_t index;
    if (cur->is_map()) {
      cur = cur->Find(seg);
    } else if (cur->is_list() && absl::SimpleAtoi(seg, &index) && index < cur->items.size()) {
      cur = &cur->items[index];
    } else {
      cur = nullptr;
    }
    if (cur == nullptr) return nullptr;
  }
  return cur;
}

// The default of the list at `path`, for an override that indexes into a list the document
// leaves out. Mask entries written in the spec default to MaskSpec{}; the mask list itself to
// that of the preset, without context_frames (which follows model.frames when left out).
Node DefaultList(const std::string& path, ModelPreset preset) {
  if (path == "mask") {
    Node list = Node::List();
    for (const MaskSpec& m : DefaultMasks(preset)) {
      Node entry = MaskToNode(m);
      Node stripped = Node::Map();
      for (size_t i = 0; i < entry.keys.size(); ++i) {
        if (entry.keys[i] != "context_frames") stripped.Add(entry.keys[i], entry.items[i]);
      }
      list.items.push_back(std::move(stripped));
    }
    return list;
  }
  if (absl::StartsWith(path, "mask.")) {
    const Node entry = MaskToNode(MaskSpec{});
    const Node* found = entry.Find(path.substr(path.rfind('.') + 1));
    return found ? *found : Node::List();
  }
  const Node tree = SpecToNode(JobSpec{});
  const Node* found = Lookup(tree, path);
  return found ? *found : Node::List();
}

bool IsIndex(absl::string_view s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

const Field* Field::Find(absl::string_view key) const {
  for (const Field& f : fields) {
    if (f.name == key) return &f;
  }
  return nullptr;
}

std::string Field::KnownKeys() const {
  std::vector<absl::string_view> names;
  for (const Field& f : fields) names.push_back(f.name);
  return absl::StrJoin(names, ", ");
}

const Field& SpecSchema() {
  static const Field* const kSchema = BuildSchema();
  return *kSchema;
}

std::vector<std::string> LeafPaths(const Field& root) {
  std::vector<std::string> out;
  CollectLeaves(root, "", &out);
  return out;
}

absl::Status CheckKnownKeys(const Node& map, absl::string_view path, const Field& schema) {
  for (const std::string& key : map.keys) {
    if (schema.Find(key) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(JoinPath(path, key), ": unknown field (known: ", schema.KnownKeys(), ")"));
    }
  }
  return absl::OkStatus();
}

absl::string_view OverrideKey(absl::string_view assignment) {
  const size_t eq = assignment.find('=');
  return eq == absl::string_view::npos ? absl::string_view() : assignment.substr(0, eq);
}

absl::Status ApplyOverride(absl::string_view assignment, ModelPreset preset, Node* root) {
  const absl::string_view key = OverrideKey(assignment);
  const std::vector<absl::string_view> segments = absl::StrSplit(key, '.');
  for (absl::string_view seg : segments) {
    if (seg.empty()) return absl::InvalidArgumentError("expected key.path=value");
  }
  ASSIGN_OR_RETURN(Node value, LoadYaml(assignment.substr(key.size() + 1), "value", key));

  static const Field* const kScalarField = new Field(V(""));
  Node* cur = root;
  const Field* field = &SpecSchema();
  Field entry;  // the schema of a list-of-maps entry, while inside one
  std::string path;
  for (absl::string_view seg : segments) {
    const std::string next_path = JoinPath(path, seg);
    switch (field->shape) {
      case Shape::kValue:
        return absl::InvalidArgumentError(absl::StrCat(next_path, ": unknown field (", path,
                                                       " is a single value, not a map or list)"));
      case Shape::kMap: {
        const Field* child = field->Find(seg);
        if (child == nullptr) {
          return absl::InvalidArgumentError(
              absl::StrCat(next_path, ": unknown field (known: ", field->KnownKeys(), ")"));
        }
        if (cur->is_null()) cur->type = Node::Type::kMap;
        if (!cur->is_map()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": must be a map, got ", Describe(*cur)));
        }
        Node* next = cur->Find(seg);
        cur = next ? next : &cur->Add(std::string(seg), Node::Null());
        field = child;
        break;
      }
      case Shape::kList:
      case Shape::kMapList: {
        if (!IsIndex(seg)) {
          return absl::InvalidArgumentError(
              absl::StrCat(next_path, ": expected a list index (0, 1, ...)"));
        }
        size_t index = 0;
        absl::SimpleAtoi(seg, &index);
        if (cur->is_null()) *cur = DefaultList(path, preset);
        if (!cur->is_list()) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, ": must be a list, got ", Describe(*cur)));
        }
        if (index > cur->items.size()) {
          return absl::InvalidArgumentError(absl::StrCat(
              next_path, ": index out of range (the list has ", cur->items.size(), " entries)"));
        }
        if (index == cur->items.size()) cur->items.push_back(Node::Null());
        cur = &cur->items[index];
        if (field->shape == Shape::kMapList) {
          entry = Field{field->name, Shape::kMap, field->fields};
          field = &entry;
        } else {
          field = kScalarField;
        }
        break;
      }
    }
    path = next_path;
  }
  *cur = std::move(value);
  return absl::OkStatus();
}

}  // namespace vjepa::spec::internal
