#include "services/trainer/checkpoint/checkpoint.h"

#include <torch/torch.h>

#include <charconv>
#include <set>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "services/trainer/checkpoint/json.h"

namespace vjepa::checkpoint {
namespace {

constexpr char kFormatKey[] = "format";
constexpr char kFormatVersionKey[] = "format_version";
constexpr char kStepKey[] = "step";
constexpr char kGenerationKey[] = "generation";
constexpr char kIterationsPerEpochKey[] = "iterations_per_epoch";
constexpr char kSpecKey[] = "spec";
constexpr char kDatasetSizeKey[] = "dataset.size";
constexpr char kDatasetManifestKey[] = "dataset.manifest_sha256";
constexpr char kDatasetRecipeKey[] = "dataset.recipe_version";
constexpr char kParamGroupsKey[] = "optim.param_groups";
constexpr char kExtraPrefix[] = "x.";
constexpr size_t kMaxNamesInMessage = 8;

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string ShapeText(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

std::string NameList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size() && i < kMaxNamesInMessage; ++i) {
    if (i > 0) out += ", ";
    out += names[i];
  }
  if (names.size() > kMaxNamesInMessage) {
    out += ", ... (" + std::to_string(names.size()) + " in all)";
  }
  return out + "]";
}

core::StatusOr<std::string> ParamGroupsToJson(const std::vector<OptimizerParamGroup>& groups) {
  std::vector<JsonValue> items;
  for (const OptimizerParamGroup& group : groups) {
    std::vector<JsonValue> params;
    for (const std::string& name : group.params) params.push_back(JsonValue::String(name));
    std::vector<std::pair<std::string, JsonValue>> members;
    members.emplace_back("params", JsonValue::Array(std::move(params)));
    for (const auto& [key, value] : group.options) {
      if (key == "params") {
        return core::InvalidArgumentError("optimizer group option name \"params\" is reserved");
      }
      auto number = JsonValue::Double(value);
      if (!number.ok()) {
        return core::InvalidArgumentError("optimizer group option " + key + ": " +
                                          number.status().message());
      }
      members.emplace_back(key, std::move(number).value());
    }
    items.push_back(JsonValue::Object(std::move(members)));
  }
  return ToJson(JsonValue::Array(std::move(items)));
}

core::StatusOr<std::vector<OptimizerParamGroup>> ParamGroupsFromJson(const std::string& text) {
  auto bad = [](const std::string& why) {
    return core::InvalidArgumentError("checkpoint metadata optim.param_groups: " + why);
  };
  auto parsed = ParseJson(text);
  if (!parsed.ok()) return bad(parsed.status().message());
  if (!parsed->is_array()) return bad("not an array");
  std::vector<OptimizerParamGroup> groups;
  for (const JsonValue& item : parsed->items()) {
    if (!item.is_object()) return bad("a group is not an object");
    OptimizerParamGroup group;
    for (const auto& [key, value] : item.members()) {
      if (key == "params") {
        if (!value.is_array()) return bad("params is not an array");
        for (const JsonValue& name : value.items()) {
          if (!name.is_string()) return bad("a parameter name is not a string");
          group.params.push_back(name.text());
        }
      } else {
        const auto number = value.AsDouble();
        if (!number) return bad("option " + key + " is not a finite number");
        group.options[key] = *number;
      }
    }
    groups.push_back(std::move(group));
  }
  return groups;
}

class MetadataReader {
 public:
  explicit MetadataReader(const std::map<std::string, std::string>& metadata)
      : metadata_(metadata) {}

  core::StatusOr<std::string> String(const std::string& key) const {
    const auto it = metadata_.find(key);
    if (it == metadata_.end()) {
      return core::InvalidArgumentError("checkpoint metadata lacks " + key);
    }
    return it->second;
  }

  core::StatusOr<int64_t> NonNegativeInt(const std::string& key) const {
    CORE_ASSIGN_OR_RETURN(const std::string text, String(key));
    int64_t value = 0;
    const char* end = text.data() + text.size();
    const auto result = std::from_chars(text.data(), end, value);
    if (result.ec != std::errc() || result.ptr != end || value < 0) {
      return core::InvalidArgumentError("checkpoint metadata " + key + " = \"" + text +
                                        "\" is not a non-negative integer");
    }
    return value;
  }

 private:
  const std::map<std::string, std::string>& metadata_;
};

}  // namespace

std::vector<NamedTensor> SelectByPrefix(const std::vector<NamedTensor>& tensors,
                                        std::string_view prefix) {
  std::vector<NamedTensor> out;
  for (const NamedTensor& t : tensors) {
    if (StartsWith(t.name, prefix)) out.push_back({t.name.substr(prefix.size()), t.tensor});
  }
  return out;
}

