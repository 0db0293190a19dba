// One trainer process's training run in standalone mode (no coordinator): the job spec, the
// dataworkers to read from and this rank's place in the c10d group come from flags. Steps run
// from the data position (0, or the newest checkpoint's step on --resume) to `steps`; rank 0
// writes a checkpoint every spec.checkpoint.every_steps steps and at the end.
//
// Threads: Run() runs on the caller's thread and owns the data client's readers; RequestStop()
// may be called from any thread (e.g. a signal thread): the run ends after the current step.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_TRAINING_RUN_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_TRAINING_RUN_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/spec/job_spec.h"
#include "services/trainer/service/data_client.h"
#include "services/trainer/service/trainer_metrics.h"

namespace vjepa::trainer {

struct TrainingRunOptions {
  spec::JobSpec spec;
  std::string spec_text;  // as given, stored in checkpoints
  std::string job_id = "standalone";
  std::vector<std::string> dataworkers;
  std::string token;
  int rank = 0;
  int world_size = 1;
  std::string c10d_store;  // HOST:PORT; needed when world_size > 1
  absl::Duration c10d_timeout = absl::Seconds(60);
  std::string checkpoint_dir;  // empty: no checkpoints
  bool resume = false;
  int64_t steps = 0;  // 0: spec.optim.steps
  int log_every = 1;
  absl::Duration reconnect_deadline = absl::Seconds(60);
};

struct TrainingResult {
  int64_t start_step = 0;  // the data position the run started from
  int64_t end_step = 0;    // updates done when it ended
  bool stopped = false;    // ended early by RequestStop()
  std::string last_checkpoint;
};

// "<dir>/step-<S>.safetensors".
std::string CheckpointPath(const std::string& dir, int64_t step);
// The newest step-<S>.safetensors in `dir` (by S); NOT_FOUND when there is none.
absl::StatusOr<std::string> NewestCheckpoint(const std::string& dir);

class TrainingRun {
 public:
  explicit TrainingRun(TrainingRunOptions options, std::shared_ptr<metrics::Registry> registry);
  ~TrainingRun();

  // Builds the model (restoring the checkpoint on resume), joins the c10d group and trains.
  // Errors name the cause: the spec, the checkpoint, the group, the data, the step.
  absl::StatusOr<TrainingResult> Run();
  // Ends the run after the current step (a wait for data is cancelled). Idempotent.
  void RequestStop();

 private:
  const TrainingRunOptions options_;
  std::shared_ptr<metrics::Registry> registry_;
  TrainerMetrics metrics_;
  std::atomic<bool> stop_{false};
  absl::Mutex mu_;
  DataClient* client_ ABSL_GUARDED_BY(mu_) = nullptr;  // while Run() reads data
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_TRAINING_RUN_H_
