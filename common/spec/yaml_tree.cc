#include "common/spec/yaml_tree.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/spec/job_spec.h"
#include "common/status/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace vjepa::spec::internal {
namespace {

constexpr size_t kDescribeBytes = 64;

// Walks yaml-cpp's graph into plain nodes, expanding aliases within the node budget.
class Converter {
 public:
  explicit Converter(absl::string_view what) : what_(what) {}

  absl::Status Convert(const YAML::Node& in, const std::string& path, Node* out) {
    if (++count_ > kMaxYamlNodes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          what_, ": more than ", kMaxYamlNodes, " YAML nodes (each use of an alias counts)"));
    }
    const YAML::Mark mark = in.Mark();
    if (!mark.is_null()) {
      out->line = mark.line + 1;
      out->column = mark.column + 1;
    }
    switch (in.Type()) {
      case YAML::NodeType::Undefined:
      case YAML::NodeType::Null:
        out->type = Node::Type::kNull;
        return absl::OkStatus();
      case YAML::NodeType::Scalar:
        out->type = Node::Type::kScalar;
        out->scalar = in.Scalar();
        out->plain = in.Tag() == "?";
        return absl::OkStatus();
      case YAML::NodeType::Sequence: {
        out->type = Node::Type::kList;
        out->items.reserve(in.size());
        size_t index = 0;
        for (const YAML::Node& child : in) {
          out->items.push_back(Node::Null());
          RETURN_IF_ERROR(
              Convert(child, JoinPath(path, std::to_string(index++)), &out->items.back()));
        }
        return absl::OkStatus();
      }
      case YAML::NodeType::Map:
        return ConvertMap(in, path, out);
    }
    return absl::InternalError(absl::StrCat(what_, ": unexpected YAML node type"));
  }

 private:
  absl::Status ConvertMap(const YAML::Node& in, const std::string& path, Node* out) {
    out->type = Node::Type::kMap;
    std::unordered_map<std::string, int> first_line;
    for (const auto& entry : in) {
      // Copies: yaml-cpp's iterator yields a temporary pair of node handles.
      const YAML::Node key = entry.first;
      const YAML::Node value = entry.second;
      const int line = key.Mark().is_null() ? 0 : key.Mark().line + 1;
      if (!key.IsScalar()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path.empty() ? what_ : path, ": keys must be strings",
                         line > 0 ? absl::StrCat(" (line ", line, ")") : ""));
      }
      const std::string name = key.Scalar();
      auto [seen, inserted] = first_line.emplace(name, line);
      if (!inserted) {
        return absl::InvalidArgumentError(absl::StrCat(
            JoinPath(path, name), ": duplicate key",
            line > 0 ? absl::StrCat(" (lines ", seen->second, " and ", line, ")") : ""));
      }
      out->keys.push_back(name);
      out->items.push_back(Node::Null());
      RETURN_IF_ERROR(Convert(value, JoinPath(path, name), &out->items.back()));
    }
    return absl::OkStatus();
  }

  std::string what_;
  size_t count_ = 0;
};

bool IsPlainSafeChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '/' ||
         c == '-';
}

// Numbers and booleans, which Describe shows unquoted.
bool LooksLiteral(absl::string_view s) {
  int64_t i;
  double d;
  return absl::SimpleAtoi(s, &i) || absl::SimpleAtod(s, &d) || s == "true" || s == "false";
}

// Cuts `s` to at most `max_bytes` without splitting a UTF-8 sequence.
absl::string_view Cut(absl::string_view s, size_t max_bytes) {
  if (s.size() <= max_bytes) return s;
  size_t end = max_bytes;
  while (end > 0 && (static_cast<unsigned char>(s[end]) & 0xC0) == 0x80) --end;
  return s.substr(0, end);
}

std::string RenderScalar(const Node& node) {
  switch (node.type) {
    case Node::Type::kNull:
      return "null";
    case Node::Type::kScalar:
      return node.plain ? node.scalar : QuoteString(node.scalar);
    default:
      return "";
  }
}

std::string RenderKey(const std::string& key) {
  const Node n = Node::String(key);
  return n.plain ? key : QuoteString(key);
}

std::string RenderFlow(const Node& node) {
  if (node.is_list()) {
    std::string out = "[";
    for (size_t i = 0; i < node.items.size(); ++i) {
      absl::StrAppend(&out, i ? ", " : "", RenderFlow(node.items[i]));
    }
    return out + "]";
  }
  if (node.is_map()) {
    std::string out = "{";
    for (size_t i = 0; i < node.items.size(); ++i) {
      absl::StrAppend(&out, i ? ", " : "", RenderKey(node.keys[i]), ": ",
                      RenderFlow(node.items[i]));
    }
    return out + "}";
  }
  return RenderScalar(node);
}

bool HasMapEntries(const Node& list) {
  for (const Node& item : list.items) {
    if (item.is_map() || item.is_list()) return true;
  }
  return false;
}

void RenderBlock(const Node& map, int indent, std::string* out);

void RenderValue(const Node& value, int indent, std::string* out) {
  if (value.is_map() && !value.items.empty()) {
    out->append("\n");
    RenderBlock(value, indent + 2, out);
  } else if (value.is_list() && HasMapEntries(value)) {
    out->append("\n");
    for (const Node& item : value.items) {
      if (item.is_map() && !item.items.empty()) {
        std::string entry;
        RenderBlock(item, indent + 4, &entry);
        entry.replace(0, indent + 4, std::string(indent + 2, ' ') + "- ");
        out->append(entry);
      } else {
        absl::StrAppend(out, std::string(indent + 2, ' '), "- ", RenderFlow(item), "\n");
      }
    }
  } else {
    absl::StrAppend(out, " ", RenderFlow(value), "\n");
  }
}

