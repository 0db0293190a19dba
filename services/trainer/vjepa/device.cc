#include "services/trainer/vjepa/device.h"

#include <ATen/autocast_mode.h>
#include <c10/core/StreamGuard.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <utility>

#include "common/core/torch_version.h"

namespace vjepa::jepa {
namespace {

// LibTorch 2.4 replaced the per-device autocast functions (is_enabled, set_cpu_enabled,
// set_autocast_gpu_dtype, ...) by ones that take the device type, and deprecated the old ones.
#if VJEPA_TORCH_AT_LEAST(2, 4)
bool AutocastEnabled(c10::DeviceType t) { return at::autocast::is_autocast_enabled(t); }
void SetAutocastEnabled(c10::DeviceType t, bool on) { at::autocast::set_autocast_enabled(t, on); }
c10::ScalarType AutocastDtype(c10::DeviceType t) { return at::autocast::get_autocast_dtype(t); }
void SetAutocastDtype(c10::DeviceType t, c10::ScalarType d) {
  at::autocast::set_autocast_dtype(t, d);
}
#else
bool AutocastEnabled(c10::DeviceType t) {
  return t == c10::DeviceType::CUDA ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
}
void SetAutocastEnabled(c10::DeviceType t, bool on) {
  if (t == c10::DeviceType::CUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
c10::ScalarType AutocastDtype(c10::DeviceType t) {
  return t == c10::DeviceType::CUDA ? at::autocast::get_autocast_gpu_dtype()
                                    : at::autocast::get_autocast_cpu_dtype();
}
void SetAutocastDtype(c10::DeviceType t, c10::ScalarType d) {
  if (t == c10::DeviceType::CUDA) {
    at::autocast::set_autocast_gpu_dtype(d);
  } else {
    at::autocast::set_autocast_cpu_dtype(d);
  }
}
#endif

int64_t Bytes(const torch::Tensor& t) {
  return t.defined() ? t.numel() * static_cast<int64_t>(t.element_size()) : 0;
}

}  // namespace

core::StatusOr<torch::Device> ParseDevice(const std::string& text) {
  if (text == "cpu") return torch::Device(torch::kCPU);
  if (text != "cuda" && text.rfind("cuda:", 0) != 0) {
    return core::InvalidArgumentError("device \"" + text + "\": expected cpu, cuda or cuda:N");
  }
  int64_t index = 0;
  if (text != "cuda") {
    const std::string digits = text.substr(5);
    if (digits.empty() || digits.size() > 3 ||
        digits.find_first_not_of("0123456789") != std::string::npos) {
      return core::InvalidArgumentError("device \"" + text + "\": expected cpu, cuda or cuda:N");
    }
    index = std::stoi(digits);
  }
  if (!torch::cuda::is_available()) {
    return core::FailedPreconditionError(
        "device \"" + text + "\": this LibTorch (" + std::string(TORCH_VERSION) +
        ") has no CUDA, or no GPU is visible; build against a CUDA LibTorch (docs/gpu.md)");
  }
  const auto count = static_cast<int64_t>(torch::cuda::device_count());
  if (index >= count) {
    return core::FailedPreconditionError("device \"" + text + "\": only " + std::to_string(count) +
                                         " GPU(s) are visible");
  }
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
}

core::StatusOr<Precision> ParsePrecision(const std::string& text) {
  if (text == "float32" || text == "fp32") return Precision::kFloat32;
  if (text == "bfloat16" || text == "bf16") return Precision::kBfloat16;
  return core::InvalidArgumentError("precision \"" + text + "\": expected float32 or bfloat16");
}

const char* PrecisionName(Precision p) {
  return p == Precision::kBfloat16 ? "bfloat16" : "float32";
}

AutocastScope::AutocastScope(torch::Device device, Precision precision) {
  if (precision != Precision::kBfloat16) return;
  type_ = device.type();
  was_enabled_ = AutocastEnabled(type_);
  was_dtype_ = AutocastDtype(type_);
  SetAutocastDtype(type_, c10::ScalarType::BFloat16);
  SetAutocastEnabled(type_, true);
  at::autocast::increment_nesting();
  active_ = true;
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The cast cache holds bf16 copies of the weights for this scope only.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocastEnabled(type_, was_enabled_);
  SetAutocastDtype(type_, was_dtype_);
}

void SynchronizeDevice(torch::Device device) {
  if (device.is_cpu()) return;
  const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(device.type());
  impl->synchronizeStream(impl->getStream(device));
}

BatchUploader::BatchUploader(torch::Device device) : device_(device) {
  if (!device_.is_cpu()) {
    const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(device_.type());
    copy_stream_ = impl->getStreamFromGlobalPool(device_, /*isHighPriority=*/false);
  }
}

StagedBatch BatchUploader::Stage(const Batch& host) {
  StagedBatch staged;
  int64_t bytes = Bytes(host.tokens);
  for (const MaskIndices& m : host.masks) bytes += Bytes(m.context) + Bytes(m.target);
  bytes_staged_ += bytes;
  if (!copy_stream_) {
    staged.batch = host;
    return staged;
  }
  // Page-locked host memory lets the copy engine read the bytes while the host goes on; the
  // caching host allocator keeps each block until the copy that reads it has finished.
  auto pin = [&](const torch::Tensor& t) {
    if (t.device().is_cpu() && !t.is_pinned()) {
      pinned_bytes_ += Bytes(t);
      return t.contiguous().pin_memory();
    }
    return t;
  };
  c10::StreamGuard on_copy_stream(*copy_stream_);
  staged.batch.tokens = pin(host.tokens).to(device_, /*non_blocking=*/true);
  for (const MaskIndices& m : host.masks) {
    staged.batch.masks.push_back({pin(m.context).to(device_, /*non_blocking=*/true),
                                  pin(m.target).to(device_, /*non_blocking=*/true)});
  }
  staged.done.emplace(device_.type());
  staged.done->record(*copy_stream_);
  return staged;
}

std::future<StagedBatch> BatchUploader::StageAsync(Batch host) {
  if (!copy_stream_) return std::async(std::launch::deferred, [this, host] { return Stage(host); });
  return std::async(std::launch::async, [this, host = std::move(host)] { return Stage(host); });
}

Batch BatchUploader::Ready(StagedBatch staged) {
  if (!staged.done) return std::move(staged.batch);
  const c10::impl::DeviceGuardImplInterface* impl = c10::impl::getDeviceGuardImpl(device_.type());
  const c10::Stream compute = impl->getStream(device_);
  staged.done->block(compute);
  staged.batch.tokens.record_stream(compute);
  for (MaskIndices& m : staged.batch.masks) {
    m.context.record_stream(compute);
    m.target.record_stream(compute);
  }
  return std::move(staged.batch);
}

}  // namespace vjepa::jepa
