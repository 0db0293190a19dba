#include "services/trainer/checkpoint/json.h"

#include <charconv>
#include <cmath>
#include <string>
#include <system_error>
#include <unordered_set>

namespace vjepa::checkpoint {

JsonValue JsonValue::Bool(bool value) {
  JsonValue v;
  v.kind_ = Kind::kBool;
  v.bool_ = value;
  return v;
}

JsonValue JsonValue::Int(int64_t value) {
  JsonValue v;
  v.kind_ = Kind::kNumber;
  v.text_ = std::to_string(value);
  return v;
}

core::StatusOr<JsonValue> JsonValue::Double(double value) {
  if (!std::isfinite(value)) {
    return core::InvalidArgumentError("JSON cannot hold the number " + std::to_string(value));
  }
  char buf[64];
  // Shortest round-trip form, independent of the locale.
  const auto result = std::to_chars(buf, buf + sizeof(buf), value);
  JsonValue v;
  v.kind_ = Kind::kNumber;
  v.text_.assign(buf, result.ptr);
  return v;
}

JsonValue JsonValue::String(std::string value) {
  JsonValue v;
  v.kind_ = Kind::kString;
  v.text_ = std::move(value);
  return v;
}

JsonValue JsonValue::Array(std::vector<JsonValue> items) {
  JsonValue v;
  v.kind_ = Kind::kArray;
  v.items_ = std::move(items);
  return v;
}

JsonValue JsonValue::Object(std::vector<std::pair<std::string, JsonValue>> members) {
  JsonValue v;
  v.kind_ = Kind::kObject;
  v.members_ = std::move(members);
  return v;
}

std::optional<int64_t> JsonValue::AsInt64() const {
  if (kind_ != Kind::kNumber) return std::nullopt;
  if (text_.find_first_of(".eE") != std::string::npos) return std::nullopt;
  int64_t value = 0;
  const char* end = text_.data() + text_.size();
  const auto result = std::from_chars(text_.data(), end, value);
  if (result.ec != std::errc() || result.ptr != end) return std::nullopt;
  return value;
}

std::optional<double> JsonValue::AsDouble() const {
  if (kind_ != Kind::kNumber) return std::nullopt;
  double value = 0;
  const char* end = text_.data() + text_.size();
  const auto result = std::from_chars(text_.data(), end, value);
  if (result.ec != std::errc() || result.ptr != end || !std::isfinite(value)) return std::nullopt;
  return value;
}

const JsonValue* JsonValue::Find(std::string_view key) const {
  for (const auto& [name, value] : members_) {
    if (name == key) return &value;
  }
  return nullptr;
}

// Recursive descent over the input; depth and value count are bounded by JsonLimits.
class JsonParser {
 public:
  JsonParser(std::string_view text, const JsonLimits& limits) : text_(text), limits_(limits) {}

  core::StatusOr<JsonValue> Parse() {
    SkipWhitespace();
    JsonValue value;
    CORE_RETURN_IF_ERROR(ParseValue(0, &value));
    SkipWhitespace();
    if (pos_ != text_.size()) return Error("unexpected characters after the JSON value");
    return value;
  }

 private:
  core::Status Error(const std::string& what) const {
    return core::InvalidArgumentError("invalid JSON at byte " + std::to_string(pos_) + ": " + what);
  }

  void SkipWhitespace() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }

  bool Consume(std::string_view literal) {
    if (text_.substr(pos_, literal.size()) != literal) return false;
    pos_ += literal.size();
    return true;
  }

