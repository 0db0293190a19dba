// The safetensors layout without LibTorch: an 8-byte little-endian header length N, N bytes of
// JSON header (padded with spaces to a multiple of 8), then the raw little-endian tensor bytes,
// contiguous and without gaps in data_offsets order:
//   {"__metadata__": {"k": "v", ...},
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// Offsets are relative to the start of the data section. ParseSafetensorsHeader checks everything
// that can be checked without the data: bounded sizes, exact offsets that tile the data section,
// shape x dtype size == byte length, unique names, string-only metadata.
#ifndef VJEPA_SERVICES_TRAINER_CHECKPOINT_SAFETENSORS_HEADER_H_
#define VJEPA_SERVICES_TRAINER_CHECKPOINT_SAFETENSORS_HEADER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/status.h"

namespace vjepa::checkpoint {

inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;
inline constexpr size_t kMaxTensors = 1u << 18;
inline constexpr size_t kMaxRank = 64;
inline constexpr char kMetadataKey[] = "__metadata__";
// The metadata entry WriteSafetensors adds: lower-case hex SHA-256 of the whole data section.
inline constexpr char kTensorSha256Key[] = "tensor_sha256";

// Every dtype of the safetensors format (names as in the file).
enum class DType {
  kF64,
  kF32,
  kF16,
  kBF16,
  kI64,
  kI32,
  kI16,
  kI8,
  kU64,
  kU32,
  kU16,
  kU8,
  kBool,
  kF8E4M3,
  kF8E5M2
};
const char* DTypeName(DType dtype);
size_t DTypeSize(DType dtype);
std::optional<DType> DTypeFromName(std::string_view name);

struct TensorInfo {
  std::string name;
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // data_offsets, relative to the data section
  uint64_t end = 0;
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in the header's order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // absolute file offset of the data section (8 + N)
  uint64_t data_size = 0;
};

// Bytes of a tensor of this shape and dtype; INVALID_ARGUMENT on negative dims or overflow.
core::StatusOr<uint64_t> TensorByteSize(DType dtype, const std::vector<int64_t>& shape);

// The JSON header for these tensors (offsets as given) and metadata, padded with spaces so that
// its length is a multiple of 8. Metadata comes first, then the tensors in their order.
// INVALID_ARGUMENT for duplicate or reserved names.
core::StatusOr<std::string> SerializeSafetensorsHeader(
    const std::vector<TensorInfo>& tensors, const std::map<std::string, std::string>& metadata);

// Validates a header of a file whose data section holds data_size bytes. `source` names the file
// in messages. Every structural error is DATA_LOSS.
core::StatusOr<SafetensorsHeader> ParseSafetensorsHeader(std::string_view json, uint64_t data_size,
                                                         const std::string& source);

// Reads and validates the header of the file at path (NOT_FOUND when it does not exist,
// DATA_LOSS when the length prefix, the header or the file size are inconsistent).
core::StatusOr<SafetensorsHeader> ReadSafetensorsHeader(const std::string& path);
// The same on an open file (read with pread; the file offset is not used).
core::StatusOr<SafetensorsHeader> ReadSafetensorsHeader(int fd, const std::string& path);

// Lower-case hex SHA-256 of the whole file.
core::StatusOr<std::string> FileSha256(const std::string& path);

// Checks the header and, when the metadata holds tensor_sha256, the digest of the data section,
// without materialising tensors. DATA_LOSS for a truncated, corrupt or altered file.
core::Status VerifySafetensorsFile(const std::string& path);

// DATA_LOSS unless text is 64 lower-case hex digits.
core::Status CheckSha256Text(const std::string& text, const std::string& source);
// DATA_LOSS naming both digests unless they are equal.
core::Status CompareDataSha256(const std::string& expected, const std::string& actual,
                               const std::string& source);

}  // namespace vjepa::checkpoint

#endif  // VJEPA_SERVICES_TRAINER_CHECKPOINT_SAFETENSORS_HEADER_H_