std::vector<NamedTensor> AddPrefix(const std::vector<NamedTensor>& tensors,
                                   std::string_view prefix) {
  std::vector<NamedTensor> out;
  out.reserve(tensors.size());
  for (const NamedTensor& t : tensors) out.push_back({std::string(prefix) + t.name, t.tensor});
  return out;
}

std::vector<NamedTensor> ToNamedTensors(
    const torch::OrderedDict<std::string, torch::Tensor>& dict) {
  std::vector<NamedTensor> out;
  out.reserve(dict.size());
  for (const auto& item : dict) out.push_back({item.key(), item.value()});
  return out;
}

core::StatusOr<TensorFile> ToTensorFile(const TrainingCheckpoint& checkpoint) {
  if (checkpoint.step < 0 || checkpoint.generation < 0 || checkpoint.iterations_per_epoch < 0 ||
      checkpoint.dataset.size < 0) {
    return core::InvalidArgumentError(
        "checkpoint step, generation, iterations_per_epoch and dataset size must be >= 0");
  }
  TensorFile file;
  for (const auto& [models, prefix] : {std::pair{&checkpoint.encoder, kEncoderPrefix},
                                       std::pair{&checkpoint.predictor, kPredictorPrefix},
                                       std::pair{&checkpoint.target_encoder, kTargetEncoderPrefix},
                                       std::pair{&checkpoint.optimizer.state, kOptimizerPrefix}}) {
    for (const NamedTensor& t : *models) {
      if (t.name.empty()) {
        return core::InvalidArgumentError(std::string("empty tensor name under ") + prefix);
      }
      file.tensors.push_back({prefix + t.name, t.tensor});
    }
  }
  auto& m = file.metadata;
  m[kFormatKey] = kCheckpointFormat;
  m[kFormatVersionKey] = std::to_string(kCheckpointFormatVersion);
  m[kStepKey] = std::to_string(checkpoint.step);
  m[kGenerationKey] = std::to_string(checkpoint.generation);
  m[kIterationsPerEpochKey] = std::to_string(checkpoint.iterations_per_epoch);
  m[kSpecKey] = checkpoint.spec;
  m[kDatasetSizeKey] = std::to_string(checkpoint.dataset.size);
  m[kDatasetManifestKey] = checkpoint.dataset.manifest_sha256;
  m[kDatasetRecipeKey] = checkpoint.dataset.recipe_version;
  CORE_ASSIGN_OR_RETURN(m[kParamGroupsKey], ParamGroupsToJson(checkpoint.optimizer.param_groups));
  for (const auto& [key, value] : checkpoint.extra) m[kExtraPrefix + key] = value;
  return file;
}

core::StatusOr<TrainingCheckpoint> FromTensorFile(TensorFile file) {
  const MetadataReader meta(file.metadata);
  const auto format = file.metadata.find(kFormatKey);
  if (format == file.metadata.end() || format->second != kCheckpointFormat) {
    return core::InvalidArgumentError(
        "not a V-JEPA checkpoint: metadata format is " +
        (format == file.metadata.end() ? std::string("missing") : "\"" + format->second + "\"") +
        ", expected \"" + kCheckpointFormat + "\"");
  }
  CORE_ASSIGN_OR_RETURN(const int64_t version, meta.NonNegativeInt(kFormatVersionKey));
  if (version > kCheckpointFormatVersion) {
    return core::FailedPreconditionError("checkpoint format version " + std::to_string(version) +
                                         " is newer than this build reads (" +
                                         std::to_string(kCheckpointFormatVersion) + ")");
  }
  if (version < 1) return core::InvalidArgumentError("checkpoint format version 0 is invalid");

  TrainingCheckpoint checkpoint;
  CORE_ASSIGN_OR_RETURN(checkpoint.step, meta.NonNegativeInt(kStepKey));
  CORE_ASSIGN_OR_RETURN(checkpoint.generation, meta.NonNegativeInt(kGenerationKey));
  CORE_ASSIGN_OR_RETURN(checkpoint.iterations_per_epoch,
                        meta.NonNegativeInt(kIterationsPerEpochKey));
  CORE_ASSIGN_OR_RETURN(checkpoint.spec, meta.String(kSpecKey));
  CORE_ASSIGN_OR_RETURN(checkpoint.dataset.size, meta.NonNegativeInt(kDatasetSizeKey));
  CORE_ASSIGN_OR_RETURN(checkpoint.dataset.manifest_sha256, meta.String(kDatasetManifestKey));
  CORE_ASSIGN_OR_RETURN(checkpoint.dataset.recipe_version, meta.String(kDatasetRecipeKey));
  CORE_ASSIGN_OR_RETURN(const std::string groups, meta.String(kParamGroupsKey));
  CORE_ASSIGN_OR_RETURN(checkpoint.optimizer.param_groups, ParamGroupsFromJson(groups));
  for (const auto& [key, value] : file.metadata) {
    if (StartsWith(key, kExtraPrefix)) {
      checkpoint.extra[key.substr(std::string_view(kExtraPrefix).size())] = value;
    }
  }

  for (NamedTensor& t : file.tensors) {
    std::vector<NamedTensor>* into = nullptr;
    std::string_view prefix;
    for (const auto& [candidate, p] : {std::pair{&checkpoint.encoder, kEncoderPrefix},
                                       std::pair{&checkpoint.predictor, kPredictorPrefix},
                                       std::pair{&checkpoint.target_encoder, kTargetEncoderPrefix},
                                       std::pair{&checkpoint.optimizer.state, kOptimizerPrefix}}) {
      if (StartsWith(t.name, p)) {
        into = candidate;
        prefix = p;
        break;
      }
    }
    if (into == nullptr || t.name.size() == prefix.size()) {
      return core::InvalidArgumentError("checkpoint tensor \"" + t.name +
                                        "\" is not under encoder., predictor., target_encoder. "
                                        "or optim.");
    }
    into->push_back({t.name.substr(prefix.size()), std::move(t.tensor)});
  }
  return checkpoint;
}

