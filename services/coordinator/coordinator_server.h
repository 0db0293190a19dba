// The coordinator process minus its flags: opens the data dir (SQLite store, a lock against a
// second coordinator on it), loads auth tokens, serves the job, worker and checkpoint services
// and the /metrics endpoint. Start / Stop / BoundPort.
#ifndef VJEPA_SERVICES_COORDINATOR_COORDINATOR_SERVER_H_
#define VJEPA_SERVICES_COORDINATOR_COORDINATOR_SERVER_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/auth.h"
#include "common/rpc/server.h"
#include "common/rpc/tls.h"

namespace vjepa::coordinator {

struct CoordinatorConfig {
  std::string listen = "127.0.0.1:50051";
  std::string data_dir;
  std::string auth_tokens;     // token file: TOKEN PRINCIPAL ROLE per line
  std::string metrics_listen;  // empty: no /metrics endpoint
  rpc::TlsFiles tls;
  absl::Duration heartbeat_interval = absl::Seconds(2);
  absl::Duration lost_after = absl::Seconds(10);
  int64_t max_checkpoint_bytes = int64_t{16} << 30;    // largest accepted checkpoint upload
  absl::Duration lease_duration = absl::Seconds(120);  // batch leases to dataworkers
  int max_restarts = 3;                                // lost-trainer restarts before FAILED
  absl::Duration schedule_interval = absl::Milliseconds(200);
};

class Store;
class JobManager;
class WorkerRegistry;
class CheckpointStore;
class Orchestrator;
class GrpcJobService;
class GrpcWorkerService;
class GrpcCheckpointService;

class CoordinatorServer {
 public:
  static absl::StatusOr<std::unique_ptr<CoordinatorServer>> Create(const CoordinatorConfig& config);
  ~CoordinatorServer();

  absl::Status Start();
  void Stop();
  int BoundPort() const;
  int MetricsPort() const;

 private:
  explicit CoordinatorServer(const CoordinatorConfig& config);

  CoordinatorConfig config_;
  int lock_fd_ = -1;
  std::shared_ptr<metrics::Registry> registry_;
  std::unique_ptr<rpc::Authenticator> auth_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<WorkerRegistry> workers_;
  std::unique_ptr<CheckpointStore> checkpoints_;
  std::unique_ptr<Orchestrator> orchestrator_;
  std::unique_ptr<GrpcJobService> job_service_;
  std::unique_ptr<GrpcWorkerService> worker_service_;
  std::unique_ptr<GrpcCheckpointService> checkpoint_service_;
  std::unique_ptr<rpc::RpcServer> server_;
  std::unique_ptr<metrics::Exposer> exposer_;
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_COORDINATOR_SERVER_H_
