// `vjepactl health`: is a service up? The gRPC form calls the standard health service
// (grpc.health.v1.Health/Check, which our servers enable and serve without a token); the HTTP form
// fetches GET /metrics (the trainer serves no gRPC). Both print SERVING or NOT_SERVING and return
// kExitOk only when serving, so that container health checks and probes can run them.
#ifndef VJEPA_CLI_VJEPACTL_HEALTH_H_
#define VJEPA_CLI_VJEPACTL_HEALTH_H_

#include <iosfwd>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"

namespace vjepa::vjepactl {

struct HealthOptions {
  std::string address;                        // HOST:PORT, named in errors
  std::string service;                        // gRPC: the service to ask about; "" the server
  absl::Duration timeout = absl::Seconds(3);  // bound for connecting and the answer
};

// grpc.health.v1.HealthCheckRequest{service} and HealthCheckResponse.status as wire bytes (the
// health protos are not compiled here; both messages have a single field).
std::string EncodeHealthCheckRequest(const std::string& service);
// The ServingStatus number: 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN.
absl::StatusOr<int> DecodeHealthCheckResponse(absl::string_view bytes);

// One Check call on `channel` within options.timeout. Prints the serving status to `out`; an
// error (unreachable, unknown service) goes to `err` as "vjepactl: <CODE>: <message>".
int GrpcHealth(const HealthOptions& options, const std::shared_ptr<grpc::Channel>& channel,
               std::ostream& out, std::ostream& err);

// GET /metrics over a plain TCP socket within options.timeout; SERVING on HTTP 200.
int HttpHealth(const HealthOptions& options, std::ostream& out, std::ostream& err);

}  // namespace vjepa::vjepactl

#endif  // VJEPA_CLI_VJEPACTL_HEALTH_H_
