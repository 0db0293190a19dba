#include "services/trainer/checkpoint/safetensors.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>

#include "services/trainer/checkpoint/file_io.h"
#include "services/trainer/checkpoint/sha256.h"

namespace vjepa::checkpoint {
namespace {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian bytes; this code copies tensors as they are");

struct TypePair {
  torch::ScalarType type;
  DType dtype;
};

constexpr TypePair kTypes[] = {
    {torch::kFloat64, DType::kF64}, {torch::kFloat32, DType::kF32},
    {torch::kFloat16, DType::kF16}, {torch::kBFloat16, DType::kBF16},
    {torch::kInt64, DType::kI64},   {torch::kInt32, DType::kI32},
    {torch::kInt16, DType::kI16},   {torch::kInt8, DType::kI8},
    {torch::kUInt8, DType::kU8},    {torch::kBool, DType::kBool},
};

std::string Quoted(const std::string& name) { return "\"" + name + "\""; }

std::string LittleEndian64(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

}  // namespace

core::StatusOr<DType> ToSafetensorsDType(torch::ScalarType type) {
  for (const auto& pair : kTypes) {
    if (pair.type == type) return pair.dtype;
  }
  return core::InvalidArgumentError(std::string("no safetensors dtype for ") + c10::toString(type));
}

core::StatusOr<torch::ScalarType> ToScalarType(DType dtype) {
  for (const auto& pair : kTypes) {
    if (pair.dtype == dtype) return pair.type;
  }
  return core::InvalidArgumentError(std::string("safetensors dtype ") + DTypeName(dtype) +
                                    " has no LibTorch equivalent here");
}

core::Status WriteSafetensors(const std::string& path, const TensorFile& file) {
  const size_t n = file.tensors.size();
  std::vector<TensorInfo> infos(n);
  for (size_t i = 0; i < n; ++i) {
    const NamedTensor& named = file.tensors[i];
    const std::string what = "cannot write " + path + ": tensor " + Quoted(named.name);
    if (!named.tensor.defined()) return core::InvalidArgumentError(what + " is undefined");
    if (named.tensor.layout() != torch::kStrided || named.tensor.is_quantized()) {
      return core::InvalidArgumentError(what + " is not a dense tensor");
    }
    auto dtype = ToSafetensorsDType(named.tensor.scalar_type());
    if (!dtype.ok()) return core::InvalidArgumentError(what + ": " + dtype.status().message());
    infos[i].name = named.name;
    infos[i].dtype = *dtype;
    infos[i].shape = named.tensor.sizes().vec();
  }
  // Largest elements first: with the header padded to 8 bytes every tensor starts aligned.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&infos](size_t a, size_t b) {
    return DTypeSize(infos[a].dtype) > DTypeSize(infos[b].dtype);
  });
  uint64_t offset = 0;
  for (const size_t i : order) {
    CORE_ASSIGN_OR_RETURN(const uint64_t bytes, TensorByteSize(infos[i].dtype, infos[i].shape));
    infos[i].begin = offset;
    infos[i].end = offset += bytes;
  }

  std::map<std::string, std::string> metadata = file.metadata;
  metadata[kTensorSha256Key] = std::string(64, '0');  // placeholder of the digest's length
  auto header = SerializeSafetensorsHeader(infos, metadata);
  if (!header.ok()) {
    return core::InvalidArgumentError("cannot write " + path + ": " + header.status().message());
  }

