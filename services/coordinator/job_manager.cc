#include "services/coordinator/job_manager.h"

#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/spec/job_spec.h"
#include "common/status/status_macros.h"
#include "services/coordinator/ids.h"

namespace vjepa::coordinator {
namespace {

constexpr size_t kMaxRequestIdBytes = 128;
constexpr int kMaxPageSize = 1000;

const v1::JobState kAllStates[] = {v1::PENDING,   v1::SCHEDULED, v1::RUNNING,  v1::RESTARTING,
                                   v1::SUCCEEDED, v1::FAILED,    v1::CANCELLED};

bool Allowed(v1::JobState from, v1::JobState to) {
  if (IsTerminal(from)) return false;
  switch (to) {
    case v1::SCHEDULED:
      return from == v1::PENDING || from == v1::RESTARTING;
    case v1::RUNNING:
      return from == v1::SCHEDULED || from == v1::RESTARTING;
    case v1::RESTARTING:
      return from == v1::SCHEDULED || from == v1::RUNNING;
    case v1::PENDING:
      return from == v1::SCHEDULED;
    case v1::SUCCEEDED:
      return from == v1::RUNNING;
    case v1::FAILED:
    case v1::CANCELLED:
      return true;
    default:
      return false;
  }
}

}  // namespace

bool IsTerminal(v1::JobState state) {
  return state == v1::SUCCEEDED || state == v1::FAILED || state == v1::CANCELLED;
}

JobManager::JobManager(Store* store, metrics::Registry& registry, Clock now)
    : store_(store),
      now_(std::move(now)),
      jobs_(metrics::AddGauge(registry, "vjepa_coordinator_jobs", "Jobs by state.")),
      submitted_(metrics::AddCounter(registry, "vjepa_coordinator_jobs_submitted_total",
                                     "Jobs created by SubmitJob.")
                     .Add({})),
      deduplicated_(metrics::AddCounter(registry, "vjepa_coordinator_submits_deduplicated_total",
                                        "SubmitJob calls answered with an existing job because "
                                        "their client request id was seen before.")
                        .Add({})),
      rejected_(metrics::AddCounter(registry, "vjepa_coordinator_submits_rejected_total",
                                    "SubmitJob calls refused, by status code.")),
      transitions_(metrics::AddCounter(registry, "vjepa_coordinator_job_transitions_total",
                                       "Job state changes, by the state entered.")),
      watchers_(metrics::AddGauge(registry, "vjepa_coordinator_watch_streams",
                                  "WatchJob streams open now.")
                    .Add({})),
      store_errors_(metrics::AddCounter(registry, "vjepa_coordinator_store_errors_total",
                                        "Failed store operations, by operation.")) {
  // Every labelled series exists from the start (at 0), so that dashboards and alerts see it.
  for (v1::JobState state : kAllStates) transitions_.Add({{"state", v1::JobState_Name(state)}});
  for (const char* op :
       {"insert_job", "update_job", "get_job", "list_jobs", "find_request", "count_jobs"}) {
    store_errors_.Add({{"op", op}});
  }
  for (absl::StatusCode code :
       {absl::StatusCode::kInvalidArgument, absl::StatusCode::kResourceExhausted,
        absl::StatusCode::kUnavailable}) {
    rejected_.Add({{"code", std::string(absl::StatusCodeToString(code))}});
  }
}

absl::Status JobManager::Init() {
  absl::MutexLock lock(&mu_);
  RefreshGaugesLocked();
  return absl::OkStatus();
}

void JobManager::RefreshGaugesLocked() {
  auto counts = store_->CountJobsByState();
  if (!counts.ok()) {
    store_errors_.Add({{"op", "count_jobs"}}).Increment();
    return;
  }
  for (v1::JobState s : kAllStates) jobs_.Add({{"state", v1::JobState_Name(s)}}).Set(0);
  for (const auto& [state, n] : *counts) {
    jobs_.Add({{"state", v1::JobState_Name(state)}}).Set(static_cast<double>(n));
  }
}

absl::Status JobManager::SubmitJob(const rpc::Principal& caller, const v1::SubmitJobRequest& req,
                                   v1::SubmitJobResponse* resp) {
  auto reject = [&](absl::Status s) {
    rejected_.Add({{"code", std::string(absl::StatusCodeToString(s.code()))}}).Increment();
    return s;
  };
  if (req.client_request_id().size() > kMaxRequestIdBytes) {
    return reject(absl::InvalidArgumentError(absl::StrCat("client_request_id: must be at most ",
                                                          kMaxRequestIdBytes, " bytes, got ",
                                                          req.client_request_id().size())));
  }
  absl::MutexLock lock(&mu_);
  if (!req.client_request_id().empty()) {
    auto existing = store_->FindJobByRequestId(caller.name, req.client_request_id());
    if (!existing.ok()) {
      store_errors_.Add({{"op", "find_request"}}).Increment();
      return existing.status();
    }
    if (existing->has_value()) {
      deduplicated_.Increment();
      *resp->mutable_job() = **existing;
      resp->set_deduplicated(true);
      return absl::OkStatus();
    }
  }
  auto spec = spec::ParseJobSpec(req.spec_yaml());
  if (!spec.ok()) return reject(spec.status());

  v1::Job job;
  job.set_name(spec->name);
  job.set_owner(caller.name);
  job.set_kind(std::string(spec::ToString(spec->kind)));
  job.set_state(v1::PENDING);
  job.set_spec_yaml(spec::ToYaml(*spec));
  job.set_create_time_ms(NowMs());
  job.set_update_time_ms(job.create_time_ms());
  job.set_client_request_id(req.client_request_id());
  // A probe job's steps are its feature batches, known once a dataworker read its manifests.
  job.set_total_steps(spec->kind == spec::JobKind::kProbe ? 0 : spec->optim.steps);
  job.set_trainers(spec->resources.trainers);
  job.set_dataworkers(spec->resources.dataworkers);
  job.set_message("waiting for trainers and dataworkers");

  v1::JobEvent event;
  event.set_seq(1);
  event.set_time_ms(job.create_time_ms());
  event.set_type("submitted");
  event.set_state(v1::PENDING);
  event.set_message(absl::StrCat("job submitted by ", caller.name));
  absl::Status s;
  for (int attempt = 0; attempt < 3; ++attempt) {  // a fresh id on the (unlikely) collision
    job.set_id(NewId("j-"));
    s = store_->InsertJob(job, event);
    if (s.ok()) break;
  }
  if (!s.ok()) {
    store_errors_.Add({{"op", "insert_job"}}).Increment();
    return absl::UnavailableError(absl::StrCat("could not store the job: ", s.message()));
  }
  submitted_.Increment();
  transitions_.Add({{"state", "PENDING"}}).Increment();
  ++version_;
  RefreshGaugesLocked();
  *resp->mutable_job() = std::move(job);
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobManager::GetVisibleJob(const rpc::Principal& caller,
                                                  const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("id: must not be empty");
  auto job = store_->GetJob(id);
  if (!job.ok()) {
    store_errors_.Add({{"op", "get_job"}}).Increment();
    return job.status();
  }
  // Another user's job answers exactly like a missing one.
  if (!job->has_value() || (!caller.is_admin() && (*job)->owner() != caller.name)) {
    return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  }
  return **job;
}

absl::Status JobManager::GetJob(const rpc::Principal& caller, const v1::GetJobRequest& req,
                                v1::GetJobResponse* resp) {
  ASSIGN_OR_RETURN(*resp->mutable_job(), GetVisibleJob(caller, req.id()));
  return absl::OkStatus();
}

absl::Status JobManager::ListJobs(const rpc::Principal& caller, const v1::ListJobsRequest& req,
                                  v1::ListJobsResponse* resp) {
  JobFilter filter;
  for (int s : req.states()) {
    if (!v1::JobState_IsValid(s) || s == v1::JOB_STATE_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat("states: unknown job state ", s));
    }
    filter.states.push_back(static_cast<v1::JobState>(s));
  }
  filter.owner = req.owner();
  if (!caller.is_admin()) {
    if (!req.owner().empty() && req.owner() != caller.name) return absl::OkStatus();
    filter.owner = caller.name;
  }
  if (req.page_size() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size: must be >= 0, got ", req.page_size()));
  }
  filter.limit = req.page_size() == 0 ? kMaxPageSize : std::min(req.page_size(), kMaxPageSize);
  if (!req.page_token().empty() && !absl::SimpleAtoi(req.page_token(), &filter.after_rowid)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token: not a token from ListJobs, got \"", req.page_token(), "\""));
  }
  std::vector<int64_t> rowids;
  auto jobs = store_->ListJobs(filter, &rowids);
  if (!jobs.ok()) {
    store_errors_.Add({{"op", "list_jobs"}}).Increment();
    return jobs.status();
  }
  for (auto& j : *jobs) *resp->add_jobs() = std::move(j);
  if (static_cast<int>(rowids.size()) == filter.limit) {
    resp->set_next_page_token(absl::StrCat(rowids.back()));
  }
  return absl::OkStatus();
}

