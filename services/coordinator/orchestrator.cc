#include "services/coordinator/orchestrator.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"
#include "glog/logging.h"
#include "services/coordinator/ids.h"
#include "services/coordinator/scheduler.h"

namespace vjepa::coordinator {
namespace {

constexpr int kMaxLeasesPerCall = 1024;
constexpr size_t kMaxQuarantinedPerReport = 10000;
constexpr size_t kMaxFailureBytes = 4096;
// Per-rank numbers older than this do not count in the job's signals.
constexpr int64_t kStatsFreshMs = 60000;

int IndexOf(const google::protobuf::RepeatedPtrField<std::string>& ids, const std::string& id) {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] == id) return i;
  }
  return -1;
}

// The mean of `value` over the workers `ids` that are known and have a value above 0; 0 when none
// has.
double MeanOverWorkers(const WorkerRegistry& workers,
                       const google::protobuf::RepeatedPtrField<std::string>& ids,
                       double (*value)(const v1::Worker&)) {
  double sum = 0;
  int counted = 0;
  for (const std::string& id : ids) {
    std::optional<v1::Worker> w = workers.Get(id);
    if (w.has_value() && value(*w) > 0) {
      sum += value(*w);
      ++counted;
    }
  }
  return counted ? sum / counted : 0;
}

std::vector<std::string> ToVector(const google::protobuf::RepeatedPtrField<std::string>& ids) {
  return std::vector<std::string>(ids.begin(), ids.end());
}

void SetIds(google::protobuf::RepeatedPtrField<std::string>* out,
            const std::vector<std::string>& ids) {
  out->Clear();
  for (const std::string& id : ids) *out->Add() = id;
}

// Fills rt's quarantine list (and its version, the list's length) from the store, for the
// dataset of rt's manifest digest.
absl::Status LoadQuarantine(Store* store, v1::JobRuntime* rt) {
  rt->clear_quarantined();
  if (!rt->manifest_sha256().empty()) {
    ASSIGN_OR_RETURN(std::vector<v1::QuarantinedVideo> q,
                     store->ListQuarantined(rt->manifest_sha256()));
    for (v1::QuarantinedVideo& v : q) *rt->add_quarantined() = std::move(v);
  }
  rt->set_quarantine_version(rt->quarantined_size());
  return absl::OkStatus();
}

// Every job in an active state, oldest first (all pages).
absl::StatusOr<std::vector<v1::Job>> ActiveJobs(Store* store) {
  JobFilter filter;
  filter.states = {v1::PENDING, v1::SCHEDULED, v1::RUNNING, v1::RESTARTING};
  std::vector<v1::Job> all;
  while (true) {
    std::vector<int64_t> rowids;
    ASSIGN_OR_RETURN(std::vector<v1::Job> page, store->ListJobs(filter, &rowids));
    for (v1::Job& j : page) all.push_back(std::move(j));
    if (rowids.empty() || static_cast<int>(rowids.size()) < filter.limit) return all;
    filter.after_rowid = rowids.back();
  }
}

}  // namespace

Orchestrator::Orchestrator(Store* store, JobManager* jobs, WorkerRegistry* workers,
                           metrics::Registry& registry, OrchestratorOptions options)
    : store_(store),
      jobs_(jobs),
      workers_(workers),
      options_(std::move(options)),
      started_ms_(absl::ToUnixMillis(options_.now())),
      leases_granted_(metrics::AddCounter(registry, "vjepa_coordinator_leases_granted_total",
                                          "Batch leases given to dataworkers.")
                          .Add({})),
      leases_returned_(metrics::AddCounter(
          registry, "vjepa_coordinator_leases_returned_total",
          "Leases that went back to PENDING, by reason (returned by the worker, expired, "
          "worker_lost, restart).")),
      batches_committed_(metrics::AddCounter(registry, "vjepa_coordinator_batches_committed_total",
                                             "Global batches committed by checkpoints.")
                             .Add({})),
      batches_delivered_(metrics::AddCounter(registry, "vjepa_coordinator_batches_delivered_total",
                                             "Global batches reported consumed by trainers.")
                             .Add({})),
      restarts_(metrics::AddCounter(registry, "vjepa_coordinator_job_restarts_total",
                                    "Job restarts after a lost or failed trainer.")
                    .Add({})),
      reports_(metrics::AddCounter(registry, "vjepa_coordinator_progress_reports_total",
                                   "ReportProgress calls, by result (ok, stale, refused).")),
      quarantined_(metrics::AddCounter(registry, "vjepa_coordinator_quarantined_videos_total",
                                       "Videos newly quarantined (per dataset).")
                       .Add({})),
      identity_mismatches_(
          metrics::AddCounter(registry, "vjepa_coordinator_dataset_identity_mismatches_total",
                              "Dataworker reports of a dataset identity that differs from the "
                              "job's (their leases are taken back).")
              .Add({})),
      passes_(metrics::AddCounter(registry, "vjepa_coordinator_schedule_passes_total",
                                  "Scheduling passes.")
                  .Add({})),
      data_wait_(metrics::AddGauge(registry, "vjepa_coordinator_job_data_wait_fraction",
                                   "Share of step time a job's trainers wait for data (mean over "
                                   "ranks), by job.")),
      cores_needed_(metrics::AddGauge(registry, "vjepa_coordinator_job_dataworker_cores_needed",
                                      "Dataworker cores a job needs: its consumption over the "
                                      "measured per-core production rate, by job.")),
      clips_per_second_(metrics::AddGauge(registry, "vjepa_coordinator_job_clips_per_second",
                                          "Clips a job's trainers consume per second, by job.")),
      ledger_batches_(metrics::AddGauge(registry, "vjepa_coordinator_ledger_batches",
                                        "Global batches of a job's ledger, by job and state.")),
      checkpoint_age_(metrics::AddGauge(
          registry, "vjepa_coordinator_job_checkpoint_age_seconds",
          "Seconds since a running job's newest committed checkpoint (or since it was "
          "scheduled), by job.")),
      checkpoint_expected_(metrics::AddGauge(
          registry, "vjepa_coordinator_job_checkpoint_interval_seconds",
          "Expected seconds between a running job's checkpoints: checkpoint.every_steps times "
          "its measured step time (0 until measured), by job.")),
      dataworkers_desired_(
          metrics::AddGauge(registry, "vjepa_coordinator_dataworkers_desired",
                            "Dataworkers the active jobs need in total: per job the larger of "
                            "resources.dataworkers and its measured cores needed over the cores "
                            "of a dataworker (the autoscaling signal).")
              .Add({})),
      dataworkers_alive_(
          metrics::AddGauge(registry, "vjepa_coordinator_dataworkers", "Dataworkers ALIVE now.")
              .Add({})),
      probe_top1_(metrics::AddGauge(registry, "vjepa_coordinator_job_probe_top1",
                                    "Top-1 accuracy (fraction) of a SUCCEEDED probe job, by job, "
                                    "pooling and the set it was measured on (kept after the job "
                                    "ended).")),
      target_feature_std_(metrics::AddGauge(
          registry, "vjepa_coordinator_job_target_feature_std",
          "A running pretrain job's collapse indicator: the per-channel standard deviation of "
          "its target features, averaged over channels (rank 0's last report), by job.")) {
  for (const char* reason : {"returned", "expired", "worker_lost", "restart"}) {
    leases_returned_.Add({{"reason", reason}});
  }
  for (const char* result : {"ok", "stale", "refused"}) reports_.Add({{"result", result}});
}

