#include "common/masking/pack.h"

#include <algorithm>

namespace vjepa::masking {
namespace {

constexpr int32_t kInt16Max = 32767;

core::Status CheckWidth(int element_bytes) {
  if (element_bytes != 2 && element_bytes != 4) {
    return core::InvalidArgumentError("mask indices: element_bytes must be 2 or 4, got " +
                                      std::to_string(element_bytes));
  }
  return core::OkStatus();
}

bool Fits16(const std::vector<int32_t>& v) {
  return std::all_of(v.begin(), v.end(), [](int32_t x) { return x >= 0 && x <= kInt16Max; });
}

core::Status CheckRows(const char* what, const std::vector<int32_t>& v, int batch, int length) {
  for (int b = 0; b < batch; ++b) {
    const int32_t* row = v.data() + static_cast<size_t>(b) * length;
    for (int i = 1; i < length; ++i) {
      if (row[i] <= row[i - 1]) {
        return core::InvalidArgumentError(std::string("mask indices: ") + what + " row " +
                                          std::to_string(b) + " is not strictly ascending at " +
                                          std::to_string(i) + " (" + std::to_string(row[i - 1]) +
                                          " then " + std::to_string(row[i]) + ")");
      }
    }
  }
  return core::OkStatus();
}

}  // namespace

int IndexElementBytes(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  return Fits16(a) && Fits16(b) ? 2 : 4;
}

core::StatusOr<std::string> PackIndices(const std::vector<int32_t>& indices, int element_bytes) {
  CORE_RETURN_IF_ERROR(CheckWidth(element_bytes));
  if (element_bytes == 2 && !Fits16(indices)) {
    return core::InvalidArgumentError(
        "mask indices: an index outside [0, 32767] does not fit in 2 bytes");
  }
  std::string out(indices.size() * static_cast<size_t>(element_bytes), '\0');
  char* p = out.data();
  for (const int32_t x : indices) {
    const auto u = static_cast<uint32_t>(x);
    for (int k = 0; k < element_bytes; ++k) *p++ = static_cast<char>((u >> (8 * k)) & 0xFF);
  }
  return out;
}

core::StatusOr<std::vector<int32_t>> UnpackIndices(std::string_view bytes, int element_bytes,
                                                   int64_t num_tokens) {
  CORE_RETURN_IF_ERROR(CheckWidth(element_bytes));
  if (bytes.size() % static_cast<size_t>(element_bytes) != 0) {
    return core::InvalidArgumentError("mask indices: " + std::to_string(bytes.size()) +
                                      " bytes are not a whole number of " +
                                      std::to_string(element_bytes) + "-byte elements");
  }
  std::vector<int32_t> out(bytes.size() / static_cast<size_t>(element_bytes));
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  for (size_t i = 0; i < out.size(); ++i) {
    uint32_t u = 0;
    for (int k = 0; k < element_bytes; ++k) u |= static_cast<uint32_t>(*p++) << (8 * k);
    const int64_t x = element_bytes == 2 ? static_cast<int64_t>(static_cast<int16_t>(u))
                                         : static_cast<int64_t>(static_cast<int32_t>(u));
    if (x < 0 || x >= num_tokens) {
      return core::InvalidArgumentError("mask indices: element " + std::to_string(i) + " is " +
                                        std::to_string(x) + ", outside [0, " +
                                        std::to_string(num_tokens) + ")");
    }
    out[i] = static_cast<int32_t>(x);
  }
  return out;
}

PackedMasks PackMasks(const BatchMasks& masks) {
  PackedMasks out;
  out.batch = masks.batch;
  out.context_length = masks.context_length;
  out.target_length = masks.target_length;
  out.element_bytes = IndexElementBytes(masks.context, masks.target);
  // Cannot fail: the width was chosen to fit every index.
  out.context = PackIndices(masks.context, out.element_bytes).value();
  out.target = PackIndices(masks.target, out.element_bytes).value();
  return out;
}

core::StatusOr<BatchMasks> UnpackMasks(const PackedMasks& packed, int batch, int64_t num_tokens) {
  if (batch < 1) {
    return core::InvalidArgumentError("mask indices: batch must be >= 1, got " +
                                      std::to_string(batch));
  }
  if (packed.batch != batch) {
    return core::InvalidArgumentError("mask indices: batch " + std::to_string(packed.batch) +
                                      ", expected " + std::to_string(batch));
  }
  const int lengths[2] = {packed.context_length, packed.target_length};
  const std::string* bytes[2] = {&packed.context, &packed.target};
  const char* names[2] = {"context", "target"};
  CORE_RETURN_IF_ERROR(CheckWidth(packed.element_bytes));
  BatchMasks out;
  out.batch = batch;
  out.context_length = packed.context_length;
  out.target_length = packed.target_length;
  std::vector<int32_t>* lists[2] = {&out.context, &out.target};
  for (int k = 0; k < 2; ++k) {
    if (lengths[k] < 0 || lengths[k] > num_tokens) {
      return core::InvalidArgumentError(std::string("mask indices: ") + names[k] + " length " +
                                        std::to_string(lengths[k]) + " is outside [0, " +
                                        std::to_string(num_tokens) + "]");
    }
    const int64_t want = static_cast<int64_t>(batch) * lengths[k] * packed.element_bytes;
    if (static_cast<int64_t>(bytes[k]->size()) != want) {
      return core::InvalidArgumentError(
          std::string("mask indices: ") + names[k] + " has " + std::to_string(bytes[k]->size()) +
          " bytes, expected " + std::to_string(want) + " (" + std::to_string(batch) + " × " +
          std::to_string(lengths[k]) + " × " + std::to_string(packed.element_bytes) + ")");
    }
    CORE_ASSIGN_OR_RETURN(*lists[k], UnpackIndices(*bytes[k], packed.element_bytes, num_tokens));
    CORE_RETURN_IF_ERROR(CheckRows(names[k], *lists[k], batch, lengths[k]));
  }
  return out;
}

}  // namespace vjepa::masking
