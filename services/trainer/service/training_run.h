// One trainer process's training run of one (job, generation). Standalone mode: the job spec, the
// dataworkers to read from and this rank's place in the c10d group come from flags. Coordinator
// mode: from the assignment (CoordinatorSession), with a checkpoint to resume from, callbacks
// that report each step and upload each checkpoint. Steps run from the data position (0, the
// newest checkpoint's step on --resume, or the resume checkpoint's) to `steps`; rank 0 writes a
// checkpoint every `checkpoint_every` (default spec.checkpoint.every_steps) steps and at the end;
// with spec.checkpoint.initial a run that starts at step 0 first writes the initial weights as
// the step-0 checkpoint.
//
// Threads: Run() runs on the caller's thread and owns the data client's readers; RequestStop(),
// Abort() and AddDataworker() may be called from any thread (e.g. a signal thread). The
// callbacks run on Run()'s thread.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_TRAINING_RUN_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_TRAINING_RUN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/tls.h"
#include "common/spec/job_spec.h"
#include "services/trainer/service/data_client.h"
#include "services/trainer/service/run_control.h"
#include "services/trainer/service/trainer_metrics.h"

namespace vjepa::trainer {

// What one step did, for the step callback.
struct StepReport {
  int64_t step = 0;          // updates done after it (1-based)
  int64_t global_index = 0;  // g of the batch it consumed
  double loss = 0;
  double lr = 0;
  double clips_per_second = 0;  // this step's clips over its wall time
  double data_wait_seconds = 0;
  double step_seconds = 0;
  double target_feature_std = 0;  // the collapse indicator (jepa::StepStats)
  // Probe runs: what the run is doing ("features", "probe"); global_index < 0: no batch consumed.
  std::string phase;
};

struct TrainingRunOptions {
  spec::JobSpec spec;
  std::string spec_text;  // as given, stored in checkpoints
  std::string job_id = "standalone";
  std::vector<std::string> dataworkers;
  std::string token;
  rpc::TlsFiles data_tls;  // to the dataworkers (ca: their CA; cert/key: mutual TLS)
  int rank = 0;
  int world_size = 1;
  std::string c10d_store;  // HOST:PORT; needed when world_size > 1
  // This trainer's device: "cpu", "cuda" or "cuda:N". A job whose resources.device is cuda
  // trains there (and all-reduces over NCCL where the build has it); a cpu job on the CPU.
  std::string device = "cpu";
  // Fetch and stage each batch one step ahead also on the CPU (always on a GPU).
  bool stage_ahead = false;
  absl::Duration c10d_timeout = absl::Seconds(60);
  std::string c10d_bind_host;  // the address Gloo binds and advertises; empty: the host name
  std::string checkpoint_dir;  // empty: no checkpoints
  bool resume = false;
  int64_t steps = 0;  // 0: spec.optim.steps
  int log_every = 1;
  absl::Duration reconnect_deadline = absl::Seconds(60);

  // Coordinator mode.
  int64_t generation = 0;
  // Restore this checkpoint file (instead of --resume's newest one); its step must equal
  // `resume_step`.
  std::string resume_checkpoint;
  int64_t resume_step = 0;
  int64_t checkpoint_every = -1;  // steps between checkpoints; -1: spec.checkpoint.every_steps
  int streams = 1;                // data client slots: 1 fails over (standalone), 0 one each
  // Append one JSON line per consumed batch to this file; empty: none.
  std::string batch_log;
  // Called after every step.
  std::function<void(const StepReport&)> on_step;
  // Rank 0: called with every checkpoint written (path, step, final = the run's last step); the
  // step loop waits for it. An error ends the run with it.
  std::function<absl::Status(const std::string& path, int64_t step, bool final)> on_checkpoint;
};

struct TrainingResult {
  int64_t start_step = 0;  // the data position the run started from
  int64_t end_step = 0;    // updates done when it ended
  bool stopped = false;    // ended early by RequestStop() or Abort()
  bool aborted = false;    // ended by Abort(): no final checkpoint
  std::string last_checkpoint;
};

// "<dir>/step-<S>.safetensors".
std::string CheckpointPath(const std::string& dir, int64_t step);
// The newest step-<S>.safetensors in `dir` (by S); NOT_FOUND when there is none.
absl::StatusOr<std::string> NewestCheckpoint(const std::string& dir);

class TrainingRun : public RunControl {
 public:
  explicit TrainingRun(TrainingRunOptions options, std::shared_ptr<metrics::Registry> registry);
  // Records into `metrics` (which must outlive the run), shared by the runs of one process.
  TrainingRun(TrainingRunOptions options, TrainerMetrics* metrics);
  ~TrainingRun() override;

  // Builds the model (restoring the checkpoint on resume), joins the c10d group and trains.
  // Errors name the cause: the spec, the checkpoint, the group, the data, the step.
  absl::StatusOr<TrainingResult> Run();
  // Ends the run after the current step (a wait for data is cancelled). Idempotent.
  void RequestStop();
  // Ends the run like RequestStop() but without a final checkpoint (the run was taken away).
  void Abort() override;
  // Reads the batches of this dataworker too (DataClient::AddAddress).
  void AddDataworker(const std::string& address) override;

 private:
  const TrainingRunOptions options_;
  std::shared_ptr<metrics::Registry> registry_;
  std::unique_ptr<TrainerMetrics> owned_metrics_;
  TrainerMetrics& metrics_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> abort_{false};
  DataClientSlot data_;  // while Run() reads data
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_TRAINING_RUN_H_
