// The trainers of a job as one c10d process group (docs/architecture.md §4): rank 0 serves a
// TCPStore, every rank joins it under the key prefix "<job>/<generation>/" and builds a Gloo
// process group (CPU trainers) or an NCCL one (GPU trainers, where LibTorch has NCCL). A group
// never outlives its generation: a lost trainer makes every rank drop its group and rejoin with
// the next generation (neither kind of group can be repaired).
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_DISTRIBUTED_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_DISTRIBUTED_H_

#include <torch/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/trainer/vjepa/trainer.h"

namespace vjepa::trainer {

// kGloo reduces on the CPU (GPU tensors are staged through host copies); kNccl reduces GPU
// tensors in place over NVLink or the network.
enum class Backend { kGloo, kNccl };

// Whether this build can make NCCL groups (a CUDA LibTorch with NCCL; cmake/VjepaTorch.cmake).
bool NcclAvailable();

struct DistributedOptions {
  std::string job_id;
  int64_t generation = 0;
  int rank = 0;
  int world_size = 1;
  // Rank 0's TCPStore, HOST:PORT. Rank 0 listens on PORT (on every interface); the others
  // connect to it.
  std::string store_address;
  // Every collective, the rendezvous and store operations fail after this (Gloo's own default
  // is 30 minutes).
  absl::Duration timeout = absl::Seconds(60);
  // The address Gloo binds and advertises to the other ranks; empty: this host's name.
  std::string bind_host;
  Backend backend = Backend::kGloo;
};

class ProcessGroup {
 public:
  // Joins the group: blocks until every rank has joined or the timeout passes (UNAVAILABLE or
  // DEADLINE_EXCEEDED, naming the store). INVALID_ARGUMENT for options that cannot work.
  static absl::StatusOr<std::unique_ptr<ProcessGroup>> Join(const DistributedOptions& options);
  ~ProcessGroup();

  int rank() const { return rank_; }
  int world_size() const { return world_size_; }

  // Averages the gradients of `params` over the ranks, in place: one all-reduce (sum) per dtype
  // over a flat buffer of that dtype's gradients, divided by the world size. A parameter without
  // a gradient counts as zeros and gets the average. Every rank must pass the same parameter
  // list (same order, shapes and dtypes).
  absl::Status AllReduceGradients(const std::vector<torch::Tensor>& params);
  // Copies `root`'s values of `tensors` into every rank's, in place (identical start).
  absl::Status Broadcast(const std::vector<torch::Tensor>& tensors, int root = 0);
  absl::Status Barrier();

 private:
  struct Impl;
  ProcessGroup(std::unique_ptr<Impl> impl, int rank, int world_size);
  std::unique_ptr<Impl> impl_;
  int rank_ = 0;
  int world_size_ = 1;
};

// The jepa::Trainer gradient hook that averages the gradients over `group` (which must outlive
// the trainer's use of it); an error keeps the code (core and absl codes share numbers).
jepa::Trainer::GradientHook GradientAllReduceHook(ProcessGroup* group);

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_DISTRIBUTED_H_