  CORE_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> out, AtomicFileWriter::Open(path));
  CORE_RETURN_IF_ERROR(out->Append(LittleEndian64(header->size()).data(), 8));
  CORE_RETURN_IF_ERROR(out->Append(header->data(), header->size()));
  Sha256 sha;
  for (const size_t i : order) {
    const uint64_t bytes = infos[i].end - infos[i].begin;
    if (bytes == 0) continue;
    const torch::Tensor cpu = file.tensors[i].tensor.detach().to(torch::kCPU).contiguous();
    CORE_RETURN_IF_ERROR(out->Append(cpu.data_ptr(), bytes));
    sha.Update(cpu.data_ptr(), bytes);
  }
  metadata[kTensorSha256Key] = ToHex(sha.Finish());
  auto final_header = SerializeSafetensorsHeader(infos, metadata);
  if (!final_header.ok() || final_header->size() != header->size()) {
    return core::InternalError("cannot write " + path + ": header changed size with the digest");
  }
  CORE_RETURN_IF_ERROR(out->WriteAt(8, final_header->data(), final_header->size()));
  return out->Commit();
}

core::StatusOr<TensorFile> ReadSafetensors(const std::string& path, const ReadOptions& options) {
  CORE_ASSIGN_OR_RETURN(ScopedFd fd, OpenForRead(path));
  CORE_ASSIGN_OR_RETURN(const SafetensorsHeader header, ReadSafetensorsHeader(fd.get(), path));
  const auto expected = header.metadata.find(kTensorSha256Key);
  const bool verify = expected != header.metadata.end();
  if (verify) CORE_RETURN_IF_ERROR(CheckSha256Text(expected->second, path));

  const size_t n = header.tensors.size();
  std::vector<bool> selected(n);
  for (size_t i = 0; i < n; ++i) {
    selected[i] = !options.select || options.select(header.tensors[i].name);
  }
  std::vector<torch::ScalarType> types(n, torch::kFloat32);
  for (size_t i = 0; i < n; ++i) {
    if (!selected[i]) continue;
    auto type = ToScalarType(header.tensors[i].dtype);
    if (!type.ok()) {
      return core::InvalidArgumentError("cannot read " + path + ": tensor " +
                                        Quoted(header.tensors[i].name) + ": " +
                                        type.status().message());
    }
    types[i] = *type;
  }

  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&header](size_t a, size_t b) {
    const TensorInfo& x = header.tensors[a];
    const TensorInfo& y = header.tensors[b];
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  std::vector<torch::Tensor> tensors(n);
  Sha256 sha;
  std::vector<char> skip_buffer;
  for (const size_t i : order) {
    const TensorInfo& info = header.tensors[i];
    const uint64_t bytes = info.end - info.begin;
    const uint64_t at = header.data_start + info.begin;
    if (selected[i]) {
      tensors[i] = torch::empty(info.shape, torch::TensorOptions().dtype(types[i]));
      if (bytes == 0) continue;
      auto* data = static_cast<char*>(tensors[i].data_ptr());
      CORE_RETURN_IF_ERROR(ReadExactlyAt(fd.get(), data, bytes, at, path));
      if (verify) sha.Update(data, bytes);
      if (info.dtype == DType::kBool) {
        const auto* bad = std::find_if(data, data + bytes, [](char c) { return c != 0 && c != 1; });
        if (bad != data + bytes) {
          return core::DataLossError("safetensors file " + path + ": BOOL tensor " +
                                     Quoted(info.name) + " holds the byte " +
                                     std::to_string(static_cast<uint8_t>(*bad)));
        }
      }
    } else if (verify) {
      skip_buffer.resize(size_t{1} << 20);
      for (uint64_t done = 0; done < bytes;) {
        const size_t chunk =
            static_cast<size_t>(std::min<uint64_t>(skip_buffer.size(), bytes - done));
        CORE_RETURN_IF_ERROR(ReadExactlyAt(fd.get(), skip_buffer.data(), chunk, at + done, path));
        sha.Update(skip_buffer.data(), chunk);
        done += chunk;
      }
    }
  }
  if (verify) CORE_RETURN_IF_ERROR(CompareDataSha256(expected->second, ToHex(sha.Finish()), path));

  TensorFile file;
  file.metadata = header.metadata;
  for (size_t i = 0; i < n; ++i) {
    if (selected[i]) file.tensors.push_back({header.tensors[i].name, std::move(tensors[i])});
  }
  return file;
}

}  // namespace vjepa::checkpoint
