#include "services/trainer/service/distributed.h"

#include <torch/torch.h>

#include <exception>
#include <map>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace vjepa::trainer {
namespace {

std::chrono::milliseconds Millis(absl::Duration d) {
  return std::chrono::milliseconds(absl::ToInt64Milliseconds(d));
}

// What a c10d call threw, as a status: timeouts are DEADLINE_EXCEEDED, the rest UNAVAILABLE (a
// peer or the store went away).
absl::Status FromException(const std::string& what, const std::exception& e) {
  const std::string message = e.what();
  const bool timeout =
      message.find("imeout") != std::string::npos || message.find("imed out") != std::string::npos;
  std::string first_line = message.substr(0, message.find('\n'));
  return absl::Status(
      timeout ? absl::StatusCode::kDeadlineExceeded : absl::StatusCode::kUnavailable,
      absl::StrCat(what, ": ", first_line));
}

}  // namespace

bool NcclAvailable() {
#ifdef USE_C10D_NCCL
  return true;
#else
  return false;
#endif
}

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  // Gloo's or NCCL's: both have allreduce, broadcast and barrier with these signatures (a
  // c10d::ProcessGroup in LibTorch 1.13, a c10d::Backend in 2.x).
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef USE_C10D_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::string where;  // "c10d group job/gen/ at HOST:PORT, rank r of M (gloo)"

  bool on_host() const { return gloo.defined(); }
  auto AllReduce(std::vector<torch::Tensor>& t) {
#ifdef USE_C10D_NCCL
    if (nccl) return nccl->allreduce(t);
#endif
    return gloo->allreduce(t);
  }
  auto Broadcast(std::vector<torch::Tensor>& t, const c10d::BroadcastOptions& o) {
#ifdef USE_C10D_NCCL
    if (nccl) return nccl->broadcast(t, o);
#endif
    return gloo->broadcast(t, o);
  }
  auto Barrier() {
#ifdef USE_C10D_NCCL
    if (nccl) return nccl->barrier();
#endif
    return gloo->barrier();
  }
};

ProcessGroup::ProcessGroup(std::unique_ptr<Impl> impl, int rank, int world_size)
    : impl_(std::move(impl)), rank_(rank), world_size_(world_size) {}

ProcessGroup::~ProcessGroup() {
  if (!impl_) return;
  try {
    impl_->gloo.reset();
#ifdef USE_C10D_NCCL
    impl_->nccl.reset();
#endif
    impl_->store.reset();
  } catch (const std::exception&) {
    // A destructor that throws would end the process; the group is gone either way.
  }
}

absl::StatusOr<std::unique_ptr<ProcessGroup>> ProcessGroup::Join(
    const DistributedOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("c10d: rank ", options.rank, " outside [0, ", options.world_size, ")"));
  }
  if (options.job_id.empty() || options.generation < 0) {
    return absl::InvalidArgumentError("c10d: needs a job id and a generation >= 0");
  }
  if (options.timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("c10d: the timeout must be > 0");
  }
  if (options.backend == Backend::kNccl && !NcclAvailable()) {
    return absl::FailedPreconditionError(
        "c10d: NCCL was asked for, but this build has no NCCL (a CUDA LibTorch with nccl.h; "
        "docs/gpu.md)");
  }
  const size_t colon = options.store_address.rfind(':');
  uint32_t port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(options.store_address.substr(colon + 1), &port) || port == 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("c10d: store address '", options.store_address,
                                                   "' is not HOST:PORT with a port > 0"));
  }
  std::string host = options.store_address.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  auto impl = std::make_unique<Impl>();
  const std::string prefix = absl::StrCat(options.job_id, "/", options.generation, "/");
  impl->where = absl::StrCat("c10d group ", prefix, " at ", options.store_address, ", rank ",
                             options.rank, " of ", options.world_size,
                             options.backend == Backend::kNccl ? " (nccl)" : " (gloo)");
  try {
    c10d::TCPStoreOptions store_options;
    store_options.port = static_cast<uint16_t>(port);
    store_options.isServer = options.rank == 0;
    store_options.waitWorkers = false;
    store_options.timeout = Millis(options.timeout);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(host, store_options);
    impl->store = c10::make_intrusive<c10d::PrefixStore>(prefix, tcp);
    if (options.backend == Backend::kNccl) {
#ifdef USE_C10D_NCCL
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = Millis(options.timeout);
      impl->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, options.rank,
                                                               options.world_size, nccl_options);
#endif
    } else {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(Millis(options.timeout));
      gloo_options->devices.push_back(
          options.bind_host.empty()
              ? c10d::ProcessGroupGloo::createDefaultDevice()
              : c10d::ProcessGroupGloo::createDeviceForHostname(options.bind_host));
      gloo_options->threads = 2;
      impl->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, options.rank,
                                                               options.world_size, gloo_options);
    }
  } catch (const std::exception& e) {
    return FromException(absl::StrCat("joining ", impl->where), e);
  }
  return std::unique_ptr<ProcessGroup>(
      new ProcessGroup(std::move(impl), options.rank, options.world_size));
}

