#include "services/trainer/checkpoint/safetensors_header.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <unordered_set>
#include <utility>

#include "services/trainer/checkpoint/file_io.h"
#include "services/trainer/checkpoint/json.h"
#include "services/trainer/checkpoint/sha256.h"

namespace vjepa::checkpoint {
namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
};

constexpr std::array<DTypeEntry, 15> kDTypes = {{
    {DType::kF64, "F64", 8},
    {DType::kF32, "F32", 4},
    {DType::kF16, "F16", 2},
    {DType::kBF16, "BF16", 2},
    {DType::kI64, "I64", 8},
    {DType::kI32, "I32", 4},
    {DType::kI16, "I16", 2},
    {DType::kI8, "I8", 1},
    {DType::kU64, "U64", 8},
    {DType::kU32, "U32", 4},
    {DType::kU16, "U16", 2},
    {DType::kU8, "U8", 1},
    {DType::kBool, "BOOL", 1},
    {DType::kF8E4M3, "F8_E4M3", 1},
    {DType::kF8E5M2, "F8_E5M2", 1},
}};

const DTypeEntry& Entry(DType dtype) {
  for (const auto& entry : kDTypes) {
    if (entry.dtype == dtype) return entry;
  }
  return kDTypes[0];  // unreachable: every enumerator is in the table
}

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(s, &out);
  return out;
}

}  // namespace

const char* DTypeName(DType dtype) { return Entry(dtype).name; }
size_t DTypeSize(DType dtype) { return Entry(dtype).size; }

std::optional<DType> DTypeFromName(std::string_view name) {
  for (const auto& entry : kDTypes) {
    if (name == entry.name) return entry.dtype;
  }
  return std::nullopt;
}

core::StatusOr<uint64_t> TensorByteSize(DType dtype, const std::vector<int64_t>& shape) {
  uint64_t bytes = DTypeSize(dtype);
  for (const int64_t dim : shape) {
    if (dim < 0) {
      return core::InvalidArgumentError("negative dimension " + std::to_string(dim));
    }
    if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(dim), &bytes)) {
      return core::InvalidArgumentError("tensor byte size overflows 64 bits");
    }
  }
  return bytes;
}

core::StatusOr<std::string> SerializeSafetensorsHeader(
    const std::vector<TensorInfo>& tensors, const std::map<std::string, std::string>& metadata) {
  if (tensors.size() > kMaxTensors) {
    return core::InvalidArgumentError(std::to_string(tensors.size()) +
                                      " tensors, more than the limit of " +
                                      std::to_string(kMaxTensors));
  }
  std::string json = "{";
  if (!metadata.empty()) {
    AppendJsonString(kMetadataKey, &json);
    json += ":{";
    bool first = true;
    for (const auto& [key, value] : metadata) {
      if (!first) json += ',';
      first = false;
      AppendJsonString(key, &json);
      json += ':';
      AppendJsonString(value, &json);
    }
    json += '}';
  }
  std::unordered_set<std::string_view> names;
  for (const TensorInfo& t : tensors) {
    if (t.name == kMetadataKey) {
      return core::InvalidArgumentError("tensor name \"__metadata__\" is reserved");
    }
    if (!names.insert(t.name).second) {
      return core::InvalidArgumentError("duplicate tensor name " + Quoted(t.name));
    }
    if (t.shape.size() > kMaxRank) {
      return core::InvalidArgumentError("tensor " + Quoted(t.name) + " has rank " +
                                        std::to_string(t.shape.size()));
    }
    if (json.size() > 1) json += ',';
    AppendJsonString(t.name, &json);
    json += ":{\"dtype\":";
    AppendJsonString(DTypeName(t.dtype), &json);
    json += ",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i) {
      if (i > 0) json += ',';
      json += std::to_string(t.shape[i]);
    }
    json += "],\"data_offsets\":[" + std::to_string(t.begin) + "," + std::to_string(t.end) + "]}";
  }
  json += '}';
  json.append((8 - json.size() % 8) % 8, ' ');
  if (json.size() > kMaxHeaderBytes) {
    return core::InvalidArgumentError("header of " + std::to_string(json.size()) +
                                      " bytes exceeds the limit of " +
                                      std::to_string(kMaxHeaderBytes));
  }
  return json;
}

