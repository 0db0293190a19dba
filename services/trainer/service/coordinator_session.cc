#include "services/trainer/service/coordinator_session.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/rpc/client.h"
#include "common/rpc/worker_client.h"
#include "common/spec/job_spec.h"
#include "common/status/grpc_status.h"
#include "glog/logging.h"
#include "services/trainer/service/checkpoint_transfer.h"
#include "services/trainer/service/probe_run.h"
#include "services/trainer/service/progress_reporter.h"
#include "services/trainer/service/run_util.h"

namespace vjepa::trainer {
namespace {

// Registration errors that retrying cannot fix.
bool Permanent(const absl::Status& s) {
  return absl::IsUnauthenticated(s) || absl::IsPermissionDenied(s) || absl::IsInvalidArgument(s);
}

std::string Describe(const v1::TrainerAssignment& a) {
  if (a.job_id().empty()) return "idle";
  return absl::StrCat("job ", a.job_id(), " generation ", a.generation(), " rank ", a.rank(), "/",
                      a.world_size());
}

}  // namespace

CoordinatorSession::CoordinatorSession(CoordinatorSessionOptions options, TrainerMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics) {}

CoordinatorSession::~CoordinatorSession() {
  Stop();
  if (heartbeat_thread_.joinable()) heartbeat_thread_.join();
}

std::string CoordinatorSession::worker_id() const {
  absl::MutexLock lock(&mu_);
  return worker_id_;
}

void CoordinatorSession::Stop() {
  absl::MutexLock lock(&mu_);
  stop_ = true;
  if (run_ != nullptr) run_->Abort();
}

absl::Status CoordinatorSession::Register() {
  int64_t incarnation;
  {
    absl::MutexLock lock(&mu_);
    incarnation_ = std::max(incarnation_ + 1, options_.incarnation_clock());
    incarnation = incarnation_;
  }
  const rpc::WorkerIdentity self{options_.name, v1::TRAINER, options_.advertise_address,
                                 options_.cpus, options_.device};
  absl::StatusOr<v1::RegisterWorkerResponse> resp =
      rpc::RegisterWorker(*workers_, self, incarnation, options_.token, options_.rpc_timeout);
  if (!resp.ok()) return resp.status();
  absl::MutexLock lock(&mu_);
  worker_id_ = resp->worker().id();
  heartbeat_interval_ = rpc::HeartbeatInterval(resp->heartbeat_interval_ms(), heartbeat_interval_);
  reregister_ = false;
  ++registrations_;
  done_ = Key();
  LOG(INFO) << rpc::RegisteredMessage(options_.address, worker_id_, options_.name, incarnation,
                                      heartbeat_interval_)
            << ": " << Describe(resp->assignment());
  SetAssignmentLocked(resp->assignment());
  return absl::OkStatus();
}

void CoordinatorSession::SetAssignmentLocked(const v1::TrainerAssignment& a) {
  if (KeyOf(a) != KeyOf(assignment_)) LOG(INFO) << "assignment: " << Describe(a);
  assignment_ = a;
  if (run_ == nullptr) return;
  if (KeyOf(a) != run_key_) {
    LOG(INFO) << "the assignment moved to " << Describe(a) << ": stopping the run of job "
              << run_key_.first << " generation " << run_key_.second;
    run_->Abort();
    return;
  }
  for (const std::string& address : a.dataworkers()) {
    if (std::find(run_dataworkers_.begin(), run_dataworkers_.end(), address) ==
        run_dataworkers_.end()) {
      run_dataworkers_.push_back(address);
      run_->AddDataworker(address);
    }
  }
}

bool CoordinatorSession::Current(const Key& key) const {
  absl::MutexLock lock(&mu_);
  return !stop_ && !reregister_ && KeyOf(assignment_) == key;
}

bool CoordinatorSession::AwaitAssignment(
    const Key& key, const std::function<bool(const v1::TrainerAssignment&)>& ready) {
  absl::MutexLock lock(&mu_);
  waiting_ = true;
  auto cond = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stop_ || reregister_ || KeyOf(assignment_) != key || ready(assignment_);
  };
  mu_.Await(absl::Condition(&cond));
  waiting_ = false;
  return !stop_ && !reregister_ && KeyOf(assignment_) == key;
}

