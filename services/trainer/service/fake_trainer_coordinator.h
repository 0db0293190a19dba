// An in-process coordinator for the trainer's tests: WorkerService (register, heartbeat,
// ReportProgress, UploadCheckpoint) and CheckpointService (PullCheckpoint) on 127.0.0.1 port 0.
// It hands out the assignment it is given (one for every worker, or one per worker name), with
// the c10d store address rank 0 reports; fences reports and uploads of another (job, generation)
// than the caller's assignment with FAILED_PRECONDITION; checks each upload's size and SHA-256;
// keeps the uploaded files for PullCheckpoint and makes every worker of the job idle once a final
// checkpoint is uploaded. It records every call. Worker ids are "w-<name>-<incarnation>".
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_FAKE_TRAINER_COORDINATOR_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_FAKE_TRAINER_COORDINATOR_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server.h"
#include "vjepa/v1/checkpoint.grpc.pb.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::trainer {

class FakeTrainerCoordinator {
 public:
  struct Upload {
    v1::UploadCheckpointRequest::Header header;
    std::string data;
    bool accepted = false;  // size, digest and generation were right
  };

  FakeTrainerCoordinator();
  ~FakeTrainerCoordinator();
  std::string address() const;

  // Handed out with every RegisterWorker and Heartbeat answer from now on, to every worker
  // (replacing the per-name ones) or to the worker named `name`.
  void SetAssignment(const v1::TrainerAssignment& assignment);
  void SetAssignment(const std::string& name, const v1::TrainerAssignment& assignment);
  v1::TrainerAssignment assignment(const std::string& name) const;
  // The next Heartbeat answers FAILED_PRECONDITION (the worker was declared lost).
  void FailNextHeartbeat();
  // A checkpoint PullCheckpoint serves (uploads are added too).
  void AddCheckpoint(const std::string& job_id, int64_t step, std::string data);

  int registrations() const;
  std::vector<v1::RegisterWorkerRequest> registration_requests() const;
  int heartbeats() const;
  std::vector<v1::ReportProgressRequest> reports() const;  // accepted ones
  std::vector<Upload> uploads() const;
  std::vector<v1::PullCheckpointRequest> pulls() const;

 private:
  class Workers;
  class Checkpoints;

  std::unique_ptr<Workers> workers_;
  std::unique_ptr<Checkpoints> checkpoints_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  // The assignment of a worker name (`default_` for names without one).
  v1::TrainerAssignment& AssignmentLocked(const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static std::string NameOf(const std::string& worker_id);

  mutable absl::Mutex mu_;
  v1::TrainerAssignment default_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::TrainerAssignment> by_name_ ABSL_GUARDED_BY(mu_);
  bool fail_next_heartbeat_ ABSL_GUARDED_BY(mu_) = false;
  // (job, generation) whose final checkpoint was uploaded: their reports are still taken.
  std::set<std::pair<std::string, int64_t>> succeeded_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::RegisterWorkerRequest> registrations_ ABSL_GUARDED_BY(mu_);
  int heartbeats_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::ReportProgressRequest> reports_ ABSL_GUARDED_BY(mu_);
  std::vector<Upload> uploads_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::PullCheckpointRequest> pulls_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, int64_t>, std::string> files_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_FAKE_TRAINER_COORDINATOR_H_
