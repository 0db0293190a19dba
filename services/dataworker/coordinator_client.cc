#include "services/dataworker/coordinator_client.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/rpc/auth.h"
#include "common/rpc/client.h"
#include "common/rpc/worker_client.h"
#include "common/status/grpc_status.h"
#include "common/status/retry.h"
#include "glog/logging.h"

namespace vjepa::dataworker {

CoordinatorClient::CoordinatorClient(CoordinatorClientOptions options, DataService* service,
                                     DataworkerMetrics* metrics)
    : options_(std::move(options)), service_(service), metrics_(metrics) {}

CoordinatorClient::~CoordinatorClient() { Stop(); }

std::string CoordinatorClient::worker_id() const {
  absl::MutexLock lock(&mu_);
  return worker_id_;
}

int64_t CoordinatorClient::incarnation() const {
  absl::MutexLock lock(&mu_);
  return incarnation_;
}

bool CoordinatorClient::Sleep(absl::Duration d, const bool* flag) {
  absl::MutexLock lock(&mu_);
  const absl::Time until = absl::Now() + d;
  while (!stop_ && !(flag != nullptr && *flag) && absl::Now() < until) {
    cv_.WaitWithDeadline(&mu_, until);
  }
  return !stop_;
}

absl::Status CoordinatorClient::Call(const std::string& name, absl::Duration budget,
                                     const std::function<grpc::Status(grpc::ClientContext*)>& rpc) {
  RetryOptions retry;
  retry.max_backoff = options_.max_backoff;
  retry.sleep = [this](absl::Duration d) { Sleep(d); };
  const absl::Time deadline = absl::Now() + budget;
  absl::Status s = RetryWithDeadline(
      [&]() -> absl::Status {
        {
          absl::MutexLock lock(&mu_);
          if (stop_) return absl::FailedPreconditionError(name + ": the worker is stopping");
        }
        auto ctx = rpc::MakeContext(options_.token,
                                    std::min(options_.rpc_timeout, deadline - absl::Now()));
        return FromGrpcStatus(rpc(ctx.get()));
      },
      name, deadline, retry);
  if (!s.ok()) metrics_->CoordinatorError(name);
  return s;
}

absl::Status CoordinatorClient::Start() {
  if (options_.address.empty()) return absl::InvalidArgumentError("--coordinator: must be set");
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      rpc::CoordinatorChannel(options_.address, options_.token, options_.tls);
  if (!channel.ok()) return channel.status();
  stub_ = v1::WorkerService::NewStub(*channel);
  absl::Status s = Call("RegisterWorker", options_.register_timeout,
                        [&](grpc::ClientContext* ctx) { return ToGrpcStatus(Register()); });
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("cannot register with the coordinator at ",
                                               options_.address, ": ", s.message()));
  }
  service_->SetReportSink(this);
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  lease_thread_ = std::thread([this] { LeaseLoop(); });
  return absl::OkStatus();
}

absl::Status CoordinatorClient::Register() {
  int64_t incarnation;
  {
    absl::MutexLock lock(&mu_);
    incarnation_ = std::max(incarnation_ + 1, options_.incarnation_clock());
    incarnation = incarnation_;
  }
  const rpc::WorkerIdentity self{options_.name, v1::DATAWORKER, options_.advertise_address,
                                 options_.cpus, "cpu"};
  absl::StatusOr<v1::RegisterWorkerResponse> resp =
      rpc::RegisterWorker(*stub_, self, incarnation, options_.token, options_.rpc_timeout);
  if (!resp.ok()) return resp.status();
  absl::MutexLock lock(&mu_);
  worker_id_ = resp->worker().id();
  heartbeat_interval_ = rpc::HeartbeatInterval(resp->heartbeat_interval_ms(), heartbeat_interval_);
  reregister_ = false;
  LOG(INFO) << rpc::RegisteredMessage(options_.address, worker_id_, options_.name, incarnation,
                                      heartbeat_interval_);
  return absl::OkStatus();
}

void CoordinatorClient::HeartbeatLoop() {
  while (true) {
    absl::Duration interval;
    {
      absl::MutexLock lock(&mu_);
      interval = heartbeat_interval_;
    }
    if (!Sleep(interval, &reregister_)) return;
    bool reregister;
    {
      absl::MutexLock lock(&mu_);
      reregister = reregister_;
    }
    if (reregister) {
      absl::Status s = Call("RegisterWorker", interval,
                            [&](grpc::ClientContext*) { return ToGrpcStatus(Register()); });
      if (!s.ok()) LOG(WARNING) << "re-registration failed: " << s;
      continue;
    }
    v1::HeartbeatRequest req;
    req.set_worker_id(worker_id());
    req.set_status_message(service_->StatusLine());
    if (metrics_ != nullptr && metrics_->producer_busy_seconds.Value() > 0) {
      req.set_clips_per_core_second(metrics_->clips_produced.Value() /
                                    metrics_->producer_busy_seconds.Value());
    }
    v1::HeartbeatResponse resp;
    absl::Status s = Call("Heartbeat", interval, [&](grpc::ClientContext* ctx) {
      return stub_->Heartbeat(ctx, req, &resp);
    });
    absl::MutexLock lock(&mu_);
    if (s.ok()) {
      heartbeat_interval_ =
          rpc::HeartbeatInterval(resp.heartbeat_interval_ms(), heartbeat_interval_);
    } else if (rpc::MustReregister(s)) {
      LOG(WARNING) << "heartbeat refused (" << s << "): registering again";
      reregister_ = true;
    } else if (!stop_) {
      LOG(WARNING) << "heartbeat failed: " << s;
    }
  }
}