absl::Status JobManager::CancelJob(const rpc::Principal& caller, const v1::CancelJobRequest& req,
                                   v1::CancelJobResponse* resp) {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(v1::Job job, GetVisibleJob(caller, req.id()));
  if (job.state() == v1::CANCELLED) {
    *resp->mutable_job() = std::move(job);
    return absl::OkStatus();
  }
  if (IsTerminal(job.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job.id(), " already ended ", v1::JobState_Name(job.state())));
  }
  std::string message = absl::StrCat("cancelled by ", caller.name);
  if (!req.reason().empty()) absl::StrAppend(&message, ": ", req.reason());
  ASSIGN_OR_RETURN(*resp->mutable_job(),
                   TransitionLocked(std::move(job), v1::CANCELLED, "cancel", message));
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobManager::Transition(const std::string& job_id, v1::JobState to,
                                               const std::string& type, const std::string& message,
                                               const std::function<void(v1::Job*)>& mutate) {
  absl::MutexLock lock(&mu_);
  auto job = store_->GetJob(job_id);
  if (!job.ok()) return job.status();
  if (!job->has_value()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  if (mutate && Allowed((*job)->state(), to)) mutate(&**job);
  return TransitionLocked(**job, to, type, message);
}

absl::StatusOr<v1::Job> JobManager::RecordProgress(const std::string& job_id, int64_t step,
                                                   const std::string& message,
                                                   int64_t total_steps) {
  absl::MutexLock lock(&mu_);
  auto job = store_->GetJob(job_id);
  if (!job.ok()) return job.status();
  if (!job->has_value()) return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
  v1::Job& j = **job;
  if (IsTerminal(j.state())) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, " is ", v1::JobState_Name(j.state())));
  }
  j.set_step(step);
  if (total_steps >= 0) j.set_total_steps(total_steps);
  v1::JobEvent event;
  event.set_time_ms(NowMs());
  event.set_type("progress");
  event.set_state(j.state());
  event.set_message(message);
  event.set_step(step);
  auto stored = store_->UpdateJob(j, event);
  if (!stored.ok()) {
    store_errors_.Add({{"op", "update_job"}}).Increment();
    return stored.status();
  }
  ++version_;
  return j;
}

