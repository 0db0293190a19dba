// Runs pretraining jobs on the registered workers (docs/architecture.md §4, §5;
// docs/pretraining.md): gang-schedules each job's M trainers and shares the dataworkers between
// the running jobs, keeps each job's batch ledger (leases to dataworkers, deliveries reported by
// trainers, commits by checkpoints), hands trainers their assignment (rank, generation, rank 0's
// c10d store, the job's dataworkers, the checkpoint to resume from), restarts a job whose trainer
// was lost (a new generation; stale reports are refused) a bounded number of times, records the
// dataset identity and quarantined videos, and derives the data-plane signals.
//
// State: the ledger and the job's runtime (v1::JobRuntime) are written to the Store before a call
// that changed them answers; heartbeats, per-rank numbers and lease deadlines live in memory.
// After a coordinator restart persisted leases get `grace` before they expire, and assignments
// are rebuilt from the workers' records: a restart alone never restarts a job.
//
// Threads: every method is thread-safe; a scheduling thread (Start / Stop) calls Tick().
// Lock order: CheckpointStore → this (commit_mutex()) → JobManager → Store; WorkerRegistry calls
// in (its listener) without holding its lock.
#ifndef VJEPA_SERVICES_COORDINATOR_ORCHESTRATOR_H_
#define VJEPA_SERVICES_COORDINATOR_ORCHESTRATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/auth.h"
#include "common/spec/job_spec.h"
#include "services/coordinator/job_manager.h"
#include "services/coordinator/ledger.h"
#include "services/coordinator/store.h"
#include "services/coordinator/worker_registry.h"
#include "vjepa/v1/job.pb.h"
#include "vjepa/v1/worker.pb.h"

