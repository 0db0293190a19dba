#include "services/dataworker/fake_coordinator.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "grpcpp/server_builder.h"

namespace vjepa::dataworker {

FakeCoordinator::FakeCoordinator() {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.RegisterService(this);
  server_ = builder.BuildAndStart();
}

FakeCoordinator::~FakeCoordinator() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::string FakeCoordinator::address() const { return absl::StrCat("127.0.0.1:", port_); }

void FakeCoordinator::SetHeartbeatIntervalMs(int64_t ms) {
  absl::MutexLock lock(&mu_);
  heartbeat_interval_ms_ = ms;
}

void FakeCoordinator::FailNextHeartbeat() {
  absl::MutexLock lock(&mu_);
  fail_next_heartbeat_ = true;
}

void FakeCoordinator::SetLeasesUnimplemented(bool unimplemented) {
  absl::MutexLock lock(&mu_);
  leases_unimplemented_ = unimplemented;
}

void FakeCoordinator::AddLeases(const std::vector<v1::BatchLease>& leases,
                                const std::string& spec_yaml) {
  absl::MutexLock lock(&mu_);
  leases_.insert(leases_.end(), leases.begin(), leases.end());
  spec_yaml_ = spec_yaml;
}

std::vector<v1::RegisterWorkerRequest> FakeCoordinator::registrations() const {
  absl::MutexLock lock(&mu_);
  return registrations_;
}

int FakeCoordinator::heartbeats() const {
  absl::MutexLock lock(&mu_);
  return heartbeats_;
}

std::vector<v1::LeaseBatchesRequest> FakeCoordinator::lease_calls() const {
  absl::MutexLock lock(&mu_);
  return lease_calls_;
}

std::vector<v1::ReportProgressRequest> FakeCoordinator::reports() const {
  absl::MutexLock lock(&mu_);
  return reports_;
}

std::vector<std::string> FakeCoordinator::tokens() const {
  absl::MutexLock lock(&mu_);
  return tokens_;
}

void FakeCoordinator::RecordToken(grpc::ServerContext* ctx) {
  auto it = ctx->client_metadata().find("authorization");
  tokens_.push_back(it == ctx->client_metadata().end()
                        ? std::string()
                        : std::string(it->second.data(), it->second.size()));
}

grpc::Status FakeCoordinator::RegisterWorker(grpc::ServerContext* ctx,
                                             const v1::RegisterWorkerRequest* req,
                                             v1::RegisterWorkerResponse* resp) {
  absl::MutexLock lock(&mu_);
  RecordToken(ctx);
  registrations_.push_back(*req);
  current_id_ = absl::StrCat("w-", registrations_.size());
  resp->mutable_worker()->set_id(current_id_);
  resp->mutable_worker()->set_name(req->name());
  resp->mutable_worker()->set_incarnation(req->incarnation());
  resp->set_heartbeat_interval_ms(heartbeat_interval_ms_);
  resp->set_lost_after_ms(10 * heartbeat_interval_ms_);
  return grpc::Status::OK;
}

grpc::Status FakeCoordinator::Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                                        v1::HeartbeatResponse* resp) {
  absl::MutexLock lock(&mu_);
  RecordToken(ctx);
  if (req->worker_id() != current_id_) {
    return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown worker " + req->worker_id());
  }
  if (fail_next_heartbeat_) {
    fail_next_heartbeat_ = false;
    current_id_.clear();
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "worker was declared LOST");
  }
  ++heartbeats_;
  resp->set_heartbeat_interval_ms(heartbeat_interval_ms_);
  return grpc::Status::OK;
}

grpc::Status FakeCoordinator::LeaseBatches(grpc::ServerContext* ctx,
                                           const v1::LeaseBatchesRequest* req,
                                           v1::LeaseBatchesResponse* resp) {
  absl::MutexLock lock(&mu_);
  RecordToken(ctx);
  lease_calls_.push_back(*req);
  if (leases_unimplemented_) {
    return grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "no batch ledger yet");
  }
  for (int i = 0; i < req->max_batches() && !leases_.empty(); ++i) {
    *resp->add_leases() = leases_.front();
    leases_.pop_front();
  }
  if (resp->leases_size() > 0) resp->set_spec_yaml(spec_yaml_);
  return grpc::Status::OK;
}

grpc::Status FakeCoordinator::ReportProgress(grpc::ServerContext* ctx,
                                             const v1::ReportProgressRequest* req,
                                             v1::ReportProgressResponse* resp) {
  absl::MutexLock lock(&mu_);
  RecordToken(ctx);
  reports_.push_back(*req);
  return grpc::Status::OK;
}

}  // namespace vjepa::dataworker
