// One trainer's run of a probe job (docs/trainer.md, "Probe jobs"): the encoder part
// (probe.checkpoint_key) of a pretrained checkpoint, frozen, runs once over every clip of the
// job's batches g = 0 .. total_batches-1 (the probe-train split, then the val split); the tokens
// of a sample's segments are concatenated per view and cached in memory. Then one probe per
// pooling (attentive, average, or both with identical settings and seed spec.seed) is trained on
// the train features (docs/vjepa-spec.md §6) and evaluated on the val features, or on the train
// features when the job has no val manifest: top-1 of the softmax averaged over the views, in all
// and per class.
//
// Threads: Run() runs on the caller's thread and owns the data client's readers; Abort() and
// AddDataworker() may be called from any thread. The callback runs on Run()'s thread.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_PROBE_RUN_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_PROBE_RUN_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/rpc/tls.h"
#include "common/spec/job_spec.h"
#include "services/trainer/service/data_client.h"
#include "services/trainer/service/run_control.h"
#include "services/trainer/service/trainer_metrics.h"
#include "services/trainer/service/training_run.h"
#include "vjepa/v1/job.pb.h"

namespace vjepa::trainer {

struct ProbeRunOptions {
  spec::JobSpec spec;  // kind probe
  std::string job_id;
  int64_t generation = 0;
  std::vector<std::string> dataworkers;
  std::string token;
  rpc::TlsFiles data_tls;
  std::string checkpoint;  // the checkpoint file whose encoder is probed
  absl::Duration reconnect_deadline = absl::Seconds(60);
  int log_every = 1;  // feature batches between log lines
  // Called with every consumed batch (phase "features", global_index g, step = batches consumed)
  // and after every probe epoch (phase "probe", global_index -1, loss = the epoch's mean).
  std::function<void(const StepReport&)> on_progress;
};

struct ProbeRunResult {
  int64_t batches = 0;                   // consumed
  bool aborted = false;                  // ended by Abort(): no results
  std::vector<v1::ProbeResult> results;  // one per pooling, attentive first
};

class ProbeRun : public RunControl {
 public:
  ProbeRun(ProbeRunOptions options, TrainerMetrics* metrics);
  ~ProbeRun() override;

  // Errors name the cause: the spec, the checkpoint (unreadable, a model shape other than the
  // spec's), the data, the probe.
  absl::StatusOr<ProbeRunResult> Run();
  void Abort() override;
  void AddDataworker(const std::string& address) override;

 private:
  const ProbeRunOptions options_;
  TrainerMetrics& metrics_;
  std::atomic<bool> abort_{false};
  DataClientSlot data_;  // while Run() reads data
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_PROBE_RUN_H_
