// The dataworker's metrics (catalogue: docs/metrics.md, "Dataworker").
#ifndef VJEPA_SERVICES_DATAWORKER_DATAWORKER_METRICS_H_
#define VJEPA_SERVICES_DATAWORKER_DATAWORKER_METRICS_H_

#include <string>

#include "common/metrics/metrics.h"
#include "services/dataworker/batch_producer.h"

namespace vjepa::dataworker {

class DataworkerMetrics {
 public:
  explicit DataworkerMetrics(metrics::Registry& registry);

  // A batch came out of a producer after `seconds` of work.
  void BatchProduced(const ProducedBatch& batch, double seconds);
  void BadVideo(const std::string& reason);
  // A lease that will not be delivered: `reason` is a lower-case status code name
  // ("deadline_exceeded", ...) or one of "identity", "job", "expired".
  void LeaseFailed(const std::string& reason);
  void LeaseDropped(const std::string& reason);  // "stale", "consumed"
  void CoordinatorError(const std::string& rpc);

  prometheus::Counter& clips_produced;
  prometheus::Counter& batches_produced;
  prometheus::Histogram& batch_seconds;
  prometheus::Histogram& decode_seconds;
  prometheus::Family<prometheus::Counter>& stage_seconds;
  prometheus::Gauge& buffered_batches;
  prometheus::Counter& batches_sent;
  prometheus::Counter& bytes_sent;
  prometheus::Family<prometheus::Counter>& bad_videos;
  prometheus::Counter& leases_received;
  prometheus::Family<prometheus::Counter>& leases_failed;
  prometheus::Counter& leases_returned;
  prometheus::Family<prometheus::Counter>& leases_dropped;
  prometheus::Gauge& active_streams;
  prometheus::Counter& producer_busy_seconds;
  prometheus::Family<prometheus::Counter>& coordinator_errors;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_DATAWORKER_METRICS_H_
