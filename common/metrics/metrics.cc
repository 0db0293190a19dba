#include "common/metrics/metrics.h"

#include <exception>
#include <utility>

#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"

namespace vjepa::metrics {

prometheus::Family<prometheus::Counter>& AddCounter(Registry& r, const std::string& name,
                                                    const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r);
}

prometheus::Family<prometheus::Gauge>& AddGauge(Registry& r, const std::string& name,
                                                const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r);
}

prometheus::Family<prometheus::Histogram>& AddHistogram(Registry& r, const std::string& name,
                                                        const std::string& help) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r);
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* buckets = [] {
    auto* b = new prometheus::Histogram::BucketBoundaries;
    for (double v = 0.001; v < 70; v *= 2) b->push_back(v);
    return b;
  }();
  return *buckets;
}

absl::StatusOr<std::unique_ptr<Exposer>> Exposer::Start(const std::string& listen_address,
                                                        std::shared_ptr<Registry> registry) {
  try {
    auto exposer = std::make_unique<prometheus::Exposer>(listen_address, /*num_threads=*/1);
    exposer->RegisterCollectable(registry);
    return std::unique_ptr<Exposer>(new Exposer(std::move(exposer)));
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("metrics: cannot listen on ", listen_address, ": ", e.what()));
  }
}

Exposer::Exposer(std::unique_ptr<prometheus::Exposer> exposer) : exposer_(std::move(exposer)) {}
Exposer::~Exposer() = default;

int Exposer::BoundPort() const {
  auto ports = exposer_->GetListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string Render(const Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace vjepa::metrics
