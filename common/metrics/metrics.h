// A Prometheus registry per process and the `/metrics` HTTP exposer that serves it.
// Metric names follow `vjepa_<service>_<thing>_<unit>`; the catalogue is docs/metrics.md.
#ifndef VJEPA_COMMON_METRICS_METRICS_H_
#define VJEPA_COMMON_METRICS_METRICS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

namespace prometheus {
class Exposer;
}

namespace vjepa::metrics {

using Registry = prometheus::Registry;

prometheus::Family<prometheus::Counter>& AddCounter(Registry& r, const std::string& name,
                                                    const std::string& help);
prometheus::Family<prometheus::Gauge>& AddGauge(Registry& r, const std::string& name,
                                                const std::string& help);
prometheus::Family<prometheus::Histogram>& AddHistogram(Registry& r, const std::string& name,
                                                        const std::string& help);

// Exponential bucket bounds for latencies in seconds: 1 ms .. ~65 s.
const prometheus::Histogram::BucketBoundaries& LatencyBuckets();

// Serves `registry` at http://ADDRESS/metrics. Port 0 picks a free port (see BoundPort()).
class Exposer {
 public:
  static absl::StatusOr<std::unique_ptr<Exposer>> Start(const std::string& listen_address,
                                                        std::shared_ptr<Registry> registry);
  ~Exposer();
  int BoundPort() const;

 private:
  explicit Exposer(std::unique_ptr<prometheus::Exposer> exposer);
  std::unique_ptr<prometheus::Exposer> exposer_;
};

// The text exposition of a registry, as /metrics would serve it (for tests and debugging).
std::string Render(const Registry& registry);

}  // namespace vjepa::metrics

#endif  // VJEPA_COMMON_METRICS_METRICS_H_