core::Status SaveCheckpoint(const std::string& path, const TrainingCheckpoint& checkpoint) {
  CORE_ASSIGN_OR_RETURN(const TensorFile file, ToTensorFile(checkpoint));
  return WriteSafetensors(path, file);
}

core::StatusOr<TrainingCheckpoint> LoadCheckpoint(const std::string& path,
                                                  const LoadOptions& options) {
  ReadOptions read;
  if (!options.optimizer_state) {
    read.select = [](const std::string& name) { return !StartsWith(name, kOptimizerPrefix); };
  }
  CORE_ASSIGN_OR_RETURN(TensorFile file, ReadSafetensors(path, read));
  auto checkpoint = FromTensorFile(std::move(file));
  if (!checkpoint.ok()) {
    return core::Status(checkpoint.status().code(), path + ": " + checkpoint.status().message());
  }
  return checkpoint;
}

core::Status CopyStateInto(const std::vector<NamedTensor>& saved,
                           const std::vector<NamedTensor>& destination, std::string_view what) {
  std::unordered_map<std::string, const torch::Tensor*> by_name;
  std::vector<std::string> duplicates, missing, unexpected, mismatched;
  for (const NamedTensor& t : saved) {
    if (!by_name.emplace(t.name, &t.tensor).second) duplicates.push_back(t.name);
  }
  std::set<std::string> wanted;
  for (const NamedTensor& d : destination) {
    wanted.insert(d.name);
    const auto it = by_name.find(d.name);
    if (it == by_name.end()) {
      missing.push_back(d.name);
    } else if (!it->second->defined() || it->second->sizes() != d.tensor.sizes() ||
               it->second->scalar_type() != d.tensor.scalar_type()) {
      mismatched.push_back(
          d.name + " (saved " +
          (it->second->defined()
               ? std::string(c10::toString(it->second->scalar_type())) + ShapeText(*it->second)
               : std::string("undefined")) +
          ", model " + c10::toString(d.tensor.scalar_type()) + ShapeText(d.tensor) + ")");
    }
  }
  for (const NamedTensor& t : saved) {
    if (wanted.count(t.name) == 0) unexpected.push_back(t.name);
  }
  if (!duplicates.empty() || !missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string message = "cannot load " + std::string(what) + ":";
    if (!missing.empty()) message += " missing keys " + NameList(missing) + ";";
    if (!unexpected.empty()) message += " unexpected keys " + NameList(unexpected) + ";";
    if (!mismatched.empty()) message += " mismatched " + NameList(mismatched) + ";";
    if (!duplicates.empty()) message += " duplicate saved keys " + NameList(duplicates) + ";";
    message.pop_back();
    return core::InvalidArgumentError(std::move(message));
  }
  torch::NoGradGuard no_grad;
  for (const NamedTensor& d : destination) d.tensor.copy_(*by_name.at(d.name));
  return core::OkStatus();
}

}  // namespace vjepa::checkpoint