absl::StatusOr<v1::Job> JobManager::TransitionLocked(v1::Job job, v1::JobState to,
                                                     const std::string& type,
                                                     const std::string& message) {
  if (!Allowed(job.state(), to)) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job.id(), ": cannot go from ",
                                                      v1::JobState_Name(job.state()), " to ",
                                                      v1::JobState_Name(to)));
  }
  job.set_state(to);
  job.set_message(message);
  job.set_update_time_ms(NowMs());
  v1::JobEvent event;
  event.set_time_ms(job.update_time_ms());
  event.set_type(type);
  event.set_state(to);
  event.set_message(message);
  event.set_step(job.step());
  auto stored = store_->UpdateJob(job, event);
  if (!stored.ok()) {
    store_errors_.Add({{"op", "update_job"}}).Increment();
    return stored.status();
  }
  transitions_.Add({{"state", v1::JobState_Name(to)}}).Increment();
  ++version_;
  RefreshGaugesLocked();
  return job;
}

absl::Status JobManager::WatchJob(const rpc::Principal& caller, const v1::WatchJobRequest& req,
                                  const std::function<bool(const v1::JobEvent&)>& send,
                                  const std::function<bool()>& cancelled) {
  if (req.after_seq() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("after_seq: must be >= 0, got ", req.after_seq()));
  }
  ASSIGN_OR_RETURN(v1::Job job, GetVisibleJob(caller, req.id()));
  watchers_.Increment();
  struct Done {
    prometheus::Gauge& g;
    ~Done() { g.Decrement(); }
  } done{watchers_};

  int64_t seq = req.after_seq();
  while (true) {
    int64_t seen;
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_) return absl::UnavailableError("coordinator is shutting down");
      seen = version_;
    }
    ASSIGN_OR_RETURN(auto events, store_->ListEvents(req.id(), seq));
    if (!events.empty()) {
      auto current = store_->GetJob(req.id());
      if (current.ok() && current->has_value()) job = **current;
    }
    for (v1::JobEvent& e : events) {
      *e.mutable_job() = job;
      if (cancelled() || !send(e)) return absl::CancelledError("watch cancelled by the client");
      seq = e.seq();
      if (IsTerminal(e.state())) return absl::OkStatus();
    }
    if (events.empty() && IsTerminal(job.state())) return absl::OkStatus();
    // Wait for the next event, checking for a client cancel now and then.
    absl::MutexLock lock(&mu_);
    auto changed = [this, seen]()
                       ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return version_ != seen || shutdown_; };
    while (!changed()) {
      if (cancelled()) return absl::CancelledError("watch cancelled by the client");
      mu_.AwaitWithTimeout(absl::Condition(&changed), absl::Milliseconds(200));
    }
  }
}

void JobManager::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

}  // namespace vjepa::coordinator
