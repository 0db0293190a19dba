// LibTorch tensors in the safetensors format (layout in safetensors_header.h), readable by
// Python's `safetensors` and by any reader of the format.
#ifndef VJEPA_SERVICES_TRAINER_CHECKPOINT_SAFETENSORS_H_
#define VJEPA_SERVICES_TRAINER_CHECKPOINT_SAFETENSORS_H_

#include <torch/types.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/core/status.h"
#include "services/trainer/checkpoint/safetensors_header.h"

namespace vjepa::checkpoint {

struct NamedTensor {
  std::string name;
  torch::Tensor tensor;
};

struct TensorFile {
  std::vector<NamedTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// The safetensors dtype of a LibTorch scalar type and back. INVALID_ARGUMENT for types either
// side lacks (complex, quantized; U16/U32/U64/F8 in LibTorch 1.13).
core::StatusOr<DType> ToSafetensorsDType(torch::ScalarType type);
core::StatusOr<torch::ScalarType> ToScalarType(DType dtype);

// Writes atomically (temp file in the same directory, fsync, rename, fsync of the directory):
// the destination is either untouched or the complete new file. Tensors are written from CPU
// contiguous copies, one at a time. The data section is laid out by element size, largest first,
// so that every tensor is aligned to its element size; the header lists the tensors in the given
// order. Adds metadata tensor_sha256 (replacing any given value). INVALID_ARGUMENT for undefined
// or sparse tensors, unsupported dtypes, duplicate or reserved names.
core::Status WriteSafetensors(const std::string& path, const TensorFile& file);

struct ReadOptions {
  // Tensors to materialise; all when unset. The others are still read for the digest check.
  std::function<bool(const std::string& name)> select;
};

// Reads CPU tensors in the header's order. Verifies the structure (see ParseSafetensorsHeader),
// BOOL bytes, and tensor_sha256 when present: DATA_LOSS naming the file and the fault for a
// truncated, corrupt or altered file; NOT_FOUND for a missing one.
core::StatusOr<TensorFile> ReadSafetensors(const std::string& path,
                                           const ReadOptions& options = {});

}  // namespace vjepa::checkpoint

#endif  // VJEPA_SERVICES_TRAINER_CHECKPOINT_SAFETENSORS_H_
