// The dataworker process minus its flags: loads the auth tokens, runs the data service (producer
// threads, stream buffers), serves DataService.StreamBatches and /metrics, and, when a
// coordinator is named, registers, heartbeats and leases batches. Start / Stop / BoundPort.
#ifndef VJEPA_SERVICES_DATAWORKER_DATAWORKER_SERVER_H_
#define VJEPA_SERVICES_DATAWORKER_DATAWORKER_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/auth.h"
#include "common/rpc/tls.h"
#include "services/dataworker/batch_producer.h"
#include "services/dataworker/coordinator_client.h"
#include "services/dataworker/data_service.h"
#include "services/dataworker/dataworker_metrics.h"

namespace grpc {
class Server;
}

namespace vjepa::rpc {
class RpcServer;
}

namespace vjepa::dataworker {

class GrpcDataService;

struct DataworkerConfig {
  // HOST:PORT (port 0 picks a free port) or unix:PATH.
  std::string listen = "127.0.0.1:0";
  std::string auth_tokens;     // token file of the callers (TOKEN PRINCIPAL ROLE per line)
  rpc::TlsFiles tls;           // server side
  std::string metrics_listen;  // empty: no /metrics endpoint
  // One clip message is N·P bytes (2.4 MB for 16×224² clips); headers are smaller.
  int max_send_message_bytes = 64 << 20;
  DataServiceOptions service;
  // Coordinator mode when coordinator.address is set. Empty name / advertise address: derived
  // from the bound address (see AdvertiseAddress).
  CoordinatorClientOptions coordinator;
  absl::Duration stop_grace = absl::Seconds(5);
};

// The address trainers dial: `advertise` when set; else the listen address with its bound port,
// with the host name in place of a wildcard host (0.0.0.0, [::], empty).
std::string AdvertiseAddress(const std::string& advertise, const std::string& listen,
                             int bound_port);

class DataworkerServer {
 public:
  static absl::StatusOr<std::unique_ptr<DataworkerServer>> Create(
      DataworkerConfig config, std::shared_ptr<ProducerFactory> factory);
  ~DataworkerServer();  // Stop()

  absl::Status Start();
  // SIGTERM: stops leasing, ends the streams (each finishes the batch it is writing), stops the
  // server within stop_grace, hands undelivered leases back, joins every thread. Idempotent.
  void Stop();

  int BoundPort() const;  // 1 for a unix socket
  int MetricsPort() const;
  DataService& service() { return *service_; }
  metrics::Registry& registry() { return *registry_; }
  CoordinatorClient* coordinator() { return client_.get(); }

 private:
  explicit DataworkerServer(DataworkerConfig config);
  absl::Status StartUnixServer();

  DataworkerConfig config_;
  std::shared_ptr<metrics::Registry> registry_;
  std::unique_ptr<DataworkerMetrics> metrics_;
  std::unique_ptr<rpc::Authenticator> auth_;
  std::unique_ptr<DataService> service_;
  std::unique_ptr<GrpcDataService> grpc_service_;
  std::unique_ptr<rpc::RpcServer> server_;     // HOST:PORT
  std::unique_ptr<grpc::Server> unix_server_;  // unix:PATH
  std::unique_ptr<CoordinatorClient> client_;
  std::unique_ptr<metrics::Exposer> exposer_;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_DATAWORKER_SERVER_H_