Orchestrator::~Orchestrator() { Stop(); }

absl::Status Orchestrator::Init() {
  ASSIGN_OR_RETURN(std::vector<v1::Job> jobs, ActiveJobs(store_));
  absl::MutexLock lock(&mu_);
  for (const v1::Job& job : jobs) {
    if (job.kind() != "pretrain" && job.kind() != "probe") continue;
    if (absl::Status s = AddJobLocked(job, /*after_restart=*/true); !s.ok()) {
      LOG(ERROR) << "job " << job.id() << ": " << s;
    }
  }
  return absl::OkStatus();
}

void Orchestrator::Start() {
  thread_ = std::thread([this] {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (mu_.AwaitWithTimeout(absl::Condition(&stopping_), options_.tick)) return;
      }
      Tick();
    }
  });
}

void Orchestrator::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

absl::Status Orchestrator::AddJobLocked(const v1::Job& job, bool after_restart) {
  absl::StatusOr<spec::JobSpec> spec = spec::ParseJobSpec(job.spec_yaml());
  if (!spec.ok()) {
    FailLocked(job.id(), absl::StrCat("spec: ", spec.status().message()));
    return spec.status();
  }
  JobRun run;
  run.job = job;
  run.spec = *spec;
  run.probe = spec->kind == spec::JobKind::kProbe;
  ASSIGN_OR_RETURN(std::optional<v1::JobRuntime> rt, store_->GetJobRuntime(job.id()));
  if (rt.has_value()) run.rt = *rt;
  run.rt.set_max_restarts(options_.max_restarts);

  const LedgerShape shape = ShapeOf(run, options_.window_steps);
  ASSIGN_OR_RETURN(std::optional<StoredLedger> stored, store_->GetLedger(job.id()));
  if (stored.has_value()) {
    LedgerSnapshot snapshot = stored->snapshot;
    if (after_restart) {
      // Heartbeats and deadlines were in memory: every lease gets one grace period.
      const int64_t grace_end = NowMs() + absl::ToInt64Milliseconds(options_.grace);
      for (LedgerEntry& e : snapshot.outstanding) {
        if (e.state == LedgerEntry::State::kLeased)
          e.deadline_ms = std::max(e.deadline_ms, grace_end);
      }
    }
    absl::StatusOr<JobLedger> ledger = JobLedger::Restore(shape, std::move(snapshot));
    if (!ledger.ok()) {
      FailLocked(job.id(), absl::StrCat("batch ledger: ", ledger.status().message()));
      return ledger.status();
    }
    run.ledger.emplace(std::move(*ledger));
  } else {
    absl::StatusOr<JobLedger> ledger = JobLedger::Create(shape);
    if (!ledger.ok()) {
      FailLocked(job.id(), absl::StrCat("batch ledger: ", ledger.status().message()));
      return ledger.status();
    }
    run.ledger.emplace(std::move(*ledger));
    RETURN_IF_ERROR(store_->PutLedger(job.id(), shape, run.ledger->Snapshot()));
  }
  RETURN_IF_ERROR(LoadQuarantine(store_, &run.rt));
  if (job.state() == v1::SCHEDULED || job.state() == v1::RUNNING) {
    run.gang_generation = run.ledger->generation();
    run.resume_step = run.rt.trainers_size() > 0 ? run.ledger->resume_step() : 0;
  }
  if (run.gang_generation != 0 && run.resume_step > 0) {
    ASSIGN_OR_RETURN(std::optional<CheckpointRow> ckpt,
                     store_->FindCheckpoint(job.id(), run.resume_step));
    if (ckpt.has_value()) run.resume_checkpoint_id = ckpt->id;
  }
  for (const std::string& id : run.rt.trainers()) {
    if (!id.empty()) RememberAssignmentLocked(id, job.id());
  }
  ASSIGN_OR_RETURN(std::vector<CheckpointRow> ckpts, store_->ListCheckpoints(job.id()));
  for (const CheckpointRow& c : ckpts) {
    run.last_checkpoint_ms = std::max(run.last_checkpoint_ms, c.create_time_ms);
  }
  const std::string id = job.id();
  runs_[id] = std::move(run);
  if (runs_[id].probe) (void)ResolveProbeCheckpointLocked(id, runs_[id]);
  return absl::OkStatus();
}

LedgerShape Orchestrator::ShapeOf(const JobRun& run, int window_steps) {
  LedgerShape shape;
  shape.window_steps = window_steps;
  if (run.probe) {
    // One trainer reads every labelled sample once: g runs through the probe-train batches, then
    // the validation batches. Until the manifests are read, one batch (g = 0).
    const int64_t total =
        run.rt.dataset_size() > 0
            ? spec::PlanProbeBatches(run.spec, run.rt.dataset_size(), run.rt.val_dataset_size())
                  .total()
            : 1;
    shape.world_size = 1;
    shape.batches_per_epoch = std::max<int64_t>(1, total);
    shape.steps = std::max<int64_t>(1, total);
    return shape;
  }
  shape.world_size = static_cast<int>(run.spec.resources.trainers);
  shape.batches_per_epoch = std::max<int64_t>(1, run.rt.batches_per_epoch());
  shape.steps = run.spec.optim.steps;
  return shape;
}

bool Orchestrator::ResolveProbeCheckpointLocked(const std::string& job_id, JobRun& run) {
  if (!run.probe || run.probe_ready) return true;
  const spec::ProbeSpec& p = run.spec.probe;
  absl::StatusOr<std::optional<v1::Job>> source = store_->GetJob(p.checkpoint);
  if (!source.ok()) {
    LOG(ERROR) << "job " << job_id << ": probe.checkpoint: " << source.status();
    return false;
  }
  if (!source->has_value()) {
    // Not a job id: the path of a checkpoint file, read by the trainer.
    if (p.checkpoint_step.has_value()) {
      FailLocked(job_id,
                 absl::StrCat("probe.checkpoint_step needs a job id in probe.checkpoint; \"",
                              p.checkpoint, "\" is not a job (a path is read as it is)"));
      return false;
    }
    run.probe_source_job.clear();
    run.probe_checkpoint_id.clear();
    run.rt.set_probe_checkpoint(p.checkpoint);
    run.rt.set_probe_checkpoint_step(-1);
    run.probe_ready = true;
    run.dirty = true;
    return true;
  }
  const v1::Job& src = **source;
  absl::StatusOr<std::vector<CheckpointRow>> ckpts = store_->ListCheckpoints(src.id());
  if (!ckpts.ok()) {
    LOG(ERROR) << "job " << job_id << ": checkpoints of " << src.id() << ": " << ckpts.status();
    return false;
  }
  const CheckpointRow* found = nullptr;
  for (const CheckpointRow& c : *ckpts) {
    if (p.checkpoint_step.has_value() ? c.step == *p.checkpoint_step
                                      : (found == nullptr || c.step > found->step)) {
      found = &c;
    }
  }
  const bool ended = IsTerminal(src.state());
  const std::string which = p.checkpoint_step.has_value()
                                ? absl::StrCat("the checkpoint of step ", *p.checkpoint_step)
                                : std::string("the latest checkpoint");
  if (found == nullptr || (!p.checkpoint_step.has_value() && !ended)) {
    if (ended) {
      FailLocked(job_id,
                 absl::StrCat("probe.checkpoint: job ", src.id(), " (",
                              v1::JobState_Name(src.state()), ") has ",
                              p.checkpoint_step.has_value()
                                  ? absl::StrCat("no checkpoint of step ", *p.checkpoint_step)
                                  : std::string("no checkpoint")));
      return false;
    }
    const std::string wait = absl::StrCat("waiting for ", which, " of job ", src.id(), " (",
                                          v1::JobState_Name(src.state()), ")");
    if (run.rt.phase() != wait) {
      LOG(INFO) << "job " << job_id << ": " << wait;
      run.rt.set_phase(wait);
      run.dirty = true;
    }
    return false;
  }
  run.probe_source_job = src.id();
  run.probe_checkpoint_id = found->id;
  run.rt.set_probe_checkpoint(found->id);
  run.rt.set_probe_checkpoint_step(found->step);
  run.probe_ready = true;
  run.dirty = true;
  LOG(INFO) << "job " << job_id << ": probes checkpoint " << found->id << " (step " << found->step
            << ") of job " << src.id();
  return true;
}

