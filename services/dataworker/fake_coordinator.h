// An in-process WorkerService for the dataworker's tests: it records every call, hands out the
// leases it is given, and can refuse calls on demand. Served on 127.0.0.1 port 0.
#ifndef VJEPA_SERVICES_DATAWORKER_FAKE_COORDINATOR_H_
#define VJEPA_SERVICES_DATAWORKER_FAKE_COORDINATOR_H_

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/server.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::dataworker {

class FakeCoordinator final : public v1::WorkerService::Service {
 public:
  FakeCoordinator();
  ~FakeCoordinator() override;
  std::string address() const;

  // Knobs.
  void SetHeartbeatIntervalMs(int64_t ms);
  // The next Heartbeat answers FAILED_PRECONDITION (the worker was declared LOST).
  void FailNextHeartbeat();
  // Every LeaseBatches answers UNIMPLEMENTED (today's coordinator) while set.
  void SetLeasesUnimplemented(bool unimplemented);
  // Leases to hand out (at most max_batches per call), with the job's spec.
  void AddLeases(const std::vector<v1::BatchLease>& leases, const std::string& spec_yaml);

  // What it saw.
  std::vector<v1::RegisterWorkerRequest> registrations() const;
  int heartbeats() const;
  std::vector<v1::LeaseBatchesRequest> lease_calls() const;
  std::vector<v1::ReportProgressRequest> reports() const;
  std::vector<std::string> tokens() const;  // bearer metadata of every call

  grpc::Status RegisterWorker(grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* req,
                              v1::RegisterWorkerResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override;
  grpc::Status LeaseBatches(grpc::ServerContext* ctx, const v1::LeaseBatchesRequest* req,
                            v1::LeaseBatchesResponse* resp) override;
  grpc::Status ReportProgress(grpc::ServerContext* ctx, const v1::ReportProgressRequest* req,
                              v1::ReportProgressResponse* resp) override;

 private:
  void RecordToken(grpc::ServerContext* ctx) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  int64_t heartbeat_interval_ms_ ABSL_GUARDED_BY(mu_) = 50;
  bool fail_next_heartbeat_ ABSL_GUARDED_BY(mu_) = false;
  bool leases_unimplemented_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<v1::BatchLease> leases_ ABSL_GUARDED_BY(mu_);
  std::string spec_yaml_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::RegisterWorkerRequest> registrations_ ABSL_GUARDED_BY(mu_);
  int heartbeats_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<v1::LeaseBatchesRequest> lease_calls_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::ReportProgressRequest> reports_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> tokens_ ABSL_GUARDED_BY(mu_);
  std::string current_id_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_FAKE_COORDINATOR_H_