void CoordinatorClient::Report(v1::ReportProgressRequest report) {
  absl::MutexLock lock(&mu_);
  if (reports_.size() >= kMaxQueuedReports) {
    LOG(WARNING) << "report queue full: dropping a report for job " << reports_.front().job_id();
    reports_.pop_front();
  }
  reports_.push_back(std::move(report));
  cv_.SignalAll();
}

void CoordinatorClient::SendReports() {
  while (true) {
    v1::ReportProgressRequest req;
    {
      absl::MutexLock lock(&mu_);
      if (reports_.empty() || stop_) return;
      req = reports_.front();
      req.set_worker_id(worker_id_);
    }
    v1::ReportProgressResponse resp;
    absl::Status s = Call("ReportProgress", options_.rpc_timeout, [&](grpc::ClientContext* ctx) {
      return stub_->ReportProgress(ctx, req, &resp);
    });
    absl::MutexLock lock(&mu_);
    if (absl::IsUnavailable(s)) return;  // kept for the next round
    reports_.pop_front();
    if (absl::IsUnimplemented(s)) {
      if (!report_unimplemented_logged_) {
        LOG(WARNING) << "the coordinator does not take ReportProgress yet (" << s.message()
                     << "): reports are dropped";
        report_unimplemented_logged_ = true;
      }
    } else if (!s.ok()) {
      LOG(WARNING) << "ReportProgress for job " << req.job_id() << " refused: " << s;
    }
  }
}

void CoordinatorClient::LeaseLoop() {
  int failures = 0;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_ || stop_leasing_) return;
    }
    SendReports();
    std::vector<std::string> returned = service_->TakeReturnedLeases();
    std::string worker;
    {
      absl::MutexLock lock(&mu_);
      returned.insert(returned.begin(), to_return_.begin(), to_return_.end());
      to_return_.clear();
      worker = worker_id_;
    }
    const int capacity = service_->FreeLeaseCapacity();
    if (capacity == 0 && returned.empty()) {
      if (!Sleep(options_.lease_poll, &stop_leasing_)) return;
      continue;
    }
    v1::LeaseBatchesRequest req;
    req.set_worker_id(worker);
    req.set_max_batches(capacity);
    for (const std::string& id : returned) req.add_returned_lease_ids(id);
    v1::LeaseBatchesResponse resp;
    absl::Status s = Call("LeaseBatches", options_.rpc_timeout, [&](grpc::ClientContext* ctx) {
      return stub_->LeaseBatches(ctx, req, &resp);
    });
    absl::Duration wait = options_.lease_poll;
    if (s.ok()) {
      failures = 0;
      metrics_->leases_returned.Increment(static_cast<double>(returned.size()));
      if (resp.leases_size() > 0) {
        service_->AddLeases(resp);
        continue;
      }
    } else {
      absl::MutexLock lock(&mu_);
      to_return_.insert(to_return_.end(), returned.begin(), returned.end());
      if (absl::IsUnimplemented(s)) {
        if (!lease_unimplemented_logged_) {
          LOG(WARNING) << "the coordinator has no batch ledger yet (" << s.message()
                       << "): no leases; asking again every " << options_.unimplemented_poll;
          lease_unimplemented_logged_ = true;
        }
        wait = options_.unimplemented_poll;
      } else {
        if (rpc::MustReregister(s)) {
          reregister_ = true;
          cv_.SignalAll();
        }
        if (!stop_) LOG(WARNING) << "LeaseBatches failed: " << s;
        failures = std::min(failures + 1, 10);
        wait = std::min(options_.max_backoff, options_.lease_poll * (1 << failures));
      }
    }
    if (!Sleep(wait, &stop_leasing_)) return;
  }
}

void CoordinatorClient::StopLeasing() {
  absl::MutexLock lock(&mu_);
  stop_leasing_ = true;
  cv_.SignalAll();
}

absl::Status CoordinatorClient::ReturnLeases(std::vector<std::string> lease_ids) {
  StopLeasing();
  if (lease_thread_.joinable()) lease_thread_.join();
  std::string worker;
  {
    absl::MutexLock lock(&mu_);
    lease_ids.insert(lease_ids.begin(), to_return_.begin(), to_return_.end());
    to_return_.clear();
    worker = worker_id_;
  }
  if (lease_ids.empty() || stub_ == nullptr) return absl::OkStatus();
  v1::LeaseBatchesRequest req;
  req.set_worker_id(worker);
  req.set_max_batches(0);
  for (const std::string& id : lease_ids) req.add_returned_lease_ids(id);
  v1::LeaseBatchesResponse resp;
  absl::Status s = Call("LeaseBatches", options_.rpc_timeout, [&](grpc::ClientContext* ctx) {
    return stub_->LeaseBatches(ctx, req, &resp);
  });
  if (s.ok()) {
    metrics_->leases_returned.Increment(static_cast<double>(lease_ids.size()));
    LOG(INFO) << "handed " << lease_ids.size() << " leases back to the coordinator";
  } else {
    LOG(WARNING) << "could not hand " << lease_ids.size() << " leases back: " << s;
  }
  return s;
}

void CoordinatorClient::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
    stop_leasing_ = true;
    cv_.SignalAll();
  }
  if (lease_thread_.joinable()) lease_thread_.join();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
  if (service_ != nullptr) service_->SetReportSink(nullptr);
}

}  // namespace vjepa::dataworker
