// Index lists on the wire (MaskIndices in proto/vjepa/v1/data.proto, docs/architecture.md §3):
// little-endian int16 when every index of a mask config fits in [0, 32767], else int32.
#ifndef VJEPA_COMMON_MASKING_PACK_H_
#define VJEPA_COMMON_MASKING_PACK_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/core/status.h"
#include "common/masking/mask.h"

namespace vjepa::masking {

// 2 when every index of `a` and `b` is in [0, 32767], else 4.
int IndexElementBytes(const std::vector<int32_t>& a, const std::vector<int32_t>& b = {});

// `indices` as little-endian integers of `element_bytes` (2 or 4) each. INVALID_ARGUMENT for
// another width or an index that does not fit in it.
core::StatusOr<std::string> PackIndices(const std::vector<int32_t>& indices, int element_bytes);

// The inverse of PackIndices. INVALID_ARGUMENT for another width, a size that is not a whole
// number of elements, or an index outside [0, num_tokens).
core::StatusOr<std::vector<int32_t>> UnpackIndices(std::string_view bytes, int element_bytes,
                                                   int64_t num_tokens);

// The fields of one MaskIndices message.
struct PackedMasks {
  int batch = 0;
  int context_length = 0;
  int target_length = 0;
  int element_bytes = 0;
  std::string context;  // batch × context_length elements
  std::string target;   // batch × target_length elements
};

// Both lists of `masks` with one element width (IndexElementBytes of the two).
PackedMasks PackMasks(const BatchMasks& masks);

// The inverse of PackMasks for a batch of `batch` clips of `num_tokens` tokens; checks what came
// from outside: lengths in [0, num_tokens], byte counts = batch × length × element_bytes, every
// index in [0, num_tokens), rows strictly ascending. Stats stay empty.
core::StatusOr<BatchMasks> UnpackMasks(const PackedMasks& packed, int batch, int64_t num_tokens);

}  // namespace vjepa::masking

#endif  // VJEPA_COMMON_MASKING_PACK_H_