absl::Status ProcessGroup::AllReduceGradients(const std::vector<torch::Tensor>& params) {
  if (world_size_ == 1) return absl::OkStatus();
  torch::NoGradGuard no_grad;
  // One flat buffer per dtype, parameters in the given order.
  std::map<int, std::vector<torch::Tensor>> by_dtype;
  for (const torch::Tensor& p : params) {
    by_dtype[static_cast<int>(p.scalar_type())].push_back(p);
  }
  try {
    for (auto& [dtype, group] : by_dtype) {
      std::vector<torch::Tensor> pieces;
      pieces.reserve(group.size());
      for (const torch::Tensor& p : group) {
        const torch::Tensor& g = p.grad();
        pieces.push_back(g.defined() ? g.reshape({-1}) : torch::zeros({p.numel()}, p.options()));
      }
      torch::Tensor joined = torch::cat(pieces);
      // Gloo reduces host memory: GPU gradients go through a host copy and back.
      std::vector<torch::Tensor> flat{impl_->on_host() ? joined.to(torch::kCPU) : joined};
      impl_->AllReduce(flat)->wait();
      flat[0] = flat[0].to(joined.device()).div_(world_size_);
      int64_t offset = 0;
      for (torch::Tensor p : group) {
        torch::Tensor avg = flat[0].narrow(0, offset, p.numel()).view(p.sizes());
        offset += p.numel();
        if (p.grad().defined()) {
          p.mutable_grad().copy_(avg);
        } else {
          p.mutable_grad() = avg.clone();
        }
      }
    }
  } catch (const std::exception& e) {
    return FromException(absl::StrCat("all-reducing gradients in ", impl_->where), e);
  }
  return absl::OkStatus();
}

absl::Status ProcessGroup::Broadcast(const std::vector<torch::Tensor>& tensors, int root) {
  if (root < 0 || root >= world_size_) {
    return absl::InvalidArgumentError(
        absl::StrCat("c10d broadcast: root ", root, " outside [0, ", world_size_, ")"));
  }
  if (world_size_ == 1) return absl::OkStatus();
  torch::NoGradGuard no_grad;
  try {
    for (const torch::Tensor& t : tensors) {
      torch::Tensor buffer = t.is_contiguous() ? t : t.contiguous();
      if (impl_->on_host()) buffer = buffer.to(torch::kCPU);
      std::vector<torch::Tensor> one{buffer};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      impl_->Broadcast(one, opts)->wait();
      if (!one[0].is_same(t)) torch::Tensor(t).copy_(one[0]);
    }
  } catch (const std::exception& e) {
    return FromException(absl::StrCat("broadcasting in ", impl_->where), e);
  }
  return absl::OkStatus();
}

absl::Status ProcessGroup::Barrier() {
  try {
    impl_->Barrier()->wait();
  } catch (const std::exception& e) {
    return FromException(absl::StrCat("barrier in ", impl_->where), e);
  }
  return absl::OkStatus();
}

jepa::Trainer::GradientHook GradientAllReduceHook(ProcessGroup* group) {
  return [group](const std::vector<torch::Tensor>& params) -> core::Status {
    absl::Status s = group->AllReduceGradients(params);
    if (s.ok()) return core::OkStatus();
    return core::Status(static_cast<core::Code>(static_cast<int>(s.code())),
                        std::string(s.message()));
  };
}

}  // namespace vjepa::trainer