void CoordinatorSession::HeartbeatLoop() {
  bool immediate = false;
  while (true) {
    bool reregister;
    {
      absl::MutexLock lock(&mu_);
      const absl::Duration wait =
          immediate ? absl::ZeroDuration()
                    : (waiting_ ? std::min(options_.store_poll, heartbeat_interval_)
                                : heartbeat_interval_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      mu_.AwaitWithTimeout(absl::Condition(&stopping), wait);
      if (stop_) return;
      reregister = reregister_;
    }
    immediate = false;
    if (reregister) {
      if (absl::Status s = Register(); !s.ok()) LOG(WARNING) << "registering again failed: " << s;
      continue;
    }
    v1::HeartbeatRequest req;
    {
      absl::MutexLock lock(&mu_);
      req.set_worker_id(worker_id_);
      if (run_ != nullptr) {
        req.set_status_message(
            absl::StrCat("training job ", run_key_.first, " generation ", run_key_.second));
      }
      if (!store_address_.empty() && store_key_ == KeyOf(assignment_)) {
        req.set_job_id(store_key_.first);
        req.set_generation(store_key_.second);
        req.set_c10d_store_address(store_address_);
      }
    }
    v1::HeartbeatResponse resp;
    auto ctx = rpc::MakeContext(options_.token, options_.rpc_timeout);
    absl::Status s = FromGrpcStatus(workers_->Heartbeat(ctx.get(), req, &resp));
    absl::MutexLock lock(&mu_);
    if (s.ok()) {
      heartbeat_interval_ =
          rpc::HeartbeatInterval(resp.heartbeat_interval_ms(), heartbeat_interval_);
      SetAssignmentLocked(resp.assignment());
    } else if (rpc::MustReregister(s)) {
      LOG(WARNING) << "heartbeat refused (" << s << "): dropping the run, registering again";
      reregister_ = true;
      if (run_ != nullptr) run_->Abort();
      immediate = true;
    } else if (!stop_) {
      LOG(WARNING) << "heartbeat failed: " << s;
    }
  }
}

std::string CoordinatorSession::AdvertiseHost() const {
  std::string host = options_.advertise_address;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);
  } else if (std::count(host.begin(), host.end(), ':') == 1) {
    host = host.substr(0, host.find(':'));
  }
  return host;
}

absl::StatusOr<std::string> CoordinatorSession::PickStoreAddress() const {
  std::string host = AdvertiseHost();
  if (host.empty()) {
    char name[256] = {};
    if (gethostname(name, sizeof(name) - 1) != 0) return absl::InternalError("gethostname failed");
    host = name;
  }
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("c10d store: cannot open a socket");
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return absl::InternalError("c10d store: cannot find a free port");
  }
  const int port = ntohs(addr.sin_port);
  close(fd);
  return absl::StrCat(host, ":", port);
}

absl::Status CoordinatorSession::Upload(const v1::TrainerAssignment& a, const std::string& path,
                                        int64_t step, bool final,
                                        const std::function<bool()>& cancelled) {
  v1::UploadCheckpointRequest::Header header;
  header.set_worker_id(worker_id());
  header.set_job_id(a.job_id());
  header.set_generation(a.generation());
  header.set_step(step);
  header.set_final(final);
  TransferOptions t;
  t.token = options_.token;
  t.retry_budget = options_.upload_budget;
  t.max_backoff = options_.max_backoff;
  t.cancelled = cancelled;
  const absl::Time start = absl::Now();
  absl::StatusOr<v1::UploadCheckpointResponse> r =
      UploadCheckpoint(workers_.get(), header, path, t);
  metrics_->upload_seconds.Observe(absl::ToDoubleSeconds(absl::Now() - start));
  if (!r.ok()) {
    const char* result = absl::IsFailedPrecondition(r.status()) ? "stale" : "error";
    metrics_->checkpoint_uploads.Add({{"result", result}}).Increment();
    return r.status();
  }
  metrics_->checkpoint_uploads.Add({{"result", r->deduplicated() ? "deduplicated" : "ok"}})
      .Increment();
  LOG(INFO) << "uploaded " << path << " as " << r->checkpoint_id()
            << (r->deduplicated() ? " (already committed)" : "") << (final ? " (final)" : "");
  return absl::OkStatus();
}

