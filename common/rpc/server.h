// Owns a grpc::Server: Start() binds (port 0 picks a free port, see BoundPort()), Stop() shuts
// down with a deadline so that stream handlers see cancellation. Every server also serves the
// standard gRPC health service (grpc.health.v1.Health, no token needed) and counts every RPC in
// vjepa_<service>_rpc_handled_total{method,code} and vjepa_<service>_rpc_duration_seconds{method}.
#ifndef VJEPA_COMMON_RPC_SERVER_H_
#define VJEPA_COMMON_RPC_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/tls.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace vjepa::rpc {

struct ServerOptions {
  std::string listen_address = "127.0.0.1:0";
  TlsFiles tls;
  std::string service_name;                     // metric prefix: vjepa_<service_name>_rpc_...
  std::shared_ptr<metrics::Registry> registry;  // where RPC metrics go; may be null
  int max_receive_message_bytes = 8 << 20;
  int max_send_message_bytes = 8 << 20;
};

class RpcServer {
 public:
  // The services must outlive the server.
  RpcServer(ServerOptions options, std::vector<grpc::Service*> services);
  ~RpcServer();

  absl::Status Start();
  // Stops accepting calls and cancels those still running after `grace`. Idempotent.
  void Stop(absl::Duration grace = absl::Seconds(5));
  // Blocks until Stop() is called (from another thread or a signal handler thread).
  void Wait();
  int BoundPort() const { return bound_port_; }

 private:
  ServerOptions options_;
  std::vector<grpc::Service*> services_;
  std::unique_ptr<grpc::Server> server_;
  int bound_port_ = 0;
};

// "host:port" → the port number; INVALID_ARGUMENT naming `flag` otherwise.
absl::Status CheckHostPort(const std::string& address, const std::string& flag);

// Writes "<port>\n" to `path` through a temporary file and a rename, so that a reader polling
// for the file (--port_file, --metrics_port_file) never sees it half written.
bool WritePortFile(const std::string& path, int port);

}  // namespace vjepa::rpc

#endif  // VJEPA_COMMON_RPC_SERVER_H_