  core::Status ParseValue(int depth, JsonValue* out) {
    if (++values_ > limits_.max_values) {
      return Error("more than " + std::to_string(limits_.max_values) + " values");
    }
    if (pos_ >= text_.size()) return Error("unexpected end of input");
    const char c = text_[pos_];
    if (c == '{' || c == '[') {
      if (depth + 1 > limits_.max_depth) {
        return Error("nesting deeper than " + std::to_string(limits_.max_depth));
      }
      return c == '{' ? ParseObject(depth + 1, out) : ParseArray(depth + 1, out);
    }
    if (c == '"') {
      out->kind_ = JsonValue::Kind::kString;
      return ParseString(&out->text_);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(out);
    if (Consume("true")) {
      *out = JsonValue::Bool(true);
      return core::OkStatus();
    }
    if (Consume("false")) {
      *out = JsonValue::Bool(false);
      return core::OkStatus();
    }
    if (Consume("null")) {
      *out = JsonValue();
      return core::OkStatus();
    }
    return Error(std::string("unexpected character '") + c + "'");
  }

  core::Status ParseObject(int depth, JsonValue* out) {
    out->kind_ = JsonValue::Kind::kObject;
    ++pos_;  // '{'
    SkipWhitespace();
    if (pos_ < text_.size() && text_[pos_] == '}') {
      ++pos_;
      return core::OkStatus();
    }
    std::unordered_set<std::string> keys;
    while (true) {
      SkipWhitespace();
      if (pos_ >= text_.size() || text_[pos_] != '"') return Error("expected a member name");
      const size_t key_at = pos_;
      std::string key;
      CORE_RETURN_IF_ERROR(ParseString(&key));
      if (!keys.insert(key).second) {
        pos_ = key_at;
        return Error("duplicate key \"" + key + "\"");
      }
      SkipWhitespace();
      if (!Consume(":")) return Error("expected ':' after a member name");
      SkipWhitespace();
      JsonValue value;
      CORE_RETURN_IF_ERROR(ParseValue(depth, &value));
      out->members_.emplace_back(std::move(key), std::move(value));
      SkipWhitespace();
      if (Consume("}")) return core::OkStatus();
      if (!Consume(",")) return Error("expected ',' or '}' in an object");
    }
  }

  core::Status ParseArray(int depth, JsonValue* out) {
    out->kind_ = JsonValue::Kind::kArray;
    ++pos_;  // '['
    SkipWhitespace();
    if (Consume("]")) return core::OkStatus();
    while (true) {
      SkipWhitespace();
      JsonValue value;
      CORE_RETURN_IF_ERROR(ParseValue(depth, &value));
      out->items_.push_back(std::move(value));
      SkipWhitespace();
      if (Consume("]")) return core::OkStatus();
      if (!Consume(",")) return Error("expected ',' or ']' in an array");
    }
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  core::Status ParseNumber(JsonValue* out) {
    const size_t start = pos_;
    auto digits = [this]() {
      size_t n = 0;
      while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') ++pos_, ++n;
      return n;
    };
    Consume("-");
    if (Consume("0")) {
      if (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
        return Error("leading zeros in a number");
      }
    } else if (digits() == 0) {
      return Error("expected digits in a number");
    }
    if (Consume(".") && digits() == 0) return Error("expected digits after '.'");
    if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
      ++pos_;
      if (!Consume("+")) Consume("-");
      if (digits() == 0) return Error("expected digits in an exponent");
    }
    out->kind_ = JsonValue::Kind::kNumber;
    out->text_ = std::string(text_.substr(start, pos_ - start));
    return core::OkStatus();
  }

  core::StatusOr<uint32_t> ParseHex4() {
    if (pos_ + 4 > text_.size()) return Error("truncated \\u escape");
    uint32_t value = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      value <<= 4;
      if (c >= '0' && c <= '9') {
        value |= c - '0';
      } else if (c >= 'a' && c <= 'f') {
        value |= c - 'a' + 10;
      } else if (c >= 'A' && c <= 'F') {
        value |= c - 'A' + 10;
      } else {
        return Error("bad hex digit in a \\u escape");
      }
    }
    return value;
  }

