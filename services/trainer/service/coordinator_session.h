// vjepa-trainer's coordinator mode (docs/trainer.md): registers as a TRAINER, heartbeats, and runs
// the assignment every answer carries, one (job, generation) at a time: rank 0 picks and reports
// the c10d store address, the other ranks wait for it; the resume checkpoint is pulled and
// checked; steps are reported (ProgressReporter) and rank 0 uploads each checkpoint before the
// next step. A probe job's assignment (kind probe) runs a ProbeRun instead and reports its
// results. An assignment that moves to another (job, generation) or to idle aborts the run (no
// checkpoint); a heartbeat answered NOT_FOUND or FAILED_PRECONDITION drops the run and registers
// again with a new incarnation; a run that fails by itself is reported as the job's failure.
//
// Threads: Run() drives the runs on the caller's thread; a heartbeat thread owned here. Stop()
// may be called from any thread.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_COORDINATOR_SESSION_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_COORDINATOR_SESSION_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/tls.h"
#include "common/spec/job_spec.h"
#include "services/trainer/service/run_control.h"
#include "services/trainer/service/trainer_metrics.h"
#include "services/trainer/service/training_run.h"
#include "vjepa/v1/checkpoint.grpc.pb.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::trainer {

class ProgressReporter;

struct CoordinatorSessionOptions {
  std::string address;            // HOST:PORT of the coordinator
  std::string token;              // a worker token (the coordinator and the dataworkers)
  rpc::TlsFiles tls;              // to the coordinator
  rpc::TlsFiles data_tls;         // to the dataworkers
  std::string name;               // stable worker name
  std::string advertise_address;  // HOST[:PORT]; HOST is where rank 0 serves the c10d store
  int cpus = 0;
  std::string device = "cpu";
  std::string work_dir;  // checkpoints: <work_dir>/<job>/g<generation>/step-<S>.safetensors
  absl::Duration c10d_timeout = absl::Seconds(60);
  std::string batch_log;  // empty: none
  int log_every = 1;
  int torch_threads = 0;  // 0: the spec's resources.torch_threads
  absl::Duration data_deadline = absl::Seconds(60);
  absl::Duration rpc_timeout = absl::Seconds(10);
  absl::Duration upload_budget = absl::Minutes(5);
  absl::Duration max_backoff = absl::Seconds(5);
  absl::Duration store_poll = absl::Milliseconds(200);  // heartbeats while waiting for rank 0
  std::function<int64_t()> incarnation_clock = [] { return absl::ToUnixMillis(absl::Now()); };
};

class CoordinatorSession {
 public:
  CoordinatorSession(CoordinatorSessionOptions options, TrainerMetrics* metrics);
  ~CoordinatorSession();  // Stop(), joins the heartbeat thread

  // Registers and runs assignments until Stop(). OK after Stop(); an error only when the
  // coordinator cannot be dialed at all (a bad address or TLS files).
  absl::Status Run();
  // Aborts the current run (no checkpoint) and makes Run() return. Idempotent.
  void Stop();

  std::string worker_id() const;

 private:
  using Key = std::pair<std::string, int64_t>;  // (job, generation)
  static Key KeyOf(const v1::TrainerAssignment& a) { return {a.job_id(), a.generation()}; }

  absl::Status Register();
  void HeartbeatLoop();
  // Takes a new assignment: aborts the run it takes away, hands it new dataworkers.
  void SetAssignmentLocked(const v1::TrainerAssignment& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs one assignment to its end (done, failed, aborted).
  void RunAssignment(const v1::TrainerAssignment& a);
  // A probe job's run (kind probe): the checkpoint pulled (or read from the spec's path),
  // ProbeRun, the results reported until accepted. OK also when the run was taken away or its
  // generation went stale (`stale`); an error is the job's failure.
  absl::Status RunProbe(const v1::TrainerAssignment& a, const spec::JobSpec& spec,
                        const std::string& job_dir, ProgressReporter& reporter,
                        std::atomic<bool>& stale);
  // Makes `run` the current run of `key` (false: the assignment moved away or Stop()).
  bool StartRun(const Key& key, RunControl* run, const std::vector<std::string>& dataworkers);
  void EndRun();
  // Waits until `ready` holds for the current assignment of `key` (true) or the assignment moved
  // away or Stop() (false).
  bool AwaitAssignment(const Key& key,
                       const std::function<bool(const v1::TrainerAssignment&)>& ready);
  bool Current(const Key& key) const;
  // The c10d store address rank 0 serves: HOST of --advertise_address, a free port.
  absl::StatusOr<std::string> PickStoreAddress() const;
  // The host part of --advertise_address.
  std::string AdvertiseHost() const;
  absl::Status Upload(const v1::TrainerAssignment& a, const std::string& path, int64_t step,
                      bool final, const std::function<bool()>& cancelled);

  const CoordinatorSessionOptions options_;
  TrainerMetrics* const metrics_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::CheckpointService::Stub> checkpoints_;
  std::thread heartbeat_thread_;

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool reregister_ ABSL_GUARDED_BY(mu_) = false;
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  int64_t incarnation_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t registrations_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(2);
  v1::TrainerAssignment assignment_ ABSL_GUARDED_BY(mu_);
  Key done_ ABSL_GUARDED_BY(mu_);              // the last (job, generation) run to its end
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;  // heartbeat every store_poll
  // Rank 0's store address to report with the heartbeats, for (job, generation) `store_key_`.
  Key store_key_ ABSL_GUARDED_BY(mu_);
  std::string store_address_ ABSL_GUARDED_BY(mu_);
  RunControl* run_ ABSL_GUARDED_BY(mu_) = nullptr;
  Key run_key_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> run_dataworkers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_COORDINATOR_SESSION_H_