core::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view json, uint64_t data_size,
                                                         const std::string& source) {
  auto loss = [&source](const std::string& what) {
    return core::DataLossError("safetensors file " + source + ": " + what);
  };
  if (json.empty() || json.front() != '{') return loss("header does not start with '{'");
  JsonLimits limits;
  limits.max_depth = 3;  // {name: {shape: [...]}}
  limits.max_values = 16 * kMaxTensors;
  auto parsed = ParseJson(json, limits);
  if (!parsed.ok()) return loss("bad header: " + parsed.status().message());
  const JsonValue& root = *parsed;

  SafetensorsHeader header;
  header.data_size = data_size;
  if (root.members().size() > kMaxTensors + 1) {
    return loss(std::to_string(root.members().size()) + " header entries, more than the limit of " +
                std::to_string(kMaxTensors));
  }
  header.tensors.reserve(root.members().size());
  for (const auto& [name, entry] : root.members()) {
    if (name == kMetadataKey) {
      if (!entry.is_object()) return loss("__metadata__ is not an object");
      for (const auto& [key, value] : entry.members()) {
        if (!value.is_string()) return loss("metadata " + Quoted(key) + " is not a string");
        header.metadata[key] = value.text();
      }
      continue;
    }
    const std::string what = "tensor " + Quoted(name);
    if (!entry.is_object()) return loss(what + " is not an object");
    const JsonValue* dtype = entry.Find("dtype");
    const JsonValue* shape = entry.Find("shape");
    const JsonValue* offsets = entry.Find("data_offsets");
    if (dtype == nullptr || shape == nullptr || offsets == nullptr) {
      return loss(what + " lacks dtype, shape or data_offsets");
    }
    if (entry.members().size() != 3)
      return loss(what + " has keys besides dtype, shape, data_offsets");
    TensorInfo info;
    info.name = name;
    const auto known = dtype->is_string() ? DTypeFromName(dtype->text()) : std::nullopt;
    if (!known) return loss(what + " has an unknown dtype " + ToJson(*dtype));
    info.dtype = *known;
    if (!shape->is_array()) return loss(what + " has a shape that is not an array");
    if (shape->items().size() > kMaxRank) {
      return loss(what + " has rank " + std::to_string(shape->items().size()));
    }
    for (const JsonValue& dim : shape->items()) {
      const auto value = dim.AsInt64();
      if (!value || *value < 0) return loss(what + " has a bad dimension " + ToJson(dim));
      info.shape.push_back(*value);
    }
    if (!offsets->is_array() || offsets->items().size() != 2) {
      return loss(what + " has data_offsets that are not [begin, end]");
    }
    const auto begin = offsets->items()[0].AsInt64();
    const auto end = offsets->items()[1].AsInt64();
    if (!begin || !end || *begin < 0 || *end < *begin) {
      return loss(what + " has bad data_offsets " + ToJson(*offsets));
    }
    info.begin = static_cast<uint64_t>(*begin);
    info.end = static_cast<uint64_t>(*end);
    auto bytes = TensorByteSize(info.dtype, info.shape);
    if (!bytes.ok()) return loss(what + ": " + bytes.status().message());
    if (*bytes != info.end - info.begin) {
      return loss(what + " is " + DTypeName(info.dtype) + " " + ToJson(*shape) + " (" +
                  std::to_string(*bytes) + " bytes) but data_offsets " + ToJson(*offsets) +
                  " span " + std::to_string(info.end - info.begin) + " bytes");
    }
    header.tensors.push_back(std::move(info));
  }

  // The tensors must tile [0, data_size) exactly.
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(header.tensors.size());
  for (const TensorInfo& t : header.tensors) by_offset.push_back(&t);
  std::stable_sort(by_offset.begin(), by_offset.end(),
                   [](const TensorInfo* a, const TensorInfo* b) {
                     return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
                   });
  uint64_t position = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* t : by_offset) {
    if (t->begin != position) {
      const std::string after =
          previous == nullptr ? "the start of the data" : "tensor " + Quoted(previous->name);
      return loss("tensor " + Quoted(t->name) + " begins at " + std::to_string(t->begin) + " but " +
                  after + " ends at " + std::to_string(position) +
                  (t->begin > position ? " (gap)" : " (overlap)"));
    }
    position = t->end;
    previous = t;
  }
  if (position != data_size) {
    return loss("tensors cover " + std::to_string(position) + " bytes but the data section holds " +
                std::to_string(data_size) +
                (position < data_size ? " (trailing bytes)" : " (file truncated)"));
  }
  return header;
}