void Orchestrator::RememberAssignmentLocked(const std::string& worker_id,
                                            const std::string& job_id) {
  std::vector<std::string>& jobs = assigned_jobs_[worker_id];
  if (std::find(jobs.begin(), jobs.end(), job_id) == jobs.end()) jobs.push_back(job_id);
}

absl::StatusOr<int64_t> Orchestrator::RecordQuarantine(const std::string& manifest_sha256,
                                                       const v1::ReportProgressRequest& req) {
  const std::vector<v1::QuarantinedVideo> videos(req.quarantined().begin(),
                                                 req.quarantined().end());
  ASSIGN_OR_RETURN(int64_t added, store_->AddQuarantined(manifest_sha256, videos, NowMs()));
  quarantined_.Increment(static_cast<double>(added));
  return added;
}

void Orchestrator::DropJobLocked(const std::string& job_id) {
  auto it = runs_.find(job_id);
  if (it == runs_.end()) return;
  JobRun& run = it->second;
  for (const auto* ids : {&run.rt.trainers(), &run.rt.dataworkers()}) {
    for (const std::string& id : *ids) {
      std::optional<v1::Worker> w = workers_->Get(id);
      if (w.has_value() && w->job_id() == job_id) workers_->SetAssignment(id, "", 0, 0);
    }
  }
  RefreshSignalsLocked(job_id, run);
  run.dirty = true;  // keep the last measured signals for describe
  (void)PersistLocked(job_id, run);
  const std::map<std::string, std::string> labels{{"job", job_id}};
  data_wait_.Remove(&data_wait_.Add(labels));
  cores_needed_.Remove(&cores_needed_.Add(labels));
  clips_per_second_.Remove(&clips_per_second_.Add(labels));
  checkpoint_age_.Remove(&checkpoint_age_.Add(labels));
  checkpoint_expected_.Remove(&checkpoint_expected_.Add(labels));
  target_feature_std_.Remove(&target_feature_std_.Add(labels));
  for (const char* state : {"pending", "leased", "delivered", "committed"}) {
    ledger_batches_.Remove(&ledger_batches_.Add({{"job", job_id}, {"state", state}}));
  }
  runs_.erase(it);
}

absl::Status Orchestrator::PersistLocked(const std::string& job_id, JobRun& run) {
  RETURN_IF_ERROR(store_->PutLedger(job_id, run.ledger->shape(), run.ledger->Snapshot()));
  if (run.dirty) {
    RETURN_IF_ERROR(store_->PutJobRuntime(job_id, run.rt));
    run.dirty = false;
  }
  return absl::OkStatus();
}

void Orchestrator::FailLocked(const std::string& job_id, const std::string& reason) {
  LOG(WARNING) << "job " << job_id << " FAILED: " << reason;
  absl::StatusOr<v1::Job> failed = jobs_->Transition(job_id, v1::FAILED, "failure", reason);
  if (!failed.ok()) LOG(ERROR) << "job " << job_id << ": " << failed.status();
  DropJobLocked(job_id);
}

bool Orchestrator::GangLiveLocked(const JobRun& run) const {
  return run.gang_generation != 0 && run.gang_generation == run.ledger->generation() &&
         (run.job.state() == v1::SCHEDULED || run.job.state() == v1::RUNNING);
}

void Orchestrator::RestartLocked(const std::string& job_id, JobRun& run,
                                 const std::string& reason) {
  if (run.ledger->restarts() >= options_.max_restarts) {
    FailLocked(job_id, absl::StrCat(reason, " (after ", run.ledger->restarts(),
                                    " restarts; at most ", options_.max_restarts, ")"));
    return;
  }
  const LedgerCounts before = run.ledger->Counts();
  const int64_t generation = run.ledger->Restart();
  leases_returned_.Add({{"reason", "restart"}}).Increment(static_cast<double>(before.leased));
  restarts_.Increment();
  run.rt.set_restarts(static_cast<int32_t>(run.ledger->restarts()));
  run.rt.set_c10d_store_address("");
  run.ranks.clear();
  run.dirty = true;
  LOG(WARNING) << "job " << job_id << ": restarting as generation " << generation << ": " << reason;
  absl::StatusOr<v1::Job> job =
      jobs_->Transition(job_id, v1::RESTARTING, "restart",
                        absl::StrCat(reason, "; generation ", generation, " resumes at step ",
                                     run.ledger->resume_step()),
                        [&](v1::Job* j) { j->set_generation(generation); });
  if (job.ok()) {
    run.job = *job;
  } else {
    LOG(ERROR) << "job " << job_id << ": " << job.status();
  }
  if (absl::Status s = PersistLocked(job_id, run); !s.ok()) {
    LOG(ERROR) << "job " << job_id << ": " << s;
  }
}

void Orchestrator::Tick() {
  absl::StatusOr<std::vector<v1::Job>> jobs = ActiveJobs(store_);
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  passes_.Increment();
  if (!jobs.ok()) {
    LOG(ERROR) << "scheduling: " << jobs.status();
    return;
  }
  std::set<std::string> active;
  int64_t order = 0;
  for (const v1::Job& job : *jobs) {  // oldest first
    ++order;
    if (job.kind() != "pretrain" && job.kind() != "probe") continue;
    active.insert(job.id());
    auto it = runs_.find(job.id());
    if (it == runs_.end()) {
      if (absl::Status s = AddJobLocked(job, /*after_restart=*/false); !s.ok()) {
        LOG(ERROR) << "job " << job.id() << ": " << s;
        active.erase(job.id());
        continue;
      }
      it = runs_.find(job.id());
      if (it == runs_.end()) continue;
    } else {
      it->second.job = job;
    }
    it->second.order = order;
  }
  std::vector<std::string> gone;
  for (const auto& [id, run] : runs_) {
    if (!active.count(id)) gone.push_back(id);
  }
  for (const std::string& id : gone) DropJobLocked(id);

  const int64_t now = NowMs();
  for (auto& [id, run] : runs_) {
    const int expired = run.ledger->ExpireLeases(now);
    if (expired > 0) {
      leases_returned_.Add({{"reason", "expired"}}).Increment(expired);
      if (absl::Status s = PersistLocked(id, run); !s.ok()) LOG(ERROR) << "job " << id << ": " << s;
    }
  }
  ScheduleLocked();
  double desired = 0;
  for (auto& [id, run] : runs_) {
    RefreshSignalsLocked(id, run);
    double cores_per_worker =
        MeanOverWorkers(*workers_, run.rt.dataworkers(),
                        [](const v1::Worker& w) { return static_cast<double>(w.cpus()); });
    if (cores_per_worker == 0) cores_per_worker = 1;
    const double measured = std::ceil(run.rt.dataworker_cores_needed() / cores_per_worker);
    desired += std::max(static_cast<double>(run.spec.resources.dataworkers), measured);
  }
  dataworkers_desired_.Set(desired);
  int alive = 0;
  for (const v1::Worker& w : workers_->Workers()) {
    alive += w.kind() == v1::DATAWORKER && w.state() == v1::ALIVE;
  }
  dataworkers_alive_.Set(alive);
}