void CoordinatorSession::RunAssignment(const v1::TrainerAssignment& assigned) {
  const Key key = KeyOf(assigned);
  int64_t epoch;
  std::string worker_id;
  {
    absl::MutexLock lock(&mu_);
    epoch = registrations_;
    worker_id = worker_id_;
  }
  const int rank = assigned.rank();
  LOG(INFO) << "starting " << Describe(assigned);
  metrics_->generation.Set(static_cast<double>(assigned.generation()));
  std::atomic<bool> stale{false};

  ProgressReporterOptions p;
  p.stub = workers_.get();
  p.token = options_.token;
  p.worker_id = worker_id;
  p.job_id = key.first;
  p.generation = key.second;
  p.rank = rank;
  p.rpc_timeout = options_.rpc_timeout;
  p.max_backoff = options_.max_backoff;
  p.on_stale = [this, &stale, key] {
    stale = true;
    absl::MutexLock lock(&mu_);
    if (run_ != nullptr && run_key_ == key) run_->Abort();
  };
  ProgressReporter reporter(p, metrics_);

  auto finish = [&] {
    reporter.Stop();
    absl::MutexLock lock(&mu_);
    if (registrations_ == epoch) done_ = key;
    store_address_.clear();
    store_key_ = Key();
  };
  auto fail = [&](const absl::Status& status) {
    LOG(ERROR) << "job " << key.first << " generation " << key.second << ": " << status;
    if (stale || !Current(key)) return finish();
    const std::string message = absl::StrCat("rank ", rank, ": ", status.message());
    absl::Status s = reporter.ReportFailure(message, absl::Minutes(1));
    if (!s.ok()) LOG(WARNING) << "cannot report the failure: " << s;
    finish();
  };

  TrainingRunOptions o;
  absl::StatusOr<spec::JobSpec> spec = spec::ParseJobSpec(assigned.spec_yaml());
  if (!spec.ok()) return fail(spec.status());
  o.spec = *std::move(spec);
  o.spec_text = assigned.spec_yaml();
  o.data_tls = options_.data_tls;
  o.device = options_.device;
  if (options_.torch_threads > 0) {
    torch::set_num_threads(options_.torch_threads);
  } else if (o.spec.resources.torch_threads > 0) {
    torch::set_num_threads(static_cast<int>(o.spec.resources.torch_threads));
  }

  // The c10d store: rank 0 picks it and reports it, every rank waits for the coordinator to
  // hand it out.
  if (assigned.world_size() > 1) {
    if (rank == 0 && assigned.c10d_store_address().empty()) {
      absl::StatusOr<std::string> store = PickStoreAddress();
      if (!store.ok()) return fail(store.status());
      absl::MutexLock lock(&mu_);
      store_key_ = key;
      store_address_ = *store;
      LOG(INFO) << "serving the c10d store of job " << key.first << " generation " << key.second
                << " at " << *store;
    }
    if (!AwaitAssignment(
            key, [](const v1::TrainerAssignment& a) { return !a.c10d_store_address().empty(); })) {
      return finish();
    }
  }
  if (!AwaitAssignment(key,
                       [](const v1::TrainerAssignment& a) { return a.dataworkers_size() > 0; })) {
    return finish();
  }
  v1::TrainerAssignment a;
  {
    absl::MutexLock lock(&mu_);
    a = assignment_;
  }

  const std::filesystem::path job_dir = std::filesystem::path(options_.work_dir) / a.job_id();
  std::error_code ec;
  std::filesystem::create_directories(job_dir, ec);
  if (ec) return fail(absl::InternalError(absl::StrCat(job_dir.string(), ": ", ec.message())));
  auto cancelled = [this, key, &stale] { return stale || !Current(key); };
  if (o.spec.kind == spec::JobKind::kProbe) {
    absl::Status s = RunProbe(a, o.spec, job_dir.string(), reporter, stale);
    if (!s.ok()) return fail(s);
    return finish();
  }
  if (!a.resume_checkpoint_id().empty()) {
    const std::string path =
        (job_dir / absl::StrCat("resume-step-", a.resume_step(), ".safetensors")).string();
    TransferOptions t;
    t.token = options_.token;
    t.worker_id = worker_id;
    t.retry_budget = options_.upload_budget;
    t.max_backoff = options_.max_backoff;
    t.cancelled = cancelled;
    LOG(INFO) << "pulling checkpoint " << a.resume_checkpoint_id() << " into " << path;
    absl::StatusOr<v1::Checkpoint> pulled =
        PullCheckpoint(checkpoints_.get(), a.job_id(), a.resume_step(), path, t);
    if (!pulled.ok()) {
      return fail(absl::Status(pulled.status().code(),
                               absl::StrCat("resume checkpoint ", a.resume_checkpoint_id(), ": ",
                                            pulled.status().message())));
    }
    o.resume_checkpoint = path;
    o.resume_step = a.resume_step();
  }

  o.job_id = a.job_id();
  o.generation = a.generation();
  o.dataworkers.assign(a.dataworkers().begin(), a.dataworkers().end());
  o.token = options_.token;
  o.rank = rank;
  o.world_size = std::max(1, a.world_size());
  o.c10d_store = a.c10d_store_address();
  o.c10d_timeout = options_.c10d_timeout;
  o.c10d_bind_host = AdvertiseHost();
  if (!o.c10d_bind_host.empty() && o.c10d_bind_host.front() == '[') {
    o.c10d_bind_host = o.c10d_bind_host.substr(1, o.c10d_bind_host.size() - 2);
  }
  o.checkpoint_dir = (job_dir / absl::StrCat("g", a.generation())).string();
  o.steps = a.steps();
  o.log_every = options_.log_every;
  o.reconnect_deadline = options_.data_deadline;
  o.checkpoint_every = a.checkpoint_every();
  o.streams = 0;
  o.batch_log = options_.batch_log;
  o.on_step = [&reporter](const StepReport& step) { reporter.Add(step); };
  if (rank == 0) {
    o.on_checkpoint = [&](const std::string& path, int64_t step, bool final) -> absl::Status {
      // The steps a checkpoint commits are reported first.
      reporter.Flush(options_.upload_budget);
      if (cancelled()) return absl::CancelledError("the assignment moved away");
      absl::Status s = Upload(a, path, step, final, cancelled);
      if (absl::IsFailedPrecondition(s)) stale = true;
      return s;
    };
  }

  TrainingRun run(o, metrics_);
  if (!StartRun(key, &run, o.dataworkers)) return finish();
  absl::StatusOr<TrainingResult> result = run.Run();
  EndRun();
  if (!result.ok()) return fail(result.status());
  if (result->aborted) {
    LOG(INFO) << "run of job " << key.first << " generation " << key.second << " stopped at step "
              << result->end_step;
    return finish();
  }
  if (!reporter.Flush(options_.rpc_timeout * 3)) {
    LOG(WARNING) << "job " << key.first << ": some step reports were not accepted";
  }
  LOG(INFO) << "run of job " << key.first << " generation " << key.second << " done at step "
            << result->end_step;
  finish();
}