core::StatusOr<SafetensorsHeader> ReadSafetensorsHeader(const std::string& path) {
  CORE_ASSIGN_OR_RETURN(ScopedFd fd, OpenForRead(path));
  return ReadSafetensorsHeader(fd.get(), path);
}

core::StatusOr<SafetensorsHeader> ReadSafetensorsHeader(int fd, const std::string& path) {
  CORE_ASSIGN_OR_RETURN(const uint64_t file_size, FileSize(fd, path));
  if (file_size < 8) {
    return core::DataLossError("safetensors file " + path + ": " + std::to_string(file_size) +
                               " bytes, too short for the 8-byte header length");
  }
  unsigned char prefix[8];
  CORE_RETURN_IF_ERROR(ReadExactlyAt(fd, prefix, sizeof(prefix), 0, path));
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | prefix[i];
  if (header_size > kMaxHeaderBytes) {
    return core::DataLossError("safetensors file " + path + ": header length " +
                               std::to_string(header_size) + " exceeds the limit of " +
                               std::to_string(kMaxHeaderBytes));
  }
  if (header_size > file_size - 8) {
    return core::DataLossError("safetensors file " + path + ": header length " +
                               std::to_string(header_size) + " is larger than the " +
                               std::to_string(file_size - 8) + " bytes after the length prefix");
  }
  std::string json(header_size, '\0');
  CORE_RETURN_IF_ERROR(ReadExactlyAt(fd, json.data(), json.size(), 8, path));
  CORE_ASSIGN_OR_RETURN(SafetensorsHeader header,
                        ParseSafetensorsHeader(json, file_size - 8 - header_size, path));
  header.data_start = 8 + header_size;
  return header;
}

core::StatusOr<std::string> FileSha256(const std::string& path) {
  CORE_ASSIGN_OR_RETURN(ScopedFd fd, OpenForRead(path));
  Sha256 sha;
  std::vector<char> buffer(size_t{1} << 20);
  while (true) {
    const ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus(errno, "cannot read", path);
    }
    if (n == 0) break;
    sha.Update(buffer.data(), static_cast<size_t>(n));
  }
  return ToHex(sha.Finish());
}

core::Status VerifySafetensorsFile(const std::string& path) {
  CORE_ASSIGN_OR_RETURN(ScopedFd fd, OpenForRead(path));
  CORE_ASSIGN_OR_RETURN(const SafetensorsHeader header, ReadSafetensorsHeader(fd.get(), path));
  const auto expected = header.metadata.find(kTensorSha256Key);
  if (expected == header.metadata.end()) return core::OkStatus();
  CORE_RETURN_IF_ERROR(CheckSha256Text(expected->second, path));
  Sha256 sha;
  std::vector<char> buffer(size_t{1} << 20);
  for (uint64_t done = 0; done < header.data_size;) {
    const size_t n =
        static_cast<size_t>(std::min<uint64_t>(buffer.size(), header.data_size - done));
    CORE_RETURN_IF_ERROR(ReadExactlyAt(fd.get(), buffer.data(), n, header.data_start + done, path));
    sha.Update(buffer.data(), n);
    done += n;
  }
  return CompareDataSha256(expected->second, ToHex(sha.Finish()), path);
}

core::Status CheckSha256Text(const std::string& text, const std::string& source) {
  const bool hex = text.size() == 64 && std::all_of(text.begin(), text.end(), [](char c) {
                     return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
                   });
  if (!hex) {
    return core::DataLossError("safetensors file " + source + ": metadata tensor_sha256 \"" +
                               text.substr(0, 80) + "\" is not 64 lower-case hex digits");
  }
  return core::OkStatus();
}

core::Status CompareDataSha256(const std::string& expected, const std::string& actual,
                               const std::string& source) {
  if (expected == actual) return core::OkStatus();
  return core::DataLossError(
      "safetensors file " + source + ": tensor data does not match its SHA-256 (header says " +
      expected + ", data hashes to " + actual + "): the file is corrupt or was altered");
}

}  // namespace vjepa::checkpoint