void Orchestrator::ScheduleLocked() {
  std::map<std::string, v1::Worker> alive;
  for (v1::Worker& w : workers_->Workers()) {
    if (w.state() == v1::ALIVE) alive.emplace(w.id(), std::move(w));
  }
  std::map<std::string, std::string> holder;  // worker id -> job it serves
  std::vector<SchedJob> sched_jobs;
  // A gang member that is no longer alive without a listener call (e.g. it was lost while the
  // coordinator was down): the job restarts.
  std::vector<std::pair<std::string, std::string>> gone;  // job, reason
  for (auto& [id, run] : runs_) {
    if (!GangLiveLocked(run)) continue;
    for (int r = 0; r < run.rt.trainers_size(); ++r) {
      if (!alive.count(run.rt.trainers(r))) {
        gone.emplace_back(id,
                          absl::StrCat("trainer ", run.rt.trainers(r), " (rank ", r, ") is gone"));
        break;
      }
    }
  }
  for (const auto& [id, reason] : gone) {
    auto it = runs_.find(id);
    if (it != runs_.end()) RestartLocked(id, it->second, reason);
  }
  std::vector<std::string> probes;
  for (auto& [id, run] : runs_) {
    if (run.probe && !run.probe_ready) probes.push_back(id);
  }
  for (const std::string& id : probes) {
    auto it = runs_.find(id);
    if (it != runs_.end()) (void)ResolveProbeCheckpointLocked(id, it->second);
  }
  for (auto& [id, run] : runs_) {
    if (run.probe && !run.probe_ready) continue;  // waits for its checkpoint
    SchedJob j;
    j.id = id;
    j.trainers = static_cast<int>(run.spec.resources.trainers);
    j.priority = static_cast<int>(run.spec.resources.priority);
    j.order = run.order;
    j.cuda = run.spec.resources.device == spec::Device::kCuda;
    j.demand = run.rt.dataworker_cores_needed() > 0
                   ? run.rt.dataworker_cores_needed()
                   : static_cast<double>(std::max<int64_t>(1, run.spec.resources.dataworkers));
    for (const std::string& t : run.rt.trainers()) {
      j.trainers_held.push_back(alive.count(t) ? t : "");
      if (alive.count(t)) holder[t] = id;
    }
    for (const std::string& d : run.rt.dataworkers()) {
      if (alive.count(d)) holder[d] = id;
    }
    sched_jobs.push_back(std::move(j));
  }
  std::vector<SchedWorker> sched_workers;
  for (const auto& [id, w] : alive) {
    SchedWorker sw;
    sw.id = id;
    sw.trainer = w.kind() == v1::TRAINER;
    sw.cuda = sw.trainer && w.device().rfind("cuda", 0) == 0;
    auto h = holder.find(id);
    if (h != holder.end()) sw.job_id = h->second;
    sched_workers.push_back(std::move(sw));
  }
  const SchedulePlan plan = Schedule(sched_jobs, sched_workers);

  for (const auto& [job_id, placement] : plan.jobs) {
    auto it = runs_.find(job_id);
    if (it == runs_.end()) continue;
    JobRun& run = it->second;
    if (!placement.trainers.empty() && !GangLiveLocked(run)) {
      // Form the gang at the current generation, resuming from the last checkpoint.
      const int64_t generation = run.ledger->generation();
      for (const std::string& t : run.rt.trainers()) {
        if (!t.empty() && std::find(placement.trainers.begin(), placement.trainers.end(), t) ==
                              placement.trainers.end()) {
          workers_->SetAssignment(t, "", 0, 0);
        }
      }
      SetIds(run.rt.mutable_trainers(), placement.trainers);
      run.rt.set_c10d_store_address("");
      run.resume_step = run.ledger->resume_step();
      run.resume_checkpoint_id.clear();
      if (run.resume_step > 0) {
        absl::StatusOr<std::optional<CheckpointRow>> ckpt =
            store_->FindCheckpoint(job_id, run.resume_step);
        if (!ckpt.ok() || !ckpt->has_value()) {
          FailLocked(job_id, absl::StrCat("the checkpoint of step ", run.resume_step,
                                          " to resume from is missing"));
          continue;
        }
        run.resume_checkpoint_id = (*ckpt)->id;
      }
      absl::StatusOr<v1::Job> job =
          jobs_->Transition(job_id, v1::SCHEDULED, "scheduled",
                            absl::StrCat("generation ", generation, ": trainers ",
                                         absl::StrJoin(placement.trainers, ", "),
                                         "; starts at step ", run.resume_step),
                            [&](v1::Job* j) { j->set_generation(generation); });
      if (!job.ok()) {
        LOG(ERROR) << "job " << job_id << ": " << job.status();
        continue;
      }
      run.job = *job;
      run.gang_generation = generation;
      if (run.last_checkpoint_ms == 0) run.last_checkpoint_ms = NowMs();
      run.ranks.clear();
      for (int r = 0; r < static_cast<int>(placement.trainers.size()); ++r) {
        workers_->SetAssignment(placement.trainers[r], job_id, r, generation);
        RememberAssignmentLocked(placement.trainers[r], job_id);
      }
      run.dirty = true;
      LOG(INFO) << "job " << job_id << ": generation " << generation << " scheduled on "
                << absl::StrJoin(placement.trainers, ", ");
    } else if (placement.trainers.empty() && run.rt.trainers_size() > 0 && !GangLiveLocked(run)) {
      // Not enough trainers for the gang: the survivors go idle until it can be formed.
      for (const std::string& t : run.rt.trainers()) {
        if (!t.empty()) workers_->SetAssignment(t, "", 0, 0);
      }
      run.rt.clear_trainers();
      run.dirty = true;
    }
    if (placement.dataworkers != ToVector(run.rt.dataworkers())) {
      for (const std::string& d : run.rt.dataworkers()) {
        if (std::find(placement.dataworkers.begin(), placement.dataworkers.end(), d) ==
            placement.dataworkers.end()) {
          const int released = run.ledger->ReleaseWorker(d);
          if (released > 0) leases_returned_.Add({{"reason", "worker_lost"}}).Increment(released);
        }
      }
      SetIds(run.rt.mutable_dataworkers(), placement.dataworkers);
      for (const std::string& d : placement.dataworkers) {
        workers_->SetAssignment(d, job_id, 0, 0);
        RememberAssignmentLocked(d, job_id);
      }
      run.dirty = true;
    }
    if (run.dirty) {
      if (absl::Status s = PersistLocked(job_id, run); !s.ok()) {
        LOG(ERROR) << "job " << job_id << ": " << s;
      }
    }
  }
  for (const auto* idle : {&plan.idle_trainers, &plan.idle_dataworkers}) {
    for (const std::string& id : *idle) {
      auto w = alive.find(id);
      if (w != alive.end() && !w->second.job_id().empty()) workers_->SetAssignment(id, "", 0, 0);
    }
  }
}