bool CoordinatorSession::StartRun(const Key& key, RunControl* run,
                                  const std::vector<std::string>& dataworkers) {
  absl::MutexLock lock(&mu_);
  if (stop_ || reregister_ || KeyOf(assignment_) != key) return false;
  run_ = run;
  run_key_ = key;
  run_dataworkers_ = dataworkers;
  SetAssignmentLocked(assignment_);  // dataworkers added since the run's options were made
  return true;
}

void CoordinatorSession::EndRun() {
  absl::MutexLock lock(&mu_);
  run_ = nullptr;
  run_dataworkers_.clear();
}

absl::Status CoordinatorSession::RunProbe(const v1::TrainerAssignment& a, const spec::JobSpec& spec,
                                          const std::string& job_dir, ProgressReporter& reporter,
                                          std::atomic<bool>& stale) {
  const Key key = KeyOf(a);
  ProbeRunOptions o;
  o.spec = spec;
  o.job_id = a.job_id();
  o.generation = a.generation();
  o.dataworkers.assign(a.dataworkers().begin(), a.dataworkers().end());
  o.token = options_.token;
  o.data_tls = options_.data_tls;
  o.reconnect_deadline = options_.data_deadline;
  o.log_every = options_.log_every;
  o.on_progress = [&reporter](const StepReport& step) { reporter.Add(step); };
  if (a.probe_checkpoint_id().empty()) {
    o.checkpoint = spec.probe.checkpoint;
  } else {
    // A checkpoint id is "<job>/<step>".
    const std::string& id = a.probe_checkpoint_id();
    const size_t slash = id.rfind('/');
    int64_t step = 0;
    if (slash == std::string::npos || slash == 0 ||
        !absl::SimpleAtoi(absl::string_view(id).substr(slash + 1), &step)) {
      return absl::InvalidArgumentError(
          absl::StrCat("probe checkpoint '", id, "': not a checkpoint id <job>/<step>"));
    }
    o.checkpoint = (std::filesystem::path(job_dir) /
                    absl::StrCat("probe-", id.substr(0, slash), "-step-", step, ".safetensors"))
                       .string();
    TransferOptions t;
    t.token = options_.token;
    t.worker_id = worker_id();
    t.retry_budget = options_.upload_budget;
    t.max_backoff = options_.max_backoff;
    t.cancelled = [this, key, &stale] { return stale || !Current(key); };
    LOG(INFO) << "pulling checkpoint " << id << " into " << o.checkpoint;
    absl::StatusOr<v1::Checkpoint> pulled =
        PullCheckpoint(checkpoints_.get(), id.substr(0, slash), step, o.checkpoint, t);
    if (!pulled.ok()) {
      if (stale || !Current(key)) return absl::OkStatus();
      return absl::Status(pulled.status().code(),
                          absl::StrCat("probe checkpoint ", id, ": ", pulled.status().message()));
    }
  }

  ProbeRun run(o, metrics_);
  if (!StartRun(key, &run, o.dataworkers)) return absl::OkStatus();
  absl::StatusOr<ProbeRunResult> result = run.Run();
  EndRun();
  if (stale || !Current(key)) return absl::OkStatus();
  if (!result.ok()) return result.status();
  if (result->aborted) {
    LOG(INFO) << "probe run of job " << key.first << " generation " << key.second
              << " stopped after " << result->batches << " batches";
    return absl::OkStatus();
  }
  // The phases first, then the results (the job then succeeds).
  if (!reporter.Flush(options_.upload_budget)) {
    if (stale || reporter.stale()) return absl::OkStatus();
    LOG(WARNING) << "job " << key.first << ": some progress reports were not accepted";
  }
  absl::Status s = reporter.ReportResults(result->batches, result->results, options_.upload_budget);
  if (absl::IsFailedPrecondition(s)) {
    LOG(WARNING) << "job " << key.first << " generation " << key.second
                 << " is stale: its probe results were not taken (" << s.message() << ")";
    stale = true;
    return absl::OkStatus();
  }
  if (!s.ok()) return Annotate(s, "reporting the probe results");
  LOG(INFO) << "probe run of job " << key.first << " generation " << key.second
            << " done: results reported";
  return absl::OkStatus();
}

