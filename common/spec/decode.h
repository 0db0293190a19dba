// YAML tree → JobSpec: typed reads that name the field in every error, and default resolution.
#ifndef VJEPA_COMMON_SPEC_DECODE_H_
#define VJEPA_COMMON_SPEC_DECODE_H_

#include <array>
#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/spec/enum_names.h"
#include "common/spec/job_spec.h"
#include "common/spec/schema.h"
#include "common/spec/yaml_tree.h"

namespace vjepa::spec::internal {

// Typed reads of one non-null node; `path` names the field in errors. Integers are decimal,
// numbers finite, booleans true or false; a quoted scalar is always a string.
absl::StatusOr<int64_t> AsInt(const Node& node, absl::string_view path);
absl::StatusOr<double> AsNumber(const Node& node, absl::string_view path);
absl::StatusOr<bool> AsBool(const Node& node, absl::string_view path);
absl::StatusOr<std::string> AsString(const Node& node, absl::string_view path);
// A list of exactly `n` numbers; `shape` shows the expected form in the message ("[min, max]").
absl::StatusOr<std::vector<double>> AsNumbers(const Node& node, absl::string_view path, size_t n,
                                              absl::string_view shape);

template <typename E>
absl::StatusOr<E> AsEnum(const Node& node, absl::string_view path) {
  E value;
  if (!node.is_scalar() || !ParseEnum(node.scalar, &value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": must be one of ", EnumChoices<E>(), ", got ", Describe(node)));
  }
  return value;
}

// One map of a document being decoded. A key that is absent or null leaves the output alone (the
// default applies); a key that is read is recorded in `present` (when given) by its full path.
class Section {
 public:
  // `node` may be nullptr or null (an absent section: every read leaves its output alone).
  // Fails when `node` is not a map or has a key that `schema` does not list.
  static absl::StatusOr<Section> Open(const Node* node, std::string path, const Field& schema,
                                      std::set<std::string>* present);

  // The sub-map `key`, with the schema of that key.
  absl::StatusOr<Section> Sub(absl::string_view key) const;

  const std::string& path() const { return path_; }
  std::string PathOf(absl::string_view key) const { return JoinPath(path_, key); }
  // nullptr when absent or null; otherwise records the key as present.
  const Node* Get(absl::string_view key) const;

  absl::Status Read(absl::string_view key, int64_t* out) const;
  absl::Status Read(absl::string_view key, double* out) const;
  absl::Status Read(absl::string_view key, bool* out) const;
  absl::Status Read(absl::string_view key, std::string* out) const;
  absl::Status Read(absl::string_view key, Interval* out) const;
  absl::Status Read(absl::string_view key, std::array<double, 2>* out) const;
  absl::Status Read(absl::string_view key, std::array<double, 3>* out) const;
  absl::Status Read(absl::string_view key, std::optional<int64_t>* out) const;

  template <typename E>
  absl::Status ReadEnum(absl::string_view key, E* out) const {
    const Node* n = Get(key);
    if (n == nullptr) return absl::OkStatus();
    absl::StatusOr<E> v = AsEnum<E>(*n, PathOf(key));
    if (!v.ok()) return v.status();
    *out = *v;
    return absl::OkStatus();
  }

 private:
  Section(const Node* node, std::string path, const Field* schema, std::set<std::string>* present)
      : node_(node), path_(std::move(path)), schema_(schema), present_(present) {}

  const Node* node_;
  std::string path_;
  const Field* schema_;
  std::set<std::string>* present_;
};

// Decodes a job-spec tree onto `spec` (fields left out keep their value in `spec`), recording in
// `present` the path of every field the tree sets ("optim.warmup", "mask", "mask.0.ratio", ...).
absl::Status DecodeSpec(const Node& root, JobSpec* spec, std::set<std::string>* present);

// Fills every derived default that `present` does not name: the model from its preset, the
// predictor heads from model.heads, the mask list from the preset, mask context_frames from
// model.frames, optim.warmup and optim.ipe from optim.steps, checkpoint.every_steps from
// optim.ipe, resources.precision from resources.device.
void ResolveDefaults(const std::set<std::string>& present, JobSpec* spec);

// For an error of a field that `key_path` (an override key, or a key of a reference config)
// sets or contains: the error with `prefix` in front; otherwise nullopt.
std::optional<absl::Status> Attribute(const absl::Status& error, absl::string_view key_path,
                                      absl::string_view prefix);

}  // namespace vjepa::spec::internal

#endif  // VJEPA_COMMON_SPEC_DECODE_H_