void Orchestrator::OnWorkerLeft(const v1::Worker& worker) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> restart;
  for (auto& [id, run] : runs_) {
    const int d = IndexOf(run.rt.dataworkers(), worker.id());
    if (d >= 0) {
      const int released = run.ledger->ReleaseWorker(worker.id());
      if (released > 0) leases_returned_.Add({{"reason", "worker_lost"}}).Increment(released);
      run.rt.mutable_dataworkers()->erase(run.rt.mutable_dataworkers()->begin() + d);
      run.dirty = true;
      LOG(INFO) << "job " << id << ": dataworker " << worker.name() << " ("
                << v1::WorkerState_Name(worker.state()) << "): " << released
                << " leases back to PENDING";
      if (absl::Status s = PersistLocked(id, run); !s.ok()) LOG(ERROR) << "job " << id << ": " << s;
    }
    const int r = IndexOf(run.rt.trainers(), worker.id());
    if (r >= 0 && GangLiveLocked(run)) restart.push_back(id);
  }
  for (const std::string& id : restart) {
    auto it = runs_.find(id);
    if (it == runs_.end()) continue;
    const int r = IndexOf(it->second.rt.trainers(), worker.id());
    RestartLocked(
        id, it->second,
        absl::StrCat("trainer ", worker.name(), " (rank ", r, ") ",
                     worker.state() == v1::LOST ? "lost" : "replaced", ": ", worker.message()));
  }
}

absl::Status Orchestrator::OnCheckpointCommitted(StoreTxn& txn, const std::string& job_id,
                                                 int64_t generation, int64_t step, bool final) {
  (void) final;
  auto it = runs_.find(job_id);
  if (it == runs_.end() || step < 1) return absl::OkStatus();
  JobRun& run = it->second;
  const int64_t before = run.ledger->committed_below();
  RETURN_IF_ERROR(run.ledger->Commit(generation, step - 1));
  run.last_checkpoint_ms = NowMs();
  batches_committed_.Increment(static_cast<double>(run.ledger->committed_below() - before));
  return Store::WriteLedger(txn, job_id, run.ledger->shape(), run.ledger->Snapshot());
}

bool Orchestrator::WorkerMayAccess(const rpc::Principal& caller, const std::string& worker_id,
                                   const std::string& job_id) {
  if (caller.is_admin()) return true;
  std::optional<v1::Worker> w = workers_->Get(worker_id);
  if (!w.has_value() || w->principal() != caller.name) return false;
  if (w->job_id() == job_id) return true;
  absl::MutexLock lock(&mu_);
  // The trainer of a probe job reads the checkpoint it probes, of another job.
  auto probe = runs_.find(w->job_id());
  if (probe != runs_.end() && probe->second.probe && !job_id.empty() &&
      probe->second.probe_source_job == job_id &&
      IndexOf(probe->second.rt.trainers(), worker_id) >= 0) {
    return true;
  }
  auto it = assigned_jobs_.find(worker_id);
  return it != assigned_jobs_.end() &&
         std::find(it->second.begin(), it->second.end(), job_id) != it->second.end();
}

void Orchestrator::OnHeartbeat(const v1::Worker& worker, const v1::HeartbeatRequest* request,
                               v1::TrainerAssignment* assignment) {
  if (worker.kind() == v1::DATAWORKER) {
    if (request != nullptr)
      workers_->SetProductionRate(worker.id(), request->clips_per_core_second());
    return;
  }
  absl::MutexLock lock(&mu_);
  for (auto& [id, run] : runs_) {
    const int rank = IndexOf(run.rt.trainers(), worker.id());
    if (rank < 0 || !GangLiveLocked(run)) continue;
    const int64_t generation = run.ledger->generation();
    if (request != nullptr && rank == 0 && request->job_id() == id &&
        request->generation() == generation && !request->c10d_store_address().empty() &&
        request->c10d_store_address().size() <= 256 &&
        run.rt.c10d_store_address() != request->c10d_store_address()) {
      run.rt.set_c10d_store_address(request->c10d_store_address());
      run.dirty = true;
      if (absl::Status s = PersistLocked(id, run); !s.ok()) LOG(ERROR) << "job " << id << ": " << s;
    }
    assignment->set_job_id(id);
    assignment->set_generation(generation);
    assignment->set_rank(rank);
    assignment->set_world_size(run.rt.trainers_size());
    assignment->set_spec_yaml(run.job.spec_yaml());
    assignment->set_c10d_store_address(run.rt.c10d_store_address());
    for (const std::string& d : run.rt.dataworkers()) {
      std::optional<v1::Worker> dw = workers_->Get(d);
      if (dw.has_value() && dw->state() == v1::ALIVE && !dw->advertise_address().empty()) {
        assignment->add_dataworkers(dw->advertise_address());
      }
    }
    assignment->set_resume_step(run.resume_step);
    assignment->set_resume_checkpoint_id(run.resume_checkpoint_id);
    if (run.probe) {
      assignment->set_steps(run.rt.dataset_size() > 0 ? run.ledger->shape().steps : 0);
      assignment->set_probe_checkpoint_id(run.probe_checkpoint_id);
    } else {
      assignment->set_steps(run.spec.optim.steps);
      assignment->set_checkpoint_every(run.spec.checkpoint.every_steps);
    }
    return;
  }
}