absl::Status CoordinatorSession::Run() {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      rpc::CoordinatorChannel(options_.address, options_.token, options_.tls);
  if (!channel.ok()) return channel.status();
  workers_ = v1::WorkerService::NewStub(*channel);
  checkpoints_ = v1::CheckpointService::NewStub(*channel);

  absl::Duration backoff = absl::Milliseconds(100);
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (stop_) return absl::OkStatus();
    }
    absl::Status s = Register();
    if (s.ok()) break;
    if (Permanent(s)) {
      return absl::Status(s.code(), absl::StrCat("cannot register with the coordinator at ",
                                                 options_.address, ": ", s.message()));
    }
    LOG(WARNING) << "cannot register with the coordinator at " << options_.address << ": " << s
                 << "; retrying in " << backoff;
    absl::MutexLock lock(&mu_);
    auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
    mu_.AwaitWithTimeout(absl::Condition(&stopping), backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
  heartbeat_thread_ = std::thread([this] { HeartbeatLoop(); });
  while (true) {
    v1::TrainerAssignment a;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ ||
               (!reregister_ && !assignment_.job_id().empty() && KeyOf(assignment_) != done_);
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) break;
      a = assignment_;
    }
    RunAssignment(a);
  }
  heartbeat_thread_.join();
  return absl::OkStatus();
}

}  // namespace vjepa::trainer
