#include "services/coordinator/grpc_services.h"

#include "common/rpc/authorized.h"

namespace vjepa::coordinator {
namespace {

using rpc::Authorized;
using rpc::Principal;
using rpc::Role;

// Who may call what (docs/architecture.md §7).
#define USERS \
  { Role::kUser, Role::kAdmin }
#define WORKERS \
  { Role::kWorker, Role::kAdmin }
#define ANYONE \
  { Role::kUser, Role::kAdmin, Role::kWorker }

}  // namespace

grpc::Status GrpcJobService::SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                                       v1::SubmitJobResponse* resp) {
  return Authorized(auth_, ctx, USERS,
                    [&](const Principal& p) { return jobs_->SubmitJob(p, *req, resp); });
}

grpc::Status GrpcJobService::GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                                    v1::GetJobResponse* resp) {
  return Authorized(auth_, ctx, USERS, [&](const Principal& p) {
    absl::Status s = jobs_->GetJob(p, *req, resp);
    if (s.ok()) orchestrator_->Decorate(resp->mutable_job());
    return s;
  });
}

grpc::Status GrpcJobService::ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                                      v1::ListJobsResponse* resp) {
  return Authorized(auth_, ctx, USERS, [&](const Principal& p) {
    absl::Status s = jobs_->ListJobs(p, *req, resp);
    if (s.ok()) {
      for (v1::Job& job : *resp->mutable_jobs()) orchestrator_->Decorate(&job);
    }
    return s;
  });
}

grpc::Status GrpcJobService::CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req,
                                       v1::CancelJobResponse* resp) {
  return Authorized(auth_, ctx, USERS,
                    [&](const Principal& p) { return jobs_->CancelJob(p, *req, resp); });
}

grpc::Status GrpcJobService::WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                                      grpc::ServerWriter<v1::JobEvent>* writer) {
  return Authorized(auth_, ctx, USERS, [&](const Principal& p) {
    return jobs_->WatchJob(
        p, *req, [&](const v1::JobEvent& e) { return writer->Write(e); },
        [&] { return ctx->IsCancelled(); });
  });
}

grpc::Status GrpcJobService::DeleteJob(grpc::ServerContext* ctx, const v1::DeleteJobRequest* req,
                                       v1::DeleteJobResponse* resp) {
  return Authorized(auth_, ctx, USERS,
                    [&](const Principal& p) { return checkpoints_->DeleteJob(p, *req, resp); });
}

grpc::Status GrpcWorkerService::RegisterWorker(grpc::ServerContext* ctx,
                                               const v1::RegisterWorkerRequest* req,
                                               v1::RegisterWorkerResponse* resp) {
  return Authorized(auth_, ctx, WORKERS, [&](const Principal& p) {
    absl::Status s = workers_->RegisterWorker(p, *req, resp);
    if (s.ok()) orchestrator_->OnHeartbeat(resp->worker(), nullptr, resp->mutable_assignment());
    return s;
  });
}

grpc::Status GrpcWorkerService::Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                                          v1::HeartbeatResponse* resp) {
  return Authorized(auth_, ctx, WORKERS, [&](const Principal& p) {
    absl::Status s = workers_->Heartbeat(p, *req, resp);
    if (s.ok()) orchestrator_->OnHeartbeat(resp->worker(), req, resp->mutable_assignment());
    return s;
  });
}

grpc::Status GrpcWorkerService::ListWorkers(grpc::ServerContext* ctx,
                                            const v1::ListWorkersRequest* req,
                                            v1::ListWorkersResponse* resp) {
  return Authorized(auth_, ctx, ANYONE,
                    [&](const Principal& p) { return workers_->ListWorkers(p, *req, resp); });
}

grpc::Status GrpcWorkerService::LeaseBatches(grpc::ServerContext* ctx,
                                             const v1::LeaseBatchesRequest* req,
                                             v1::LeaseBatchesResponse* resp) {
  return Authorized(auth_, ctx, WORKERS,
                    [&](const Principal& p) { return orchestrator_->LeaseBatches(p, *req, resp); });
}

grpc::Status GrpcWorkerService::ReportProgress(grpc::ServerContext* ctx,
                                               const v1::ReportProgressRequest* req,
                                               v1::ReportProgressResponse* resp) {
  return Authorized(auth_, ctx, WORKERS, [&](const Principal& p) {
    return orchestrator_->ReportProgress(p, *req, resp);
  });
}

grpc::Status GrpcWorkerService::UploadCheckpoint(
    grpc::ServerContext* ctx, grpc::ServerReader<v1::UploadCheckpointRequest>* reader,
    v1::UploadCheckpointResponse* resp) {
  return Authorized(auth_, ctx, WORKERS, [&](const Principal& p) {
    return checkpoints_->UploadCheckpoint(
        p, [&](v1::UploadCheckpointRequest* msg) { return reader->Read(msg); }, resp);
  });
}

grpc::Status GrpcCheckpointService::ListCheckpoints(grpc::ServerContext* ctx,
                                                    const v1::ListCheckpointsRequest* req,
                                                    v1::ListCheckpointsResponse* resp) {
  return Authorized(auth_, ctx, ANYONE, [&](const Principal& p) {
    return checkpoints_->ListCheckpoints(p, *req, resp);
  });
}

grpc::Status GrpcCheckpointService::PullCheckpoint(
    grpc::ServerContext* ctx, const v1::PullCheckpointRequest* req,
    grpc::ServerWriter<v1::PullCheckpointResponse>* writer) {
  return Authorized(auth_, ctx, ANYONE, [&](const Principal& p) {
    return checkpoints_->PullCheckpoint(
        p, *req, [&](const v1::PullCheckpointResponse& m) { return writer->Write(m); },
        [&] { return ctx->IsCancelled(); });
  });
}

}  // namespace vjepa::coordinator