absl::Status Orchestrator::LeaseBatches(const rpc::Principal& caller,
                                        const v1::LeaseBatchesRequest& req,
                                        v1::LeaseBatchesResponse* resp) {
  std::optional<v1::Worker> worker = workers_->Get(req.worker_id());
  if (!worker.has_value() || (!caller.is_admin() && worker->principal() != caller.name)) {
    return absl::NotFoundError(absl::StrCat("worker ", req.worker_id(), " not found"));
  }
  if (worker->kind() != v1::DATAWORKER) {
    return absl::FailedPreconditionError(
        absl::StrCat("worker ", req.worker_id(), " is not a dataworker"));
  }
  if (req.max_batches() < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batches: must be >= 0, got ", req.max_batches()));
  }
  if (req.returned_lease_ids_size() > kMaxLeasesPerCall) {
    return absl::InvalidArgumentError(
        absl::StrCat("returned_lease_ids: at most ", kMaxLeasesPerCall, " per call"));
  }
  absl::MutexLock lock(&mu_);
  if (!req.returned_lease_ids().empty()) {
    const std::vector<std::string> ids(req.returned_lease_ids().begin(),
                                       req.returned_lease_ids().end());
    for (auto& [id, run] : runs_) {
      const int n = run.ledger->Return(worker->id(), ids);
      if (n > 0) {
        leases_returned_.Add({{"reason", "returned"}}).Increment(n);
        if (absl::Status s = PersistLocked(id, run); !s.ok()) return s;
      }
    }
  }
  if (worker->state() != v1::ALIVE) {
    return absl::FailedPreconditionError(absl::StrCat("worker ", worker->id(), " is ",
                                                      v1::WorkerState_Name(worker->state()),
                                                      ": register again"));
  }
  int max = std::min(req.max_batches(), kMaxLeasesPerCall);
  for (auto& [job_id, run] : runs_) {
    if (IndexOf(run.rt.dataworkers(), worker->id()) < 0) continue;
    if (!GangLiveLocked(run) || run.ledger->complete() || max == 0) return absl::OkStatus();
    if (run.rt.dataset_size() == 0) {
      // Until a dataworker has read the manifest, one lease at a time: its worker reports the
      // dataset identity, which every later lease carries.
      if (run.ledger->Counts().leased > 0) return absl::OkStatus();
      max = 1;
    }
    const int64_t lease_ms = absl::ToInt64Milliseconds(options_.lease_duration);
    std::vector<LeaseGrant> grants =
        run.ledger->Lease(worker->id(), max, NowMs(), lease_ms, [] { return NewId("l-"); });
    if (grants.empty()) return absl::OkStatus();
    RETURN_IF_ERROR(PersistLocked(job_id, run));
    leases_granted_.Increment(static_cast<double>(grants.size()));
    std::vector<std::string> trainer_addresses;
    for (const std::string& t : run.rt.trainers()) {
      std::optional<v1::Worker> tw = workers_->Get(t);
      trainer_addresses.push_back(tw.has_value() ? tw->advertise_address() : "");
    }
    const bool identity_known = run.rt.dataset_size() > 0;
    for (const LeaseGrant& g : grants) {
      v1::BatchLease* l = resp->add_leases();
      l->set_lease_id(g.lease_id);
      l->set_job_id(job_id);
      l->set_generation(g.generation);
      l->set_global_index(g.g);
      if (run.probe) {
        l->set_epoch(0);  // probe batches: g indexes the probe-train then the validation batches
        l->set_batch_index(g.g);
      } else if (identity_known) {
        l->set_epoch(g.epoch);
        l->set_batch_index(g.batch_index);
      }
      l->set_rank(g.rank);
      if (g.rank < static_cast<int>(trainer_addresses.size())) {
        l->set_trainer_address(trainer_addresses[g.rank]);
      }
      l->set_deadline_ms(g.deadline_ms);
      l->set_dataset_size(run.rt.dataset_size());
      l->set_manifest_sha256(run.rt.manifest_sha256());
      l->set_recipe_version(run.rt.recipe_version());
      l->set_quarantine_version(run.rt.quarantine_version());
      if (run.probe) {
        l->set_val_dataset_size(run.rt.val_dataset_size());
        l->set_val_manifest_sha256(run.rt.val_manifest_sha256());
      }
    }
    resp->set_spec_yaml(run.job.spec_yaml());
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status Orchestrator::ReportProgress(const rpc::Principal& caller,
                                          const v1::ReportProgressRequest& req,
                                          v1::ReportProgressResponse* resp) {
  auto refuse = [&](const char* result, absl::Status s) {
    reports_.Add({{"result", result}}).Increment();
    return s;
  };
  std::optional<v1::Worker> worker = workers_->Get(req.worker_id());
  if (!worker.has_value() || (!caller.is_admin() && worker->principal() != caller.name)) {
    return refuse("refused",
                  absl::NotFoundError(absl::StrCat("worker ", req.worker_id(), " not found")));
  }
  if (req.failure().size() > kMaxFailureBytes ||
      static_cast<size_t>(req.quarantined_size()) > kMaxQuarantinedPerReport ||
      req.delivered_size() > kMaxLeasesPerCall) {
    return refuse("refused", absl::InvalidArgumentError(absl::StrCat(
                                 "report too large: failure at most ", kMaxFailureBytes,
                                 " bytes, quarantined at most ", kMaxQuarantinedPerReport,
                                 ", delivered at most ", kMaxLeasesPerCall)));
  }
  absl::MutexLock lock(&mu_);
  auto it = runs_.find(req.job_id());
  if (it == runs_.end()) {
    absl::StatusOr<std::optional<v1::Job>> job = store_->GetJob(req.job_id());
    if (!job.ok()) return refuse("refused", job.status());
    if (!job->has_value()) {
      return refuse("refused",
                    absl::NotFoundError(absl::StrCat("job ", req.job_id(), " not found")));
    }
    // Quarantined videos belong to the dataset, not to the run: a report that arrives after the
    // job ended (reports are sent in the background) is still recorded.
    if (worker->kind() == v1::DATAWORKER && !req.quarantined().empty() &&
        !req.manifest_sha256().empty()) {
      RETURN_IF_ERROR(RecordQuarantine(req.manifest_sha256(), req).status());
      reports_.Add({{"result", "ok"}}).Increment();
      *resp->mutable_job() = **job;
      return absl::OkStatus();
    }
    return refuse("stale", absl::FailedPreconditionError(
                               absl::StrCat("job ", req.job_id(), " is not running (",
                                            v1::JobState_Name((*job)->state()), ")")));
  }
  const std::string job_id = it->first;
  absl::Status s = worker->kind() == v1::DATAWORKER
                       ? ReportFromDataworker(*worker, req, it->second)
                       : ReportFromTrainer(*worker, req, it->second, resp);
  if (!s.ok()) {
    return refuse(absl::IsFailedPrecondition(s) ? "stale" : "refused", s);
  }
  reports_.Add({{"result", "ok"}}).Increment();
  auto now_it = runs_.find(job_id);
  if (now_it != runs_.end()) *resp->mutable_job() = now_it->second.job;
  return absl::OkStatus();
}

absl::Status Orchestrator::ReportFromDataworker(const v1::Worker& worker,
                                                const v1::ReportProgressRequest& req, JobRun& run) {
  const std::string job_id = run.job.id();
  if (req.dataset_size() > 0) {
    if (run.rt.dataset_size() == 0) {
      const int64_t nb =
          run.probe
              ? spec::PlanProbeBatches(run.spec, req.dataset_size(), req.val_dataset_size()).total()
              : req.dataset_size() / std::max<int64_t>(1, run.spec.optim.batch_size);
      if (nb < 1) {
        FailLocked(job_id,
                   absl::StrCat("dataset: ", req.dataset_size(), " videos make no batch of ",
                                run.probe ? run.spec.probe.batch_size : run.spec.optim.batch_size));
        return absl::OkStatus();
      }
      if (run.probe && !run.spec.probe.val_manifest.empty() && req.val_dataset_size() < 1) {
        FailLocked(job_id, absl::StrCat("probe.val_manifest ", run.spec.probe.val_manifest,
                                        ": the dataworker read no sample from it"));
        return absl::OkStatus();
      }
      run.rt.set_dataset_size(req.dataset_size());
      run.rt.set_manifest_sha256(req.manifest_sha256());
      run.rt.set_recipe_version(req.recipe_version());
      run.rt.set_batches_per_epoch(nb);
      if (run.probe) {
        run.rt.set_val_dataset_size(req.val_dataset_size());
        run.rt.set_val_manifest_sha256(req.val_manifest_sha256());
      }
      LedgerShape shape = ShapeOf(run, options_.window_steps);
      absl::StatusOr<JobLedger> ledger = JobLedger::Restore(shape, run.ledger->Snapshot());
      if (!ledger.ok()) return ledger.status();
      run.ledger.emplace(std::move(*ledger));
      RETURN_IF_ERROR(LoadQuarantine(store_, &run.rt));
      run.dirty = true;
      LOG(INFO) << "job " << job_id << ": dataset of " << req.dataset_size() << " videos (" << nb
                << " batches per epoch), manifest sha256 " << req.manifest_sha256() << ", recipe "
                << req.recipe_version() << ", from " << worker.name();
      RETURN_IF_ERROR(PersistLocked(job_id, run));
    } else if (req.dataset_size() != run.rt.dataset_size() ||
               req.manifest_sha256() != run.rt.manifest_sha256() ||
               req.recipe_version() != run.rt.recipe_version() ||
               (run.probe && (req.val_dataset_size() != run.rt.val_dataset_size() ||
                              req.val_manifest_sha256() != run.rt.val_manifest_sha256()))) {
      identity_mismatches_.Increment();
      const int released = run.ledger->ReleaseWorker(worker.id());
      if (released > 0) leases_returned_.Add({{"reason", "worker_lost"}}).Increment(released);
      RETURN_IF_ERROR(PersistLocked(job_id, run));
      std::string theirs =
          absl::StrCat(req.dataset_size(), ", ", req.manifest_sha256(), ", ", req.recipe_version());
      std::string ours = absl::StrCat(run.rt.dataset_size(), ", ", run.rt.manifest_sha256(), ", ",
                                      run.rt.recipe_version());
      if (run.probe) {
        absl::StrAppend(&theirs, "; validation ", req.val_dataset_size(), ", ",
                        req.val_manifest_sha256());
        absl::StrAppend(&ours, "; validation ", run.rt.val_dataset_size(), ", ",
                        run.rt.val_manifest_sha256());
      }
      return absl::FailedPreconditionError(absl::StrCat("job ", job_id, ": dataworker ",
                                                        worker.name(), " reads dataset (", theirs,
                                                        "), the job's is (", ours, ")"));
    }
  }
  if (!req.quarantined().empty()) {
    const std::string sha =
        req.manifest_sha256().empty() ? run.rt.manifest_sha256() : req.manifest_sha256();
    if (sha.empty()) {
      return absl::InvalidArgumentError("quarantined videos without the manifest's sha256");
    }
    ASSIGN_OR_RETURN(int64_t added, RecordQuarantine(sha, req));
    if (added > 0 && sha == run.rt.manifest_sha256()) {
      RETURN_IF_ERROR(LoadQuarantine(store_, &run.rt));
      run.dirty = true;
      RETURN_IF_ERROR(PersistLocked(job_id, run));
    }
  }
  if (!req.failure().empty()) {
    FailLocked(job_id, absl::StrCat("dataworker ", worker.name(), ": ", req.failure()));
  }
  return absl::OkStatus();
}

absl::Status Orchestrator::ReportFromTrainer(const v1::Worker& worker,
                                             const v1::ReportProgressRequest& req, JobRun& run,
                                             v1::ReportProgressResponse* resp) {
  (void)resp;
  const std::string job_id = run.job.id();
  const int64_t generation = run.ledger->generation();
  if (req.generation() != generation) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job_id, " is at generation ",
                                                      generation, ": a report of generation ",
                                                      req.generation(), " is stale"));
  }
  if (!GangLiveLocked(run) || req.rank() < 0 || req.rank() >= run.rt.trainers_size() ||
      run.rt.trainers(req.rank()) != worker.id()) {
    return absl::FailedPreconditionError(absl::StrCat("worker ", worker.id(), " is not rank ",
                                                      req.rank(), " of job ", job_id,
                                                      " generation ", generation));
  }
  if (!req.failure().empty()) {
    RestartLocked(job_id, run,
                  absl::StrCat("trainer ", worker.name(), " (rank ", req.rank(),
                               ") failed: ", req.failure()));
    return absl::OkStatus();
  }
  const int64_t total_steps = run.probe ? run.ledger->shape().steps : run.spec.optim.steps;
  if (req.step() < 0 || req.step() > total_steps) {
    return absl::InvalidArgumentError(
        absl::StrCat("step: must be in [0, ", total_steps, "], got ", req.step()));
  }
  if (req.probe_results_size() > 0 && !run.probe) {
    return absl::InvalidArgumentError(
        absl::StrCat("probe_results: job ", job_id, " is not a probe job"));
  }
  if (req.phase().size() > 256) {
    return absl::InvalidArgumentError("phase: at most 256 bytes");
  }
  if (!req.delivered().empty()) {
    const std::vector<int64_t> gs(req.delivered().begin(), req.delivered().end());
    RETURN_IF_ERROR(run.ledger->Deliver(generation, std::max<int64_t>(0, req.step() - 1), gs));
    batches_delivered_.Increment(static_cast<double>(gs.size()));
  }
  RankStats& stats = run.ranks[req.rank()];
  stats.step = req.step();
  stats.loss = req.loss();
  stats.lr = req.lr();
  stats.clips_per_second = req.clips_per_second();
  stats.data_wait_fraction = req.data_wait_fraction();
  stats.time_ms = NowMs();
  if (req.rank() == 0) {
    if (!req.phase().empty() && req.phase() != run.rt.phase()) {
      run.rt.set_phase(req.phase());
      run.dirty = true;
    }
    if (req.target_feature_std() > 0) {
      run.rt.set_target_feature_std(req.target_feature_std());
      target_feature_std_.Add({{"job", job_id}}).Set(req.target_feature_std());
    }
  }
  if (run.job.state() == v1::SCHEDULED && (req.step() > 0 || req.probe_results_size() > 0)) {
    absl::StatusOr<v1::Job> job = jobs_->Transition(
        job_id, v1::RUNNING, "state",
        run.probe ? absl::StrCat("probing: generation ", generation, " reads its batches")
                  : absl::StrCat("training: generation ", generation, " at step ", req.step()));
    if (job.ok()) run.job = *job;
  }
  if (req.probe_results_size() > 0) return FinishProbeLocked(worker, req, run, resp);
  if (req.rank() == 0 && req.step() > run.job.step() &&
      (stats.time_ms - run.last_event_ms >=
           absl::ToInt64Milliseconds(options_.progress_event_every) ||
       req.step() == total_steps)) {
    run.last_event_ms = stats.time_ms;
    std::string message;
    if (run.probe) {
      message = absl::StrCat("features: batch ", req.step(), "/", total_steps);
    } else {
      char loss[32];
      std::snprintf(loss, sizeof(loss), "%.4g", req.loss());
      message = absl::StrCat("step ", req.step(), "/", total_steps, " loss ", loss);
      if (req.target_feature_std() > 0) {
        char std_text[32];
        std::snprintf(std_text, sizeof(std_text), "%.3g", req.target_feature_std());
        absl::StrAppend(&message, " target std ", std_text);
      }
    }
    absl::StatusOr<v1::Job> job =
        jobs_->RecordProgress(job_id, req.step(), message, run.probe ? total_steps : -1);
    if (job.ok()) run.job = *job;
  }
  return PersistLocked(job_id, run);
}

