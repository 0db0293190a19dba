// The shape of the job spec (which keys exist where), and --set overrides applied to a YAML tree.
#ifndef VJEPA_COMMON_SPEC_SCHEMA_H_
#define VJEPA_COMMON_SPEC_SCHEMA_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/spec/job_spec.h"
#include "common/spec/yaml_tree.h"

namespace vjepa::spec::internal {

struct Field {
  enum class Shape {
    kValue,    // a scalar
    kList,     // a list of scalars, e.g. [min, max]
    kMap,      // a map whose keys are `fields`
    kMapList,  // a list of maps whose keys are `fields`
  };

  absl::string_view name;
  Shape shape = Shape::kValue;
  std::vector<Field> fields;

  const Field* Find(absl::string_view key) const;
  // "a, b, c": the keys of a map, for messages.
  std::string KnownKeys() const;
};

// The root map of the job spec.
const Field& SpecSchema();

// Every key of the spec as a path; entries of a list of maps are written "mask[i].type".
std::vector<std::string> LeafPaths(const Field& root);

// OK when every key of `map` is one of `schema.fields`; otherwise
// "<path>.<key>: unknown field (known: ...)".
absl::Status CheckKnownKeys(const Node& map, absl::string_view path, const Field& schema);

// Applies one --set assignment "key.path=value" to `root` (a map). Keys are checked against the
// schema; list entries are addressed by index (one past the end appends); a list that the
// document leaves out is first filled with its default, the mask list with that of `preset`.
// Messages do not carry the "--set ..." prefix.
absl::Status ApplyOverride(absl::string_view assignment, ModelPreset preset, Node* root);

// The key path of an assignment ("optim.steps" of "optim.steps=3"), or "" when it has no "=".
absl::string_view OverrideKey(absl::string_view assignment);

}  // namespace vjepa::spec::internal

#endif  // VJEPA_COMMON_SPEC_SCHEMA_H_
