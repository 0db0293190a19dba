// Per-RPC metrics by method and status code, as a gRPC server interceptor (it observes; it
// cannot reject calls in gRPC 1.51, which is why authentication lives in the adapters).
#ifndef VJEPA_COMMON_RPC_METRICS_INTERCEPTOR_H_
#define VJEPA_COMMON_RPC_METRICS_INTERCEPTOR_H_

#include <string>

#include "common/metrics/metrics.h"
#include "grpcpp/support/server_interceptor.h"

namespace vjepa::rpc {

class MetricsInterceptorFactory : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  MetricsInterceptorFactory(metrics::Registry& registry, const std::string& service);
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  prometheus::Family<prometheus::Counter>& handled_;
  prometheus::Family<prometheus::Histogram>& duration_;
};

}  // namespace vjepa::rpc

#endif  // VJEPA_COMMON_RPC_METRICS_INTERCEPTOR_H_