absl::Status Orchestrator::FinishProbeLocked(const v1::Worker& worker,
                                             const v1::ReportProgressRequest& req, JobRun& run,
                                             v1::ReportProgressResponse* resp) {
  const std::string job_id = run.job.id();
  const int64_t classes = run.spec.probe.num_classes.value_or(0);
  std::vector<std::string> parts;
  for (const v1::ProbeResult& r : req.probe_results()) {
    if (r.pooling() != "attentive" && r.pooling() != "average") {
      return absl::InvalidArgumentError(
          absl::StrCat("probe_results: pooling must be attentive or average, got \"",
                       r.pooling().substr(0, 32), "\""));
    }
    if (!(r.top1() >= 0 && r.top1() <= 1) || !(r.train_top1() >= 0 && r.train_top1() <= 1) ||
        r.per_class_top1_size() > classes || r.per_class_samples_size() > classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "probe_results: top1 and train_top1 must be in [0, 1] and per-class lists at most ",
          classes, " long (", r.pooling(), ")"));
    }
    char top1[32];
    std::snprintf(top1, sizeof(top1), "%.4f", r.top1());
    parts.push_back(absl::StrCat(r.pooling(), " top-1 ", top1, " on ", r.samples(), " ",
                                 r.evaluated_on(), " samples"));
  }
  const LedgerCounts counts = run.ledger->Counts();
  if (counts.pending > 0 || counts.leased > 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("job ", job_id, ": results before every batch was consumed (", counts.pending,
                     " pending, ", counts.leased, " leased)"));
  }
  const int64_t before = run.ledger->committed_below();
  RETURN_IF_ERROR(run.ledger->Commit(run.ledger->generation(), run.ledger->shape().steps - 1));
  batches_committed_.Increment(static_cast<double>(run.ledger->committed_below() - before));
  run.rt.mutable_probe_results()->CopyFrom(req.probe_results());
  run.rt.set_phase("done");
  run.dirty = true;
  RETURN_IF_ERROR(PersistLocked(job_id, run));
  for (const v1::ProbeResult& r : req.probe_results()) {
    probe_top1_.Add({{"job", job_id}, {"pooling", r.pooling()}, {"set", r.evaluated_on()}})
        .Set(r.top1());
  }
  if (run.job.state() == v1::SCHEDULED) {
    absl::StatusOr<v1::Job> running = jobs_->Transition(job_id, v1::RUNNING, "state", "probing");
    if (running.ok()) run.job = *running;
  }
  absl::StatusOr<v1::Job> done = jobs_->Transition(job_id, v1::SUCCEEDED, "probe",
                                                   absl::StrJoin(parts, "; "), [&](v1::Job* j) {
                                                     j->set_step(run.ledger->shape().steps);
                                                     j->set_total_steps(run.ledger->shape().steps);
                                                   });
  if (!done.ok()) return done.status();
  LOG(INFO) << "job " << job_id << " SUCCEEDED (trainer " << worker.name()
            << "): " << absl::StrJoin(parts, "; ");
  *resp->mutable_job() = *done;
  DropJobLocked(job_id);
  return absl::OkStatus();
}

