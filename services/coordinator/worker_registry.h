// Trainers and dataworkers known to the coordinator: registration by (stable name, incarnation),
// heartbeats, and liveness. Heartbeat times live in memory; registrations and state changes are
// written to the Store. A worker silent for `lost_after` is declared LOST (visible in
// `vjepactl get workers`, counted in vjepa_coordinator_workers_lost_total) and must register again.
// After a coordinator restart every worker that was ALIVE gets one `lost_after` of grace.
#ifndef VJEPA_SERVICES_COORDINATOR_WORKER_REGISTRY_H_
#define VJEPA_SERVICES_COORDINATOR_WORKER_REGISTRY_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/auth.h"
#include "services/coordinator/store.h"
#include "vjepa/v1/worker.pb.h"

namespace vjepa::coordinator {

struct WorkerRegistryOptions {
  absl::Duration heartbeat_interval = absl::Seconds(2);
  absl::Duration lost_after = absl::Seconds(10);  // >= 2 heartbeat intervals
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class WorkerRegistry {
 public:
  WorkerRegistry(Store* store, metrics::Registry& registry, WorkerRegistryOptions options);
  ~WorkerRegistry();

  // Loads the workers of a previous run from the store.
  absl::Status Init();
  // Starts the thread that declares silent workers LOST; Stop() joins it.
  void StartReaper();
  void Stop();

  absl::Status RegisterWorker(const rpc::Principal& caller, const v1::RegisterWorkerRequest& req,
                              v1::RegisterWorkerResponse* resp);
  absl::Status Heartbeat(const rpc::Principal& caller, const v1::HeartbeatRequest& req,
                         v1::HeartbeatResponse* resp);
  absl::Status ListWorkers(const rpc::Principal& caller, const v1::ListWorkersRequest& req,
                           v1::ListWorkersResponse* resp);

  // Declares LOST every ALIVE worker whose last heartbeat is older than `lost_after`; returns
  // how many. Called by the reaper thread, and by tests with a fake clock.
  int CheckDeadlines();

  // Called (outside the registry's lock) for every worker that leaves ALIVE: declared LOST or
  // replaced by a newer incarnation (GONE). Set before serving.
  using Listener = std::function<void(const v1::Worker&)>;
  void SetListener(Listener listener);
  // Every known worker (a copy).
  std::vector<v1::Worker> Workers() const;
  // One worker; nullopt when unknown.
  std::optional<v1::Worker> Get(const std::string& id) const;
  // Records what a worker is assigned to (shown by `vjepactl get workers`, kept across a
  // coordinator restart). Unknown ids are ignored.
  void SetAssignment(const std::string& id, const std::string& job_id, int rank,
                     int64_t generation);
  // Records a dataworker's measured production rate (a Heartbeat field).
  void SetProductionRate(const std::string& id, double clips_per_core_second);
  const WorkerRegistryOptions& options() const { return options_; }

 private:
  absl::Status PersistLocked(const v1::Worker& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefreshGaugesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  const WorkerRegistryOptions options_;
  void Notify(const std::vector<v1::Worker>& left);

  mutable absl::Mutex mu_;
  Listener listener_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Worker> by_id_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, std::string> id_by_name_ ABSL_GUARDED_BY(mu_);  // latest incarnation
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread reaper_;

  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Family<prometheus::Counter>& lost_;
  prometheus::Family<prometheus::Counter>& registrations_;
  prometheus::Counter& heartbeats_;
  prometheus::Family<prometheus::Counter>& refused_;
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_WORKER_REGISTRY_H_
