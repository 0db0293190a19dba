// A Prometheus registry per process and the `/metrics` HTTP exposer that serves it.
// Metric names follow `vjepa_<service>_<thing>_<unit>`; the catalogue is docs/metrics.md.
#ifndef VJEPA_COMMON_METRICS_METRICS_H_
#define VJEPA_COMMON_METRICS_METRICS_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"

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
// A minimal HTTP/1.x server on one thread (a normal-sized stack, unlike civetweb's, whose ~100 KB
// threads overflow once libopenblas' static TLS is loaded): one connection at a time, the request
// head bounded in size and time, `GET /metrics` answers 200, other paths 404, other methods 405;
// every connection is closed after its answer. The destructor stops and joins the thread.
class Exposer {
 public:
  static absl::StatusOr<std::unique_ptr<Exposer>> Start(const std::string& listen_address,
                                                        std::shared_ptr<Registry> registry);
  ~Exposer();
  Exposer(const Exposer&) = delete;
  Exposer& operator=(const Exposer&) = delete;
  int BoundPort() const { return port_; }

 private:
  Exposer(int listen_fd, int port, std::shared_ptr<Registry> registry);
  void Serve();
  void HandleConnection(int fd);

  const int listen_fd_;
  const int port_;
  const std::shared_ptr<Registry> registry_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

// The text exposition of a registry, as /metrics would serve it (for tests and debugging).
std::string Render(const Registry& registry);

}  // namespace vjepa::metrics

#endif  // VJEPA_COMMON_METRICS_METRICS_H_