void Orchestrator::RefreshSignalsLocked(const std::string& job_id, JobRun& run) {
  const int64_t now = NowMs();
  double wait = 0, clips = 0;
  int fresh = 0;
  for (const auto& [rank, s] : run.ranks) {
    if (now - s.time_ms > kStatsFreshMs) continue;
    wait += s.data_wait_fraction;
    clips += s.clips_per_second;
    ++fresh;
  }
  // Clips per core-second, the mean over the job's dataworkers that measured it.
  const double rate = MeanOverWorkers(*workers_, run.rt.dataworkers(), [](const v1::Worker& w) {
    return w.clips_per_core_second();
  });
  run.rt.set_data_wait_fraction(fresh ? wait / fresh : 0);
  run.rt.set_clips_per_second(clips);
  run.rt.set_dataworker_clips_per_core_second(rate);
  run.rt.set_dataworker_cores_needed(rate > 0 && clips > 0 ? clips / rate : 0);
  auto r0 = run.ranks.find(0);
  if (r0 != run.ranks.end()) {
    run.rt.set_loss(r0->second.loss);
    run.rt.set_lr(r0->second.lr);
  }
  const LedgerCounts c = run.ledger->Counts();
  run.rt.set_batches_total(run.ledger->total_batches());
  run.rt.set_batches_pending(c.pending);
  run.rt.set_batches_leased(c.leased);
  run.rt.set_batches_delivered(c.delivered);
  run.rt.set_batches_committed(c.committed);
  run.rt.set_restarts(static_cast<int32_t>(run.ledger->restarts()));
  const std::map<std::string, std::string> labels{{"job", job_id}};
  data_wait_.Add(labels).Set(run.rt.data_wait_fraction());
  cores_needed_.Add(labels).Set(run.rt.dataworker_cores_needed());
  clips_per_second_.Add(labels).Set(clips);
  ledger_batches_.Add({{"job", job_id}, {"state", "pending"}}).Set(c.pending);
  ledger_batches_.Add({{"job", job_id}, {"state", "leased"}}).Set(c.leased);
  ledger_batches_.Add({{"job", job_id}, {"state", "delivered"}}).Set(c.delivered);
  ledger_batches_.Add({{"job", job_id}, {"state", "committed"}}).Set(c.committed);
  if (!run.probe && GangLiveLocked(run) && run.last_checkpoint_ms > 0) {
    checkpoint_age_.Add(labels).Set(static_cast<double>(now - run.last_checkpoint_ms) / 1000.0);
    // Step time from the consumption rate: M ranks of B clips per step.
    const double step_s =
        clips > 0 ? static_cast<double>(run.spec.optim.batch_size) * run.rt.trainers_size() / clips
                  : 0;
    checkpoint_expected_.Add(labels).Set(step_s * run.spec.checkpoint.every_steps);
  }
}

void Orchestrator::Decorate(v1::Job* job) {
  absl::MutexLock lock(&mu_);
  auto it = runs_.find(job->id());
  if (it != runs_.end()) {
    RefreshSignalsLocked(it->first, it->second);
    *job->mutable_runtime() = it->second.rt;
    return;
  }
  // A finished (or not yet picked up) job: what was persisted.
  v1::JobRuntime* rt = job->mutable_runtime();
  if (auto stored = store_->GetJobRuntime(job->id()); stored.ok() && stored->has_value()) {
    *rt = **stored;  // with the data-plane numbers last measured while it ran
    if (absl::Status s = LoadQuarantine(store_, rt); !s.ok()) {
      LOG(WARNING) << "job " << job->id() << ": quarantine list: " << s;
    }
  }
  if (auto ledger = store_->GetLedger(job->id()); ledger.ok() && ledger->has_value()) {
    absl::StatusOr<JobLedger> l = JobLedger::Restore((*ledger)->shape, (*ledger)->snapshot);
    if (l.ok()) {
      const LedgerCounts c = l->Counts();
      rt->set_batches_total(l->total_batches());
      rt->set_batches_pending(c.pending);
      rt->set_batches_leased(c.leased);
      rt->set_batches_delivered(c.delivered);
      rt->set_batches_committed(c.committed);
      rt->set_restarts(static_cast<int32_t>(l->restarts()));
    }
  }
  rt->set_max_restarts(options_.max_restarts);
}

}  // namespace vjepa::coordinator