void RenderBlock(const Node& map, int indent, std::string* out) {
  for (size_t i = 0; i < map.items.size(); ++i) {
    absl::StrAppend(out, std::string(indent, ' '), RenderKey(map.keys[i]), ":");
    RenderValue(map.items[i], indent, out);
  }
}

}  // namespace

Node Node::Scalar(std::string text, bool plain) {
  Node n(Type::kScalar);
  n.scalar = std::move(text);
  n.plain = plain;
  return n;
}

Node Node::String(absl::string_view text) {
  bool plain = !text.empty() && (absl::ascii_isalpha(static_cast<unsigned char>(text[0])) ||
                                 text[0] == '_' || text[0] == '/');
  for (char c : text) plain = plain && IsPlainSafeChar(c);
  if (plain) {
    const std::string lower = absl::AsciiStrToLower(text);
    for (const char* word : {"true", "false", "null", "yes", "no", "on", "off", "y", "n"}) {
      if (lower == word) plain = false;
    }
  }
  return Scalar(std::string(text), plain);
}

const Node* Node::Find(absl::string_view key) const {
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i] == key) return &items[i];
  }
  return nullptr;
}

Node* Node::Find(absl::string_view key) {
  return const_cast<Node*>(static_cast<const Node*>(this)->Find(key));
}

Node& Node::Add(std::string key, Node value) {
  keys.push_back(std::move(key));
  items.push_back(std::move(value));
  return items.back();
}

absl::Status CheckUtf8(absl::string_view text, absl::string_view what) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    size_t len = 0;
    uint32_t cp = 0;
    uint32_t min = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      len = 2, cp = c & 0x1F, min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      len = 3, cp = c & 0x0F, min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    }
    bool ok = len > 0 && i + len <= n;
    for (size_t k = 1; ok && k < len; ++k) {
      ok = (s[i + k] & 0xC0) == 0x80;
      cp = (cp << 6) | (s[i + k] & 0x3F);
    }
    ok = ok && cp >= min && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
    if (!ok) return absl::InvalidArgumentError(absl::StrCat(what, ": not valid UTF-8 at byte ", i));
    i += len;
  }
  return absl::OkStatus();
}

absl::StatusOr<Node> LoadYaml(absl::string_view text, absl::string_view what,
                              absl::string_view base_path) {
  if (text.size() > kMaxSpecBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat(what, ": ", text.size(), " bytes is over the limit of ", kMaxSpecBytes));
  }
  RETURN_IF_ERROR(CheckUtf8(text, what));
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7F) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": control character 0x",
                                                     absl::Hex(c, absl::kZeroPad2), " at byte ", i,
                                                     " is not allowed in YAML"));
    }
  }
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    if (e.mark.is_null()) {
      return absl::InvalidArgumentError(absl::StrCat(what, ": invalid YAML: ", e.msg));
    }
    return absl::InvalidArgumentError(absl::StrCat(what, ": invalid YAML at line ", e.mark.line + 1,
                                                   ", column ", e.mark.column + 1, ": ", e.msg));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": invalid YAML: ", e.what()));
  }
  if (docs.size() > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": expected one YAML document, got ", docs.size()));
  }
  Node root = Node::Null();
  if (docs.empty()) return root;
  Converter converter(what);
  try {
    RETURN_IF_ERROR(converter.Convert(docs[0], std::string(base_path), &root));
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": invalid YAML: ", e.what()));
  }
  return root;
}

std::string JoinPath(absl::string_view path, absl::string_view key) {
  return path.empty() ? std::string(key) : absl::StrCat(path, ".", key);
}

std::string Describe(const Node& node) {
  if (node.is_scalar()) {
    if (node.plain && LooksLiteral(node.scalar)) return node.scalar;
    return QuoteString(node.scalar, kDescribeBytes);
  }
  const std::string flow = RenderFlow(node);
  if (flow.size() <= kDescribeBytes) return flow;
  return absl::StrCat(Cut(flow, kDescribeBytes), "...");
}

std::string FormatNumber(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  // %g writes 10 as "1e+01" at one digit of precision; spell such numbers out.
  if (const char* e = std::strstr(buf, "e+"); e != nullptr) {
    const int exponent = std::atoi(e + 2);
    if (exponent < 17) std::snprintf(buf, sizeof(buf), "%.*g", exponent + 1, v);
  }
  return buf;
}

std::string QuoteString(absl::string_view s, size_t max_bytes) {
  const bool cut = max_bytes > 0 && s.size() > max_bytes;
  if (cut) s = Cut(s, max_bytes);
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          absl::StrAppend(&out, "\\x", absl::Hex(c, absl::kZeroPad2));
        } else if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) >= 0x80 &&
                   static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
          // C1 control characters (U+0080..U+009F) are not printable in YAML.
          absl::StrAppend(&out, "\\u00",
                          absl::Hex(static_cast<unsigned char>(s[i + 1]), absl::kZeroPad2));
          ++i;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  if (cut) out += "...";
  return out;
}

std::string RenderYaml(const Node& root) {
  std::string out;
  if (root.is_map()) {
    RenderBlock(root, 0, &out);
  } else {
    absl::StrAppend(&out, RenderFlow(root), "\n");
  }
  return out;
}

}  // namespace vjepa::spec::internal
