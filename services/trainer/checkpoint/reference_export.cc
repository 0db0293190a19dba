#include "services/trainer/checkpoint/reference_export.h"

#include <ATen/core/Dict.h>
#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/pickler.h>
#include <torch/torch.h>

#include <exception>
#include <utility>
#include <vector>

#include "services/trainer/checkpoint/file_io.h"

namespace vjepa::checkpoint {
namespace {

// The pickler writes a tensor's whole storage: give it tensors that own exactly their bytes.
torch::Tensor Standalone(const torch::Tensor& t) {
  torch::Tensor cpu = t.detach().to(torch::kCPU);
  const bool owns_storage =
      cpu.is_contiguous() && cpu.storage_offset() == 0 &&
      cpu.storage().nbytes() == static_cast<size_t>(cpu.numel()) * cpu.element_size();
  return owns_storage ? cpu : cpu.clone(at::MemoryFormat::Contiguous);
}

core::StatusOr<c10::Dict<std::string, at::Tensor>> ModelDict(const std::vector<NamedTensor>& model,
                                                             const char* what) {
  if (model.empty()) {
    return core::FailedPreconditionError(std::string("checkpoint has no ") + what + " tensors");
  }
  c10::Dict<std::string, at::Tensor> dict;
  for (const NamedTensor& t : model) {
    if (!t.tensor.defined()) {
      return core::FailedPreconditionError(std::string(what) + " tensor " + t.name +
                                           " is undefined");
    }
    if (t.name == "patch_embed.proj.weight" && t.tensor.dim() != 5 && t.tensor.dim() != 4) {
      return core::FailedPreconditionError(
          std::string(what) + " patch_embed.proj.weight has " + std::to_string(t.tensor.dim()) +
          " dims; the reference expects the convolution shape [D, 3, tubelet, p, p]");
    }
    const std::string key = kReferenceKeyPrefix + t.name;
    if (dict.contains(key)) {
      return core::FailedPreconditionError(std::string(what) + " has the tensor " + t.name +
                                           " twice");
    }
    dict.insert(key, Standalone(t.tensor));
  }
  return dict;
}

}  // namespace

int64_t ReferenceEpoch(const TrainingCheckpoint& checkpoint) {
  return checkpoint.iterations_per_epoch > 0 ? checkpoint.step / checkpoint.iterations_per_epoch
                                             : checkpoint.step;
}

core::StatusOr<c10::IValue> ToReferenceDict(const TrainingCheckpoint& checkpoint) {
  CORE_ASSIGN_OR_RETURN(auto encoder, ModelDict(checkpoint.encoder, "encoder"));
  CORE_ASSIGN_OR_RETURN(auto predictor, ModelDict(checkpoint.predictor, "predictor"));
  CORE_ASSIGN_OR_RETURN(auto target, ModelDict(checkpoint.target_encoder, "target_encoder"));
  c10::impl::GenericDict dict(c10::StringType::get(), c10::AnyType::get());
  dict.insert("encoder", std::move(encoder));
  dict.insert("predictor", std::move(predictor));
  dict.insert("target_encoder", std::move(target));
  dict.insert("epoch", ReferenceEpoch(checkpoint));
  return c10::IValue(std::move(dict));
}

core::StatusOr<ReferenceExportSummary> ExportReferencePth(const TrainingCheckpoint& checkpoint,
                                                          const std::string& out_path) {
  CORE_ASSIGN_OR_RETURN(const c10::IValue dict, ToReferenceDict(checkpoint));
  CORE_ASSIGN_OR_RETURN(std::unique_ptr<AtomicFileWriter> out, AtomicFileWriter::Open(out_path));
  core::Status write_status;
  try {
    // What torch::pickle_save does, with type tags off (tags need torch.jit in the reader and
    // are refused by torch.load(weights_only=True)) and the archive streamed to the file.
    std::vector<char> pickle;
    torch::jit::Pickler pickler(
        [&pickle](const char* data, size_t size) {
          pickle.insert(pickle.end(), data, data + size);
        },
        /*tensor_table=*/nullptr, /*type_renamer=*/nullptr, /*memoized_class_types=*/nullptr,
        /*get_tensor_id=*/nullptr, /*tag_aggregates=*/false);
    pickler.protocol();
    pickler.pushIValue(dict);
    pickler.stop();
    caffe2::serialize::PyTorchStreamWriter writer(
        [&out, &write_status](const void* data, size_t size) -> size_t {
          // Report every size as written: a short count makes the zip writer throw, possibly
          // from its destructor. The first error is kept and returned below.
          if (write_status.ok()) write_status = out->Append(data, size);
          return size;
        });
    const std::vector<at::Tensor>& tensors = pickler.tensorData();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const torch::jit::WriteableTensorData data = torch::jit::getWriteableTensorData(tensors[i]);
      writer.writeRecord("data/" + std::to_string(i), data.data(), data.sizeInBytes());
    }
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeEndOfFile();
  } catch (const std::exception& e) {
    if (!write_status.ok()) return write_status;
    return core::InternalError("cannot export " + out_path + ": " + e.what());
  }
  CORE_RETURN_IF_ERROR(write_status);
  ReferenceExportSummary summary;
  summary.epoch = ReferenceEpoch(checkpoint);
  summary.encoder_tensors = checkpoint.encoder.size();
  summary.predictor_tensors = checkpoint.predictor.size();
  summary.target_encoder_tensors = checkpoint.target_encoder.size();
  summary.bytes = out->size();
  CORE_RETURN_IF_ERROR(out->Commit());
  return summary;
}

}  // namespace vjepa::checkpoint
