#include "common/rpc/metrics_interceptor.h"

#include <chrono>

#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"

namespace vjepa::rpc {
namespace {

using grpc::experimental::InterceptionHookPoints;

class MetricsInterceptor : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(const char* method, prometheus::Family<prometheus::Counter>& handled,
                     prometheus::Family<prometheus::Histogram>& duration)
      : method_(method ? method : "unknown"),
        handled_(handled),
        duration_(duration),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      const auto code = static_cast<absl::StatusCode>(methods->GetSendStatus().error_code());
      handled_.Add({{"method", method_}, {"code", StatusCodeName(code)}}).Increment();
      const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start_;
      duration_.Add({{"method", method_}}, metrics::LatencyBuckets()).Observe(took.count());
    }
    methods->Proceed();
  }

 private:
  std::string method_;
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& duration_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

MetricsInterceptorFactory::MetricsInterceptorFactory(metrics::Registry& registry,
                                                     const std::string& service)
    : handled_(metrics::AddCounter(registry, absl::StrCat("vjepa_", service, "_rpc_handled_total"),
                                   "RPCs completed, by full method name and status code.")),
      duration_(metrics::AddHistogram(registry,
                                      absl::StrCat("vjepa_", service, "_rpc_duration_seconds"),
                                      "Time from the start of an RPC to its status.")) {}

grpc::experimental::Interceptor* MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(info->method(), handled_, duration_);
}

}  // namespace vjepa::rpc
