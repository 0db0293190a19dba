#include "services/trainer/service/trainer_metrics.h"

#include <string>

namespace vjepa::trainer {
namespace {

prometheus::Gauge& Gauge(metrics::Registry& r, const std::string& name, const std::string& help) {
  return metrics::AddGauge(r, name, help).Add({});
}

}  // namespace

TrainerMetrics::TrainerMetrics(metrics::Registry& r)
    : loss(Gauge(r, "vjepa_trainer_loss", "Loss of the last step")),
      step_seconds(metrics::AddHistogram(r, "vjepa_trainer_step_seconds",
                                         "Wall time of one step, data wait included")
                       .Add({}, metrics::LatencyBuckets())),
      clips_per_second(Gauge(r, "vjepa_trainer_clips_per_second",
                             "Clips trained on per second, over the last progress interval")),
      data_wait_seconds(metrics::AddCounter(r, "vjepa_trainer_data_wait_seconds_total",
                                            "Time spent waiting for the next batch")
                            .Add({})),
      grad_norm(metrics::AddGauge(r, "vjepa_trainer_grad_norm",
                                  "Gradient norm of the last step before clipping, by model (0 "
                                  "before clipping starts)")),
      encoder_grad_norm(grad_norm.Add({{"model", "encoder"}})),
      predictor_grad_norm(grad_norm.Add({{"model", "predictor"}})),
      lr(Gauge(r, "vjepa_trainer_lr", "Learning rate of the last step")),
      weight_decay(Gauge(r, "vjepa_trainer_weight_decay", "Weight decay of the last step")),
      ema_momentum(
          Gauge(r, "vjepa_trainer_ema_momentum", "Target-encoder EMA momentum of the last step")),
      steps(metrics::AddCounter(r, "vjepa_trainer_steps_total", "Steps done by this process")
                .Add({})),
      step(Gauge(r, "vjepa_trainer_step", "Optimizer updates done (the data position)")),
      target_feature_std(Gauge(r, "vjepa_trainer_target_feature_std",
                               "Collapse indicator of the last step: per-channel standard "
                               "deviation of the target features, averaged over channels")),
      probe_batches(metrics::AddCounter(r, "vjepa_trainer_probe_batches_total",
                                        "Probe jobs: batches run through the frozen encoder")
                        .Add({})),
      probe_steps(metrics::AddCounter(r, "vjepa_trainer_probe_steps_total",
                                      "Probe jobs: probe updates, every pooling")
                      .Add({})),
      probe_top1(metrics::AddGauge(r, "vjepa_trainer_probe_top1",
                                   "Probe jobs: top-1 accuracy (fraction) of the last evaluation, "
                                   "by pooling")),
      generation(Gauge(r, "vjepa_trainer_generation",
                       "Job generation of the current assignment (coordinator mode)")),
      progress_reports(metrics::AddCounter(r, "vjepa_trainer_progress_reports_total",
                                           "ReportProgress calls by result: ok, unavailable, "
                                           "stale, error")),
      checkpoint_uploads(metrics::AddCounter(r, "vjepa_trainer_checkpoint_uploads_total",
                                             "Checkpoint uploads by result: ok, deduplicated, "
                                             "stale, error")),
      upload_seconds(metrics::AddHistogram(r, "vjepa_trainer_upload_seconds",
                                           "Wall time of one checkpoint upload, retries included")
                         .Add({}, metrics::LatencyBuckets())) {
  // Every labelled series exists from the start (at 0), so that dashboards and alerts see it.
  for (const char* result : {"ok", "unavailable", "stale", "error"}) {
    progress_reports.Add({{"result", result}});
  }
  for (const char* result : {"ok", "deduplicated", "stale", "error"}) {
    checkpoint_uploads.Add({{"result", result}});
  }
}

}  // namespace vjepa::trainer
