// A YAML document as plain data, and the text helpers the spec code shares.
//
// yaml-cpp's nodes share structure (aliases) and change shape on lookup; the spec code reads,
// edits (--set) and writes a tree of plain values instead. Loading checks the size and the
// encoding, refuses duplicate keys and bounds the number of nodes that aliases expand to.
#ifndef VJEPA_COMMON_SPEC_YAML_TREE_H_
#define VJEPA_COMMON_SPEC_YAML_TREE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vjepa::spec::internal {

// Aliases are expanded while loading; beyond this many nodes the document is refused.
inline constexpr size_t kMaxYamlNodes = 100000;

struct Node {
  enum class Type { kNull, kScalar, kList, kMap };

  static Node Null() { return Node(); }
  static Node Scalar(std::string text, bool plain);
  // A scalar written plain when that reads back as the same string, quoted otherwise.
  static Node String(absl::string_view text);
  static Node List() { return Node(Type::kList); }
  static Node Map() { return Node(Type::kMap); }

  bool is_null() const { return type == Type::kNull; }
  bool is_scalar() const { return type == Type::kScalar; }
  bool is_list() const { return type == Type::kList; }
  bool is_map() const { return type == Type::kMap; }

  // Map lookup; nullptr when the key is absent.
  const Node* Find(absl::string_view key) const;
  Node* Find(absl::string_view key);
  // Appends a map entry (no check for an existing key) and returns its value.
  Node& Add(std::string key, Node value);

  Node() = default;
  explicit Node(Type t) : type(t) {}

  Type type = Type::kNull;
  std::string scalar;             // kScalar: the text
  bool plain = true;              // kScalar: written without quotes or a tag
  std::vector<std::string> keys;  // kMap: the keys, in document order
  std::vector<Node> items;        // kList: the entries; kMap: the values, parallel to `keys`
  int line = 0;                   // 1-based source position; 0 when not from a document
  int column = 0;
};

// Refuses text over kMaxSpecBytes (RESOURCE_EXHAUSTED) or not valid UTF-8, then parses exactly
// one YAML document. `what` starts every message ("spec"); `base_path` prefixes the field paths
// of duplicate-key errors. An empty document yields a null node.
absl::StatusOr<Node> LoadYaml(absl::string_view text, absl::string_view what,
                              absl::string_view base_path = "");

// OK, or "<what>: not valid UTF-8 at byte N" (N counted from 0).
absl::Status CheckUtf8(absl::string_view text, absl::string_view what);

// "a.b" from ("a", "b"); just "b" when `path` is empty.
std::string JoinPath(absl::string_view path, absl::string_view key);

// How a value is shown after "got": numbers and booleans as written, other scalars quoted,
// null as null, lists and maps in flow style; long text is cut.
std::string Describe(const Node& node);

// The shortest decimal text that reads back as `v` ("0.000625", "1e-06", "-1").
std::string FormatNumber(double v);

// A YAML double-quoted string; cut to `max_bytes` (at a character boundary) with "..." when
// `max_bytes` is not 0.
std::string QuoteString(absl::string_view s, size_t max_bytes = 0);

// Block-style YAML for a tree: maps as "key: value" lines, lists of scalars in flow style, lists
// of maps as "- " entries.
std::string RenderYaml(const Node& root);

}  // namespace vjepa::spec::internal

#endif  // VJEPA_COMMON_SPEC_YAML_TREE_H_
