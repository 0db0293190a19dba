// The job API's logic, free of gRPC: submit (idempotent on the client request id), get, list,
// cancel, watch, and the state transitions later parts (scheduler, worker RPCs) drive. Every
// change is committed to the Store before a method returns. RPC semantics:
// proto/vjepa/v1/job.proto.
#ifndef VJEPA_SERVICES_COORDINATOR_JOB_MANAGER_H_
#define VJEPA_SERVICES_COORDINATOR_JOB_MANAGER_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/auth.h"
#include "services/coordinator/store.h"
#include "vjepa/v1/job.pb.h"

namespace vjepa::coordinator {

bool IsTerminal(v1::JobState state);

class JobManager {
 public:
  using Clock = std::function<absl::Time()>;
  // `store` must outlive the manager.
  JobManager(
      Store* store, metrics::Registry& registry, Clock now = [] { return absl::Now(); });

  // Loads the per-state gauges from the store.
  absl::Status Init();

  absl::Status SubmitJob(const rpc::Principal& caller, const v1::SubmitJobRequest& req,
                         v1::SubmitJobResponse* resp);
  absl::Status GetJob(const rpc::Principal& caller, const v1::GetJobRequest& req,
                      v1::GetJobResponse* resp);
  absl::Status ListJobs(const rpc::Principal& caller, const v1::ListJobsRequest& req,
                        v1::ListJobsResponse* resp);
  absl::Status CancelJob(const rpc::Principal& caller, const v1::CancelJobRequest& req,
                         v1::CancelJobResponse* resp);
  // Sends the job's events through `send` (history first, then live) until the job is in a
  // terminal state (OK), `send` returns false or `cancelled()` returns true (CANCELLED), or the
  // manager shuts down (UNAVAILABLE).
  absl::Status WatchJob(const rpc::Principal& caller, const v1::WatchJobRequest& req,
                        const std::function<bool(const v1::JobEvent&)>& send,
                        const std::function<bool()>& cancelled);

  // Moves a job to `to`, recording an event of `type` with `message`; `mutate` (optional) changes
  // other fields in the same write (e.g. the generation). FAILED_PRECONDITION when the lifecycle
  // does not allow it (e.g. out of a terminal state).
  absl::StatusOr<v1::Job> Transition(const std::string& job_id, v1::JobState to,
                                     const std::string& type, const std::string& message,
                                     const std::function<void(v1::Job*)>& mutate = nullptr);
  // Records the job's step with a "progress" event (its state unchanged). FAILED_PRECONDITION
  // for a job in a terminal state.
  absl::StatusOr<v1::Job> RecordProgress(const std::string& job_id, int64_t step,
                                         const std::string& message, int64_t total_steps = -1);

  // Wakes every watcher so that streams end before the server stops.
  void Shutdown();

 private:
  absl::StatusOr<v1::Job> GetVisibleJob(const rpc::Principal& caller, const std::string& id);
  absl::StatusOr<v1::Job> TransitionLocked(v1::Job job, v1::JobState to, const std::string& type,
                                           const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefreshGaugesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NowMs() const { return absl::ToUnixMillis(now_()); }

  Store* const store_;
  const Clock now_;
  absl::Mutex mu_;
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;  // bumped on every event, for watchers
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;

  prometheus::Family<prometheus::Gauge>& jobs_;
  prometheus::Counter& submitted_;
  prometheus::Counter& deduplicated_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Family<prometheus::Counter>& transitions_;
  prometheus::Gauge& watchers_;
  prometheus::Family<prometheus::Counter>& store_errors_;
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_JOB_MANAGER_H_
