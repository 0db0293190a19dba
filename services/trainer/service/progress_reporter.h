// A trainer's step reports to the coordinator (ReportProgress) for one (job, generation, rank):
// the training loop queues each step (Add) and never waits; a background thread sends what is
// queued as one report (the delivered g's since the last accepted report, the last step's loss
// and lr, the window's clips/s, data-wait fraction and mean step seconds), retrying UNAVAILABLE
// with backoff so that no delivered id is lost. Probe runs queue their phases too (a step without
// a batch: global_index < 0) and send their results once, at the end (ReportResults).
// FAILED_PRECONDITION (a stale generation) calls `on_stale` and ends the reporting; other refusals
// are logged and the report dropped.
//
// Threads: one sender thread, owned here (constructor / Stop). Every method is thread-safe.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_PROGRESS_REPORTER_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_PROGRESS_REPORTER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/trainer/service/trainer_metrics.h"
#include "services/trainer/service/training_run.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::trainer {

struct ProgressReporterOptions {
  v1::WorkerService::StubInterface* stub = nullptr;  // outlives the reporter
  std::string token;
  std::string worker_id;
  std::string job_id;
  int64_t generation = 0;
  int rank = 0;
  absl::Duration rpc_timeout = absl::Seconds(10);
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  std::function<void()> on_stale;  // called once, on the sender thread
};

class ProgressReporter {
 public:
  ProgressReporter(ProgressReporterOptions options, TrainerMetrics* metrics);
  ~ProgressReporter();  // Stop()

  // Queues one step.
  void Add(const StepReport& step);
  // Waits until every queued step was accepted (true), or `timeout` passed, the generation went
  // stale or Stop() was called (false).
  bool Flush(absl::Duration timeout);
  // Sends a failure report now, retrying UNAVAILABLE for up to `budget`.
  absl::Status ReportFailure(const std::string& message, absl::Duration budget);
  // Probe jobs: sends the final report (step, phase "eval", the results) now, retrying
  // UNAVAILABLE for up to `budget`; FAILED_PRECONDITION: the generation is stale.
  absl::Status ReportResults(int64_t step, const std::vector<v1::ProbeResult>& results,
                             absl::Duration budget);
  // Ends the sender thread (what is still queued is not sent). Idempotent.
  void Stop();

  bool stale() const;

 private:
  void SendLoop();
  // Sends `req` until it is answered with anything but UNAVAILABLE or DEADLINE_EXCEEDED or
  // `budget` is spent.
  absl::Status SendNow(const v1::ReportProgressRequest& req, absl::Duration budget);
  // A report of this job, generation and rank, with nothing else set.
  v1::ReportProgressRequest BaseRequest() const;
  // The report of everything queued; `*count` the steps it covers.
  v1::ReportProgressRequest MakeReportLocked(size_t* count) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ProgressReporterOptions options_;
  TrainerMetrics* const metrics_;
  mutable absl::Mutex mu_;
  std::vector<StepReport> queued_ ABSL_GUARDED_BY(mu_);
  bool sending_ ABSL_GUARDED_BY(mu_) = false;  // a report of queued_'s front is in flight
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool stale_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_PROGRESS_REPORTER_H_
