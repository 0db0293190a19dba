// The trainer service's Prometheus metrics (docs/metrics.md, "Trainer").
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_TRAINER_METRICS_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_TRAINER_METRICS_H_

#include "common/metrics/metrics.h"

namespace vjepa::trainer {

struct TrainerMetrics {
  explicit TrainerMetrics(metrics::Registry& r);

  prometheus::Gauge& loss;
  prometheus::Histogram& step_seconds;
  prometheus::Gauge& clips_per_second;
  prometheus::Counter& data_wait_seconds;
  prometheus::Family<prometheus::Gauge>& grad_norm;  // label model: encoder, predictor
  prometheus::Gauge& encoder_grad_norm;
  prometheus::Gauge& predictor_grad_norm;
  prometheus::Gauge& lr;
  prometheus::Gauge& weight_decay;
  prometheus::Gauge& ema_momentum;
  prometheus::Counter& steps;
  prometheus::Gauge& step;
  prometheus::Gauge& target_feature_std;  // the collapse indicator of the last step
  // Probe jobs.
  prometheus::Counter& probe_batches;                 // batches run through the frozen encoder
  prometheus::Counter& probe_steps;                   // probe updates (every pooling)
  prometheus::Family<prometheus::Gauge>& probe_top1;  // label pooling: the last evaluation
  // Coordinator mode.
  prometheus::Gauge& generation;
  prometheus::Family<prometheus::Counter>& progress_reports;    // label result
  prometheus::Family<prometheus::Counter>& checkpoint_uploads;  // label result
  prometheus::Histogram& upload_seconds;
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_TRAINER_METRICS_H_
