// Where a training step runs: the device, the arithmetic precision, and the upload of host
// batches to the device. Written against c10's device-generic stream and event API, so that the
// same code compiles against a CPU-only LibTorch (1.13 and later) and runs on CUDA with a
// LibTorch built for it; nothing here includes a CUDA header.
#ifndef VJEPA_SERVICES_TRAINER_VJEPA_DEVICE_H_
#define VJEPA_SERVICES_TRAINER_VJEPA_DEVICE_H_

#include <c10/core/Event.h>
#include <c10/core/ScalarType.h>
#include <c10/core/Stream.h>
#include <torch/types.h>

#include <atomic>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "common/core/status.h"
#include "services/trainer/vjepa/trainer.h"

namespace vjepa::jepa {

// "cpu", "cuda" or "cuda:N" → the device; INVALID_ARGUMENT names the text, FAILED_PRECONDITION
// says when this LibTorch has no CUDA or no such GPU.
core::StatusOr<torch::Device> ParseDevice(const std::string& text);

// "float32" or "bfloat16" (also "fp32", "bf16").
core::StatusOr<Precision> ParsePrecision(const std::string& text);
const char* PrecisionName(Precision p);

// bfloat16 autocast for the device's type while it lives (a no-op for float32): matrix products
// and attention run in bf16, reductions, norms and softmax in fp32, while the weights, their
// gradients and the optimizer state stay float32 (the master copy). Restores the previous
// autocast state and clears the cast cache on exit. One per thread at a time.
class AutocastScope {
 public:
  AutocastScope(torch::Device device, Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  c10::DeviceType type_ = c10::DeviceType::CPU;
  bool was_enabled_ = false;
  c10::ScalarType was_dtype_ = c10::ScalarType::Float;
};

// Blocks until the device's current stream has finished its work (no-op on the CPU).
void SynchronizeDevice(torch::Device device);

// A batch on its way to the device: Stage has queued its copies, Ready hands it to the step.
struct StagedBatch {
  Batch batch;                     // on the device (its copies may still be running)
  std::optional<c10::Event> done;  // recorded on the copy stream after the copies (CUDA)
};

// Copies host batches to the device ahead of the step that uses them. On CUDA, the uint8 tokens
// and the mask indices go through pinned (page-locked) host memory and are copied
// asynchronously on a copy stream of their own, so that the copy of batch k+1 runs while step k
// computes; tokens stay uint8 over the bus (a quarter of float32's bytes) and are normalised on
// the device by the encoder. On the CPU, Stage and Ready pass the batch through.
//
//   std::future<StagedBatch> next = uploader.StageAsync(host_batch);
//   ... the step of the previous batch ...
//   Batch on_device = uploader.Ready(next.get());
class BatchUploader {
 public:
  explicit BatchUploader(torch::Device device);

  StagedBatch Stage(const Batch& host);
  // Stage on a thread of its own: the copy into pinned memory (tens of milliseconds for a large
  // batch) then overlaps the host's launching of the current step instead of delaying it. One
  // staging at a time; the batch is held until it is done.
  std::future<StagedBatch> StageAsync(Batch host);
  // Makes the device's current stream wait for the copies and ties the batch's memory to that
  // stream (so the allocator does not hand it out again while the step still reads it).
  Batch Ready(StagedBatch staged);

  torch::Device device() const { return device_; }
  // Bytes staged so far, and how many of them went through pinned memory.
  int64_t bytes_staged() const { return bytes_staged_; }
  int64_t pinned_bytes() const { return pinned_bytes_; }

 private:
  torch::Device device_;
  std::optional<c10::Stream> copy_stream_;  // CUDA only
  std::atomic<int64_t> bytes_staged_{0};
  std::atomic<int64_t> pinned_bytes_{0};
};

}  // namespace vjepa::jepa

#endif  // VJEPA_SERVICES_TRAINER_VJEPA_DEVICE_H_