namespace vjepa::coordinator {

struct OrchestratorOptions {
  absl::Duration tick = absl::Milliseconds(200);  // scheduling passes
  // A lease not produced and streamed by then returns to PENDING (a lost dataworker is caught
  // sooner, by its missed heartbeats).
  absl::Duration lease_duration = absl::Seconds(120);
  // After a coordinator restart: persisted leases expire no sooner than this from the start.
  absl::Duration grace = absl::Seconds(10);
  int max_restarts = 3;  // a job whose trainers are lost more often FAILS
  int window_steps = 4;  // steps leased ahead of the trainers' progress (≤ their reorder buffer)
  absl::Duration progress_event_every = absl::Seconds(5);  // "progress" events in the job log
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class Orchestrator {
 public:
  // Every pointer must outlive this object.
  Orchestrator(Store* store, JobManager* jobs, WorkerRegistry* workers, metrics::Registry& registry,
               OrchestratorOptions options);
  ~Orchestrator();  // Stop()

  // Loads the active jobs' ledgers and runtimes.
  absl::Status Init();
  void Start();
  void Stop();
  // One scheduling pass: picks up new, finished and cancelled jobs, expires leases, places
  // trainers and dataworkers. Called by the thread; tests call it directly.
  void Tick();

  // WorkerRegistry listener: a worker left ALIVE (LOST or replaced).
  void OnWorkerLeft(const v1::Worker& worker);
  // CheckpointStore hook, called with commit_mutex() held inside the transaction that indexes a
  // checkpoint of `step` (updates done): commits every g < step·M.
  absl::Status OnCheckpointCommitted(StoreTxn& txn, const std::string& job_id, int64_t generation,
                                     int64_t step, bool final);
  absl::Mutex* commit_mutex() ABSL_LOCK_RETURNED(mu_) { return &mu_; }
  // CheckpointStore worker access: the worker (registered by `caller`) is or was assigned to
  // the job (trainers pull the checkpoint they resume from).
  bool WorkerMayAccess(const rpc::Principal& caller, const std::string& worker_id,
                       const std::string& job_id);

  // After the registry accepted a RegisterWorker or Heartbeat: records what the heartbeat
  // carries and fills the trainer's assignment.
  void OnHeartbeat(const v1::Worker& worker, const v1::HeartbeatRequest* request,
                   v1::TrainerAssignment* assignment);
  absl::Status LeaseBatches(const rpc::Principal& caller, const v1::LeaseBatchesRequest& req,
                            v1::LeaseBatchesResponse* resp);
  absl::Status ReportProgress(const rpc::Principal& caller, const v1::ReportProgressRequest& req,
                              v1::ReportProgressResponse* resp);
  // Fills job->runtime for GetJob and ListJobs.
  void Decorate(v1::Job* job);

 private:
  struct RankStats {
    int64_t step = 0;
    double loss = 0;
    double lr = 0;
    double clips_per_second = 0;
    double data_wait_fraction = 0;
    int64_t time_ms = 0;
  };
  struct JobRun {
    v1::Job job;  // as last read from the store
    spec::JobSpec spec;
    std::optional<JobLedger> ledger;
    v1::JobRuntime rt;            // trainers, dataworkers, identity, c10d store, restarts
    int64_t gang_generation = 0;  // generation the current gang was formed in; 0: none
    std::map<int, RankStats> ranks;
    int64_t last_event_ms = 0;
    int64_t order = 0;
    int64_t last_checkpoint_ms = 0;  // the newest committed checkpoint; 0: none yet   // submission
                                     // order: position in the store's listing (oldest first)
    bool dirty = false;              // rt changed since it was persisted
    int64_t resume_step = 0;
    std::string resume_checkpoint_id;
    // Probe jobs: the job whose checkpoint is probed ("" for a path) and that checkpoint's id
    // ("" for a path); ready once resolved.
    bool probe = false;
    bool probe_ready = false;
    std::string probe_source_job;
    std::string probe_checkpoint_id;
  };

  int64_t NowMs() const { return absl::ToUnixMillis(options_.now()); }
  // The ledger shape of a job from its spec and what is known of its dataset.
  static LedgerShape ShapeOf(const JobRun& run, int window_steps);
  // Probe jobs: finds the checkpoint to probe. A job id waits while that job is still active
  // (for its latest checkpoint) or until the named step exists; fails the probe when it cannot
  // exist. Returns whether the run may be scheduled.
  bool ResolveProbeCheckpointLocked(const std::string& job_id, JobRun& run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A probe job's trainer reported its results: the job SUCCEEDS.
  absl::Status FinishProbeLocked(const v1::Worker& worker, const v1::ReportProgressRequest& req,
                                 JobRun& run, v1::ReportProgressResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Creates the run of an active job (ledger restored or created). Errors fail the job.
  absl::Status AddJobLocked(const v1::Job& job, bool after_restart)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void DropJobLocked(const std::string& job_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Notes that the worker served the job (checkpoint access), once.
  void RememberAssignmentLocked(const std::string& worker_id, const std::string& job_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores a report's quarantined videos for the dataset; returns how many were new.
  absl::StatusOr<int64_t> RecordQuarantine(const std::string& manifest_sha256,
                                           const v1::ReportProgressRequest& req);
  absl::Status PersistLocked(const std::string& job_id, JobRun& run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A gang member was lost or failed: a new generation, or FAILED after max_restarts.
  void RestartLocked(const std::string& job_id, JobRun& run, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailLocked(const std::string& job_id, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool GangLiveLocked(const JobRun& run) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Fills the data-plane numbers and the ledger counts of rt.
  void RefreshSignalsLocked(const std::string& job_id, JobRun& run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReportFromDataworker(const v1::Worker& worker, const v1::ReportProgressRequest& req,
                                    JobRun& run) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ReportFromTrainer(const v1::Worker& worker, const v1::ReportProgressRequest& req,
                                 JobRun& run, v1::ReportProgressResponse* resp)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  JobManager* const jobs_;
  WorkerRegistry* const workers_;
  const OrchestratorOptions options_;
  const int64_t started_ms_;

  absl::Mutex mu_;
  std::map<std::string, JobRun> runs_ ABSL_GUARDED_BY(mu_);  // active pretraining jobs
  // Jobs each worker was ever assigned to (checkpoint access).
  std::map<std::string, std::vector<std::string>> assigned_jobs_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;

  prometheus::Counter& leases_granted_;
  prometheus::Family<prometheus::Counter>& leases_returned_;
  prometheus::Counter& batches_committed_;
  prometheus::Counter& batches_delivered_;
  prometheus::Counter& restarts_;
  prometheus::Family<prometheus::Counter>& reports_;
  prometheus::Counter& quarantined_;
  prometheus::Counter& identity_mismatches_;
  prometheus::Counter& passes_;
  prometheus::Family<prometheus::Gauge>& data_wait_;
  prometheus::Family<prometheus::Gauge>& cores_needed_;
  prometheus::Family<prometheus::Gauge>& clips_per_second_;
  prometheus::Family<prometheus::Gauge>& ledger_batches_;
  prometheus::Family<prometheus::Gauge>& checkpoint_age_;
  prometheus::Family<prometheus::Gauge>& checkpoint_expected_;
  prometheus::Gauge& dataworkers_desired_;
  prometheus::Gauge& dataworkers_alive_;
  prometheus::Family<prometheus::Gauge>& probe_top1_;
  prometheus::Family<prometheus::Gauge>& target_feature_std_;
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_ORCHESTRATOR_H_
