#include "services/coordinator/coordinator_server.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "services/coordinator/checkpoint_store.h"
#include "services/coordinator/grpc_services.h"
#include "services/coordinator/job_manager.h"
#include "services/coordinator/orchestrator.h"
#include "services/coordinator/store.h"
#include "services/coordinator/worker_registry.h"

namespace vjepa::coordinator {

CoordinatorServer::CoordinatorServer(const CoordinatorConfig& config) : config_(config) {}

absl::StatusOr<std::unique_ptr<CoordinatorServer>> CoordinatorServer::Create(
    const CoordinatorConfig& config) {
  if (config.data_dir.empty()) return absl::InvalidArgumentError("--data_dir: must be set");
  if (config.auth_tokens.empty()) {
    return absl::InvalidArgumentError(
        "--auth_tokens: must name a token file (one TOKEN PRINCIPAL ROLE per line)");
  }
  if (config.max_checkpoint_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_checkpoint_bytes: must be > 0, got ", config.max_checkpoint_bytes));
  }
  if (config.lost_after < 2 * config.heartbeat_interval) {
    return absl::InvalidArgumentError(
        absl::StrCat("--worker_lost_after: must be at least twice --heartbeat_interval (",
                     absl::FormatDuration(config.heartbeat_interval), "), got ",
                     absl::FormatDuration(config.lost_after)));
  }
  if (config.lease_duration < absl::Seconds(1)) {
    return absl::InvalidArgumentError(absl::StrCat("--lease_duration: must be >= 1s, got ",
                                                   absl::FormatDuration(config.lease_duration)));
  }
  if (config.max_restarts < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_restarts: must be >= 0, got ", config.max_restarts));
  }
  if (config.schedule_interval < absl::Milliseconds(10) ||
      config.schedule_interval > absl::Seconds(60)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--schedule_interval: must be in [10ms, 60s], got ",
                     absl::FormatDuration(config.schedule_interval)));
  }
  RETURN_IF_ERROR(rpc::CheckHostPort(config.listen, "--listen"));
  if (!config.metrics_listen.empty()) {
    RETURN_IF_ERROR(rpc::CheckHostPort(config.metrics_listen, "--metrics_listen"));
  }
  std::unique_ptr<CoordinatorServer> s(new CoordinatorServer(config));

  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("--data_dir ", config.data_dir, ": cannot create: ", ec.message()));
  }
  const std::string lock_path = config.data_dir + "/LOCK";
  s->lock_fd_ = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (s->lock_fd_ < 0 || flock(s->lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return absl::FailedPreconditionError(absl::StrCat("--data_dir ", config.data_dir,
                                                      ": in use by another coordinator (",
                                                      lock_path, ": ", std::strerror(errno), ")"));
  }

  ASSIGN_OR_RETURN(rpc::Authenticator auth, rpc::Authenticator::FromFile(config.auth_tokens));
  s->auth_ = std::make_unique<rpc::Authenticator>(std::move(auth));
  s->registry_ = std::make_shared<metrics::Registry>();
  s->auth_->ExportMetrics(*s->registry_, "coordinator");

  ASSIGN_OR_RETURN(s->store_, Store::Open(config.data_dir + "/coordinator.db"));
  s->jobs_ = std::make_unique<JobManager>(s->store_.get(), *s->registry_);
  RETURN_IF_ERROR(s->jobs_->Init());
  WorkerRegistryOptions wopts;
  wopts.heartbeat_interval = config.heartbeat_interval;
  wopts.lost_after = config.lost_after;
  s->workers_ = std::make_unique<WorkerRegistry>(s->store_.get(), *s->registry_, wopts);
  RETURN_IF_ERROR(s->workers_->Init());

  CheckpointStoreOptions copts;
  copts.root = config.data_dir + "/checkpoints";
  copts.max_bytes = config.max_checkpoint_bytes;
  s->checkpoints_ =
      std::make_unique<CheckpointStore>(s->store_.get(), s->jobs_.get(), *s->registry_, copts);
  RETURN_IF_ERROR(s->checkpoints_->Init());

  OrchestratorOptions oopts;
  oopts.grace = config.lost_after;
  oopts.lease_duration = config.lease_duration;
  oopts.max_restarts = config.max_restarts;
  oopts.tick = config.schedule_interval;
  s->orchestrator_ = std::make_unique<Orchestrator>(s->store_.get(), s->jobs_.get(),
                                                    s->workers_.get(), *s->registry_, oopts);
  RETURN_IF_ERROR(s->orchestrator_->Init());
  Orchestrator* orch = s->orchestrator_.get();
  s->checkpoints_->SetOnCheckpointCommitted(
      [orch](StoreTxn& txn, const std::string& job_id, int64_t generation, int64_t step, bool final)
          ABSL_NO_THREAD_SAFETY_ANALYSIS {
            return orch->OnCheckpointCommitted(txn, job_id, generation, step, final);
          },
      orch->commit_mutex());
  s->checkpoints_->SetWorkerAccess([orch](const rpc::Principal& caller,
                                          const std::string& worker_id, const std::string& job_id) {
    return orch->WorkerMayAccess(caller, worker_id, job_id);
  });
  s->workers_->SetListener([orch](const v1::Worker& w) { orch->OnWorkerLeft(w); });

  s->job_service_ =
      std::make_unique<GrpcJobService>(*s->auth_, s->jobs_.get(), s->checkpoints_.get(), orch);
  s->worker_service_ = std::make_unique<GrpcWorkerService>(*s->auth_, s->workers_.get(),
                                                           s->checkpoints_.get(), orch);
  s->checkpoint_service_ =
      std::make_unique<GrpcCheckpointService>(*s->auth_, s->checkpoints_.get());
  rpc::ServerOptions options;
  options.listen_address = config.listen;
  options.tls = config.tls;
  options.service_name = "coordinator";
  options.registry = s->registry_;
  s->server_ = std::make_unique<rpc::RpcServer>(
      options, std::vector<grpc::Service*>{s->job_service_.get(), s->worker_service_.get(),
                                           s->checkpoint_service_.get()});
  return s;
}

CoordinatorServer::~CoordinatorServer() {
  Stop();
  if (lock_fd_ >= 0) close(lock_fd_);
}

absl::Status CoordinatorServer::Start() {
  if (!config_.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(exposer_, metrics::Exposer::Start(config_.metrics_listen, registry_));
  }
  RETURN_IF_ERROR(server_->Start());
  workers_->StartReaper();
  orchestrator_->Start();
  return absl::OkStatus();
}

void CoordinatorServer::Stop() {
  if (jobs_) jobs_->Shutdown();
  if (server_) server_->Stop(absl::Seconds(2));
  if (orchestrator_) orchestrator_->Stop();
  if (workers_) workers_->Stop();
}

int CoordinatorServer::BoundPort() const { return server_ ? server_->BoundPort() : 0; }
int CoordinatorServer::MetricsPort() const { return exposer_ ? exposer_->BoundPort() : 0; }

}  // namespace vjepa::coordinator
