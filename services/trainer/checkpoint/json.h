// A small, strict JSON reader and writer for the safetensors header and checkpoint metadata (the
// core takes no third-party JSON library). The parser is bounded: nesting depth and value count
// are limited, duplicate object keys, invalid UTF-8, unescaped control characters and lone
// surrogates are errors. Numbers keep their literal text; AsInt64/AsDouble interpret it.
#ifndef VJEPA_SERVICES_TRAINER_CHECKPOINT_JSON_H_
#define VJEPA_SERVICES_TRAINER_CHECKPOINT_JSON_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/core/status.h"

namespace vjepa::checkpoint {

class JsonValue {
 public:
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };

  JsonValue() = default;
  static JsonValue Bool(bool value);
  static JsonValue Int(int64_t value);
  // Shortest text that reads back to the same double; INVALID_ARGUMENT for NaN and infinities,
  // which JSON cannot hold.
  static core::StatusOr<JsonValue> Double(double value);
  static JsonValue String(std::string value);
  static JsonValue Array(std::vector<JsonValue> items = {});
  static JsonValue Object(std::vector<std::pair<std::string, JsonValue>> members = {});

  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::kObject; }
  bool is_array() const { return kind_ == Kind::kArray; }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_number() const { return kind_ == Kind::kNumber; }

  bool bool_value() const { return bool_; }
  // The string's value, or a number's literal text.
  const std::string& text() const { return text_; }
  const std::vector<JsonValue>& items() const { return items_; }
  std::vector<JsonValue>& items() { return items_; }
  // Members in document order.
  const std::vector<std::pair<std::string, JsonValue>>& members() const { return members_; }
  std::vector<std::pair<std::string, JsonValue>>& members() { return members_; }

  // A number written without fraction or exponent that fits int64.
  std::optional<int64_t> AsInt64() const;
  std::optional<double> AsDouble() const;
  // The member named key, or nullptr (also for non-objects).
  const JsonValue* Find(std::string_view key) const;

 private:
  friend class JsonParser;
  Kind kind_ = Kind::kNull;
  bool bool_ = false;
  std::string text_;
  std::vector<JsonValue> items_;
  std::vector<std::pair<std::string, JsonValue>> members_;
};

struct JsonLimits {
  int max_depth = 32;            // arrays and objects nested deeper are refused
  size_t max_values = 1u << 22;  // every scalar, array and object counts one
};

// Parses one JSON value; surrounding whitespace (space, tab, CR, LF) is allowed, anything else
// after the value is an error. Errors are INVALID_ARGUMENT with the byte offset.
core::StatusOr<JsonValue> ParseJson(std::string_view text, const JsonLimits& limits = {});

// Compact JSON (no spaces), members in their order.
std::string ToJson(const JsonValue& value);
void AppendJson(const JsonValue& value, std::string* out);
// A quoted JSON string: '"' and '\' escaped, control characters as \u00XX, other bytes as is.
void AppendJsonString(std::string_view value, std::string* out);

}  // namespace vjepa::checkpoint

#endif  // VJEPA_SERVICES_TRAINER_CHECKPOINT_JSON_H_