  static void AppendUtf8(uint32_t cp, std::string* out) {
    if (cp < 0x80) {
      out->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out->push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out->push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out->push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out->push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  // Length of the valid UTF-8 sequence at pos_ (non-ASCII lead byte), or 0.
  size_t Utf8SequenceLength() const {
    const auto byte = [this](size_t i) { return static_cast<uint8_t>(text_[pos_ + i]); };
    const uint8_t lead = byte(0);
    size_t length;
    uint32_t cp;
    if (lead >= 0xc2 && lead <= 0xdf) {
      length = 2;
      cp = lead & 0x1f;
    } else if (lead >= 0xe0 && lead <= 0xef) {
      length = 3;
      cp = lead & 0x0f;
    } else if (lead >= 0xf0 && lead <= 0xf4) {
      length = 4;
      cp = lead & 0x07;
    } else {
      return 0;
    }
    if (pos_ + length > text_.size()) return 0;
    for (size_t i = 1; i < length; ++i) {
      if ((byte(i) & 0xc0) != 0x80) return 0;
      cp = (cp << 6) | (byte(i) & 0x3f);
    }
    const bool overlong = (length == 3 && cp < 0x800) || (length == 4 && cp < 0x10000);
    const bool surrogate = cp >= 0xd800 && cp <= 0xdfff;
    if (overlong || surrogate || cp > 0x10ffff) return 0;
    return length;
  }

  core::Status ParseString(std::string* out) {
    ++pos_;  // '"'
    out->clear();
    while (true) {
      if (pos_ >= text_.size()) return Error("unterminated string");
      const char c = text_[pos_];
      const auto u = static_cast<uint8_t>(c);
      if (c == '"') {
        ++pos_;
        return core::OkStatus();
      }
      if (u < 0x20) return Error("unescaped control character in a string");
      if (u >= 0x80) {
        const size_t length = Utf8SequenceLength();
        if (length == 0) return Error("invalid UTF-8 in a string");
        out->append(text_.substr(pos_, length));
        pos_ += length;
        continue;
      }
      if (c != '\\') {
        out->push_back(c);
        ++pos_;
        continue;
      }
      if (++pos_ >= text_.size()) return Error("unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          CORE_ASSIGN_OR_RETURN(uint32_t cp, ParseHex4());
          if (cp >= 0xdc00 && cp <= 0xdfff) return Error("lone low surrogate in a \\u escape");
          if (cp >= 0xd800 && cp <= 0xdbff) {
            if (!Consume("\\u")) return Error("high surrogate without a low surrogate");
            CORE_ASSIGN_OR_RETURN(uint32_t low, ParseHex4());
            if (low < 0xdc00 || low > 0xdfff) {
              return Error("high surrogate without a low surrogate");
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          }
          AppendUtf8(cp, out);
          break;
        }
        default:
          return Error(std::string("unknown escape '\\") + e + "'");
      }
    }
  }

  std::string_view text_;
  JsonLimits limits_;
  size_t pos_ = 0;
  size_t values_ = 0;
};

core::StatusOr<JsonValue> ParseJson(std::string_view text, const JsonLimits& limits) {
  return JsonParser(text, limits).Parse();
}

void AppendJsonString(std::string_view value, std::string* out) {
  static constexpr char kDigits[] = "0123456789abcdef";
  out->push_back('"');
  for (const char c : value) {
    const auto u = static_cast<uint8_t>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (u < 0x20) {
      out->append("\\u00");
      out->push_back(kDigits[u >> 4]);
      out->push_back(kDigits[u & 0xf]);
    } else {
      out->push_back(c);
    }
  }
  out->push_back('"');
}

void AppendJson(const JsonValue& value, std::string* out) {
  switch (value.kind()) {
    case JsonValue::Kind::kNull:
      out->append("null");
      return;
    case JsonValue::Kind::kBool:
      out->append(value.bool_value() ? "true" : "false");
      return;
    case JsonValue::Kind::kNumber:
      out->append(value.text());
      return;
    case JsonValue::Kind::kString:
      AppendJsonString(value.text(), out);
      return;
    case JsonValue::Kind::kArray: {
      out->push_back('[');
      bool first = true;
      for (const auto& item : value.items()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJson(item, out);
      }
      out->push_back(']');
      return;
    }
    case JsonValue::Kind::kObject: {
      out->push_back('{');
      bool first = true;
      for (const auto& [key, member] : value.members()) {
        if (!first) out->push_back(',');
        first = false;
        AppendJsonString(key, out);
        out->push_back(':');
        AppendJson(member, out);
      }
      out->push_back('}');
      return;
    }
  }
}

std::string ToJson(const JsonValue& value) {
  std::string out;
  AppendJson(value, &out);
  return out;
}

}  // namespace vjepa::checkpoint
