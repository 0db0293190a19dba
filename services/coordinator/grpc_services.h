// The coordinator's gRPC adapters: each RPC authenticates and hands over to the logic classes
// in one line. RPC semantics are documented in proto/vjepa/v1/.
#ifndef VJEPA_SERVICES_COORDINATOR_GRPC_SERVICES_H_
#define VJEPA_SERVICES_COORDINATOR_GRPC_SERVICES_H_

#include "common/rpc/auth.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/job_manager.h"
#include "services/coordinator/orchestrator.h"
#include "services/coordinator/worker_registry.h"
#include "vjepa/v1/checkpoint.grpc.pb.h"
#include "vjepa/v1/job.grpc.pb.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::coordinator {

class GrpcJobService final : public v1::JobService::Service {
 public:
  GrpcJobService(const rpc::Authenticator& auth, JobManager* jobs, CheckpointStore* checkpoints,
                 Orchestrator* orchestrator)
      : auth_(auth), jobs_(jobs), checkpoints_(checkpoints), orchestrator_(orchestrator) {}

  grpc::Status SubmitJob(grpc::ServerContext* ctx, const v1::SubmitJobRequest* req,
                         v1::SubmitJobResponse* resp) override;
  grpc::Status GetJob(grpc::ServerContext* ctx, const v1::GetJobRequest* req,
                      v1::GetJobResponse* resp) override;
  grpc::Status ListJobs(grpc::ServerContext* ctx, const v1::ListJobsRequest* req,
                        v1::ListJobsResponse* resp) override;
  grpc::Status CancelJob(grpc::ServerContext* ctx, const v1::CancelJobRequest* req,
                         v1::CancelJobResponse* resp) override;
  grpc::Status WatchJob(grpc::ServerContext* ctx, const v1::WatchJobRequest* req,
                        grpc::ServerWriter<v1::JobEvent>* writer) override;
  grpc::Status DeleteJob(grpc::ServerContext* ctx, const v1::DeleteJobRequest* req,
                         v1::DeleteJobResponse* resp) override;

 private:
  const rpc::Authenticator& auth_;
  JobManager* const jobs_;
  CheckpointStore* const checkpoints_;
  Orchestrator* const orchestrator_;
};

class GrpcWorkerService final : public v1::WorkerService::Service {
 public:
  GrpcWorkerService(const rpc::Authenticator& auth, WorkerRegistry* workers,
                    CheckpointStore* checkpoints, Orchestrator* orchestrator)
      : auth_(auth), workers_(workers), checkpoints_(checkpoints), orchestrator_(orchestrator) {}

  grpc::Status RegisterWorker(grpc::ServerContext* ctx, const v1::RegisterWorkerRequest* req,
                              v1::RegisterWorkerResponse* resp) override;
  grpc::Status Heartbeat(grpc::ServerContext* ctx, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override;
  grpc::Status ListWorkers(grpc::ServerContext* ctx, const v1::ListWorkersRequest* req,
                           v1::ListWorkersResponse* resp) override;
  grpc::Status LeaseBatches(grpc::ServerContext* ctx, const v1::LeaseBatchesRequest* req,
                            v1::LeaseBatchesResponse* resp) override;
  grpc::Status ReportProgress(grpc::ServerContext* ctx, const v1::ReportProgressRequest* req,
                              v1::ReportProgressResponse* resp) override;
  grpc::Status UploadCheckpoint(grpc::ServerContext* ctx,
                                grpc::ServerReader<v1::UploadCheckpointRequest>* reader,
                                v1::UploadCheckpointResponse* resp) override;

 private:
  const rpc::Authenticator& auth_;
  WorkerRegistry* const workers_;
  CheckpointStore* const checkpoints_;
  Orchestrator* const orchestrator_;
};

class GrpcCheckpointService final : public v1::CheckpointService::Service {
 public:
  GrpcCheckpointService(const rpc::Authenticator& auth, CheckpointStore* checkpoints)
      : auth_(auth), checkpoints_(checkpoints) {}

  grpc::Status ListCheckpoints(grpc::ServerContext* ctx, const v1::ListCheckpointsRequest* req,
                               v1::ListCheckpointsResponse* resp) override;
  grpc::Status PullCheckpoint(grpc::ServerContext* ctx, const v1::PullCheckpointRequest* req,
                              grpc::ServerWriter<v1::PullCheckpointResponse>* writer) override;

 private:
  const rpc::Authenticator& auth_;
  CheckpointStore* const checkpoints_;
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_GRPC_SERVICES_H_
