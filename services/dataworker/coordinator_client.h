// The dataworker's side of the worker API (proto/vjepa/v1/worker.proto): registration, a
// heartbeat thread, a lease thread (LeaseBatches with max_batches = free capacity, handing back
// failed leases) and ReportProgress for quarantined videos, dataset identities and job
// failures. UNAVAILABLE is retried with backoff; every RPC has a deadline.
//
// Threads: both are owned here (Start / Stop). A coordinator that answers LeaseBatches or
// ReportProgress with UNIMPLEMENTED (no batch ledger yet) is logged once and asked again later.
#ifndef VJEPA_SERVICES_DATAWORKER_COORDINATOR_CLIENT_H_
#define VJEPA_SERVICES_DATAWORKER_COORDINATOR_CLIENT_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/rpc/tls.h"
#include "services/dataworker/data_service.h"
#include "services/dataworker/dataworker_metrics.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::dataworker {

struct CoordinatorClientOptions {
  std::string address;  // HOST:PORT of the coordinator
  std::string token;    // a worker token
  rpc::TlsFiles tls;    // ca: the coordinator's CA; cert/key: for mutual TLS
  std::string name;     // stable worker name (1..128 of [A-Za-z0-9._:-])
  std::string advertise_address;
  int cpus = 0;
  absl::Duration rpc_timeout = absl::Seconds(10);       // per attempt
  absl::Duration register_timeout = absl::Seconds(60);  // Start() gives up after this
  absl::Duration lease_poll = absl::Milliseconds(500);  // between empty lease answers
  absl::Duration unimplemented_poll = absl::Seconds(5);
  absl::Duration max_backoff = absl::Seconds(5);
  // Incarnations: milliseconds since the epoch by default (increasing across restarts).
  std::function<int64_t()> incarnation_clock = [] { return absl::ToUnixMillis(absl::Now()); };
};

class CoordinatorClient final : public ReportSink {
 public:
  CoordinatorClient(CoordinatorClientOptions options, DataService* service,
                    DataworkerMetrics* metrics);
  ~CoordinatorClient() override;  // Stop()

  // Registers (retrying UNAVAILABLE up to register_timeout) and starts both threads.
  absl::Status Start();
  // The lease thread stops asking for leases (it returns after its current call).
  void StopLeasing();
  // Hands `lease_ids` back (LeaseBatches with max_batches 0), plus any not yet returned.
  absl::Status ReturnLeases(std::vector<std::string> lease_ids);
  // Stops and joins both threads. Idempotent.
  void Stop();

  // ReportSink: queued, sent by the lease thread (at most kMaxQueuedReports kept).
  void Report(v1::ReportProgressRequest report) override;

  std::string worker_id() const;
  int64_t incarnation() const;
  static constexpr size_t kMaxQueuedReports = 1000;

 private:
  // Calls `rpc` with a fresh context per attempt, retrying UNAVAILABLE until `budget` has passed
  // or Stop() is called.
  absl::Status Call(const std::string& name, absl::Duration budget,
                    const std::function<grpc::Status(grpc::ClientContext*)>& rpc);
  absl::Status Register();
  void HeartbeatLoop();
  void LeaseLoop();
  void SendReports();
  // Waits up to `d` or until stopping (or `*flag` is set, when given). False when stopping.
  bool Sleep(absl::Duration d, const bool* flag = nullptr);

  const CoordinatorClientOptions options_;
  DataService* const service_;
  DataworkerMetrics* const metrics_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;

  mutable absl::Mutex mu_;
  absl::CondVar cv_;
  std::string worker_id_ ABSL_GUARDED_BY(mu_);
  int64_t incarnation_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration heartbeat_interval_ ABSL_GUARDED_BY(mu_) = absl::Seconds(2);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_leasing_ ABSL_GUARDED_BY(mu_) = false;
  bool reregister_ ABSL_GUARDED_BY(mu_) = false;
  bool lease_unimplemented_logged_ ABSL_GUARDED_BY(mu_) = false;
  bool report_unimplemented_logged_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::ReportProgressRequest> reports_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> to_return_ ABSL_GUARDED_BY(mu_);
  std::thread heartbeat_thread_;  // touched by Start and Stop only
  std::thread lease_thread_;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_COORDINATOR_CLIENT_H_
