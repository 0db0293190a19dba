#include "services/dataworker/data_service.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"
#include "glog/logging.h"
#include "services/dataworker/video/bad_video.h"

namespace vjepa::dataworker {
namespace {

std::string CodeReason(const absl::Status& s) {
  return absl::AsciiStrToLower(StatusCodeName(s.code()));
}

std::string KeyName(const std::tuple<std::string, int64_t, int32_t>& key) {
  return absl::StrCat("stream (job ", std::get<0>(key), ", generation ", std::get<1>(key),
                      ", rank ", std::get<2>(key), ")");
}

bool Deterministic(const absl::Status& s) {
  return s.code() == absl::StatusCode::kInvalidArgument ||
         s.code() == absl::StatusCode::kNotFound ||
         s.code() == absl::StatusCode::kPermissionDenied ||
         s.code() == absl::StatusCode::kFailedPrecondition;
}

}  // namespace

DataService::DataService(DataServiceOptions options, std::shared_ptr<ProducerFactory> factory,
                         DataworkerMetrics* metrics)
    : options_(std::move(options)),
      max_leases_(options_.max_leases > 0 ? options_.max_leases
                                          : 2 * std::max(1, options_.stream_buffer_batches) *
                                                std::max(1, options_.threads)),
      factory_(std::move(factory)),
      metrics_(metrics) {}

DataService::~DataService() { Stop(); }

void DataService::SetReportSink(ReportSink* sink) {
  absl::MutexLock lock(&mu_);
  sink_ = sink;
}

absl::Status DataService::Start() {
  if (options_.threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--threads: must be at least 1, got ", options_.threads));
  }
  if (options_.stream_buffer_batches < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--stream_buffer_batches: must be at least 1, got ", options_.stream_buffer_batches));
  }
  {
    absl::MutexLock lock(&mu_);
    if (started_) return absl::FailedPreconditionError("data service already started");
    started_ = true;
  }
  if (options_.standalone) {
    const StandaloneJob& job = *options_.standalone;
    if (job.world_size < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("--world_size: must be at least 1, got ", job.world_size));
    }
    if (job.job_id.empty()) return absl::InvalidArgumentError("--job_id: must not be empty");
    if (absl::Status s = SetUpJob(job.job_id, job.spec, job.world_size, 0); !s.ok()) {
      return absl::Status(s.code(), absl::StrCat("job ", job.job_id, ": ", s.message()));
    }
  }
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { ProducerLoop(); });
  return absl::OkStatus();
}

absl::Status DataService::SetUpJob(const std::string& job_id, const spec::JobSpec& spec,
                                   int world_size, int64_t generation) {
  absl::StatusOr<std::shared_ptr<BatchProducer>> producer = factory_->Create(job_id, spec);
  if (!producer.ok()) return producer.status();
  const bool probe = spec.kind == spec::JobKind::kProbe;
  if ((*producer)->batches_per_epoch() < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset of ", (*producer)->identity().size, " videos holds no batch of ",
                     probe ? spec.probe.batch_size : spec.optim.batch_size));
  }
  (*producer)->SetQuarantineListener(
      [this, job_id](const QuarantinedVideo& video) { OnQuarantine(job_id, video); });
  const DatasetIdentity identity = (*producer)->identity();
  ReportSink* sink = nullptr;
  int64_t report_generation = 0;
  {
    absl::MutexLock lock(&mu_);
    Job& job = jobs_[job_id];
    if (job.producer) return absl::OkStatus();  // set up meanwhile
    job.producer = *std::move(producer);
    job.batches_per_epoch = job.producer->batches_per_epoch();
    job.world_size = world_size;
    job.manifest_sha256 = identity.manifest_sha256;
    job.train_size = identity.size;
    job.val_size = identity.val_size;
    job.val_manifest_sha256 = identity.val_manifest_sha256;
    job.total_batches = probe ? job.batches_per_epoch : 0;
    // The generation itself moves with streams and leases (AdvanceGenerationLocked).
    const int64_t current = std::max(job.generation, generation);
    if (sink_ != nullptr && job.identity_reported_generation < current) {
      job.identity_reported_generation = current;
      sink = sink_;
      report_generation = current;
    }
    work_cv_.SignalAll();
  }
  LOG(INFO) << "job " << job_id << ": " << identity.size << " videos, "
            << (identity.size > 0 ? "manifest sha256 " + identity.manifest_sha256 : "")
            << (identity.val_size > 0
                    ? absl::StrCat(", validation manifest of ", identity.val_size,
                                   " videos, sha256 ", identity.val_manifest_sha256)
                    : "")
            << ", recipe " << identity.recipe_version;
  if (sink != nullptr) {
    v1::ReportProgressRequest report;
    report.set_job_id(job_id);
    report.set_generation(report_generation);
    report.set_dataset_size(identity.size);
    report.set_manifest_sha256(identity.manifest_sha256);
    report.set_recipe_version(identity.recipe_version);
    report.set_val_dataset_size(identity.val_size);
    report.set_val_manifest_sha256(identity.val_manifest_sha256);
    sink->Report(std::move(report));
  }
  return absl::OkStatus();
}

std::vector<std::string> DataService::Shutdown() {
  Wakers wakers;
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    shutting_down_ = true;
    for (auto& [id, conn] : conns_) {
      EndConnectionLocked(conn, absl::UnavailableError("dataworker shutting down"), &wakers);
    }
    while (!streams_.empty()) EraseStreamLocked(streams_.begin(), /*return_leases=*/true, "");
    ids = std::move(returned_);
    returned_.clear();
    work_cv_.SignalAll();
  }
  Wake(wakers);
  return ids;
}

void DataService::Stop() {
  Shutdown();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void DataService::Wake(Wakers& wakers) {
  for (auto& w : wakers) w();
  wakers.clear();
}

// ---------------------------------------------------------------------------------------------
// Production.

bool DataService::HasWorkLocked(Stream& stream) {
  if (static_cast<int>(stream.slots.size()) >= options_.stream_buffer_batches) return false;
  auto job = jobs_.find(std::get<0>(stream.key));
  if (job == jobs_.end() || !job->second.producer) return false;
  if (options_.standalone) {
    const int64_t total = job->second.total_batches;
    return stream.conn != 0 && (total == 0 || stream.next_g < total);
  }
  const int64_t now_ms = absl::ToUnixMillis(options_.now());
  for (auto it = stream.pending.begin(); it != stream.pending.end();) {
    const int64_t deadline = it->second.deadline_ms();
    if (deadline > 0 && deadline <= now_ms) {
      LOG(WARNING) << "lease " << it->second.lease_id() << " (g " << it->first
                   << ") expired before it was produced";
      metrics_->LeaseFailed("expired");
      it = stream.pending.erase(it);
    } else {
      ++it;
    }
  }
  return !stream.pending.empty();
}

bool DataService::AnyWorkLocked() {
  for (auto& [key, stream] : streams_) {
    if (HasWorkLocked(stream)) return true;
  }
  return false;
}

std::optional<DataService::Claim> DataService::ClaimLocked() {
  if (streams_.empty()) return std::nullopt;
  // Round robin over the streams, starting after the last one served.
  auto start = rr_cursor_ ? streams_.upper_bound(*rr_cursor_) : streams_.begin();
  if (start == streams_.end()) start = streams_.begin();
  auto it = start;
  do {
    Stream& stream = it->second;
    if (HasWorkLocked(stream)) {
      rr_cursor_ = it->first;
      Job& job = jobs_[std::get<0>(stream.key)];
      auto slot = std::make_shared<Slot>();
      slot->key = stream.key;
      if (options_.standalone) {
        slot->global_index = stream.next_g;
        stream.next_g += job.world_size;
        slot->epoch = slot->global_index / job.batches_per_epoch;
        slot->batch_index = slot->global_index % job.batches_per_epoch;
      } else {
        auto first = stream.pending.begin();
        slot->lease = std::move(first->second);
        stream.pending.erase(first);
        slot->global_index = slot->lease->global_index();
        if (slot->lease->dataset_size() != 0) {
          slot->epoch = slot->lease->epoch();
          slot->batch_index = slot->lease->batch_index();
        } else {
          // The coordinator does not know the dataset yet (this worker reports it): the
          // position comes from the manifest this worker read.
          slot->epoch = slot->global_index / job.batches_per_epoch;
          slot->batch_index = slot->global_index % job.batches_per_epoch;
        }
      }
      stream.slots.push_back(slot);
      return Claim{slot, job.producer};
    }
    if (++it == streams_.end()) it = streams_.begin();
  } while (it != start);
  return std::nullopt;
}

void DataService::ProducerLoop() {
  while (true) {
    std::optional<Claim> claim;
    {
      absl::MutexLock lock(&mu_);
      while (!shutting_down_ && !(claim = ClaimLocked())) {
        // Leases expire by the clock, so waiting is bounded when any are queued.
        work_cv_.WaitWithTimeout(&mu_, absl::Seconds(1));
      }
      if (shutting_down_) return;
    }
    const absl::Time t0 = absl::Now();
    absl::StatusOr<ProducedBatch> result =
        claim->producer->Produce(claim->slot->epoch, claim->slot->batch_index);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - t0);
    if (result.ok()) {
      metrics_->BatchProduced(*result, seconds);
    } else {
      metrics_->producer_busy_seconds.Increment(seconds);
    }
    Complete(claim->slot, std::move(result));
  }
}

void DataService::Complete(const std::shared_ptr<Slot>& slot,
                           absl::StatusOr<ProducedBatch> result) {
  Wakers wakers;
  {
    absl::MutexLock lock(&mu_);
    if (slot->orphaned) return;
    auto it = streams_.find(slot->key);
    if (it == streams_.end()) return;  // not reached: erasing a stream orphans its slots
    Stream& stream = it->second;
    if (!result.ok()) {
      LOG(WARNING) << KeyName(slot->key) << ": batch g " << slot->global_index << " (epoch "
                   << slot->epoch << ", batch " << slot->batch_index
                   << ") failed: " << result.status();
      if (slot->lease) {
        // The lease fails; another worker (or this one, later) produces the same bytes.
        auto pos = std::find(stream.slots.begin(), stream.slots.end(), slot);
        if (pos != stream.slots.end()) stream.slots.erase(pos);
        ReturnLeaseLocked(*slot->lease, CodeReason(result.status()));
      } else {
        slot->ready = true;
        slot->status = absl::Status(
            result.status().code(),
            absl::StrCat("batch g ", slot->global_index, ": ", result.status().message()));
      }
    } else {
      auto batch = std::make_unique<ProducedBatch>(*std::move(result));
      v1::BatchHeader& h = batch->header;
      h.set_job_id(std::get<0>(slot->key));
      h.set_generation(std::get<1>(slot->key));
      h.set_global_index(slot->global_index);
      if (slot->lease) h.set_lease_id(slot->lease->lease_id());
      slot->batch = std::move(batch);
      slot->ready = true;
      ++buffered_;
      metrics_->buffered_batches.Set(static_cast<double>(buffered_));
    }
    if (stream.conn != 0) TakeWakerLocked(stream.conn, &wakers);
    work_cv_.SignalAll();
  }
  Wake(wakers);
}

// ---------------------------------------------------------------------------------------------
// Leases.

void DataService::ReturnLeaseLocked(const v1::BatchLease& lease, const std::string& reason) {
  metrics_->LeaseFailed(reason);
  returned_.push_back(lease.lease_id());
}

void DataService::AddLeases(const v1::LeaseBatchesResponse& response) {
  metrics_->leases_received.Increment(response.leases_size());
  // Jobs new to this worker are set up first, outside the lock (loading a manifest).
  std::vector<std::string> new_jobs;
  {
    absl::MutexLock lock(&mu_);
    for (const v1::BatchLease& lease : response.leases()) {
      auto job = jobs_.find(lease.job_id());
      if ((job == jobs_.end() || !job->second.producer) &&
          std::find(new_jobs.begin(), new_jobs.end(), lease.job_id()) == new_jobs.end()) {
        new_jobs.push_back(lease.job_id());
      }
    }
  }
  absl::flat_hash_map<std::string, absl::Status> setup;
  for (const std::string& job_id : new_jobs) {
    int64_t generation = 0;
    for (const v1::BatchLease& lease : response.leases()) {
      if (lease.job_id() == job_id) generation = std::max(generation, lease.generation());
    }
    absl::Status s;
    bool job_fault = true;  // the job's own spec or data, not this worker or the coordinator
    if (response.spec_yaml().empty()) {
      s = absl::InvalidArgumentError("lease without the job's spec");
      job_fault = false;
    } else if (absl::StatusOr<spec::JobSpec> spec = spec::ParseJobSpec(response.spec_yaml());
               !spec.ok()) {
      s = spec.status();
    } else {
      s = SetUpJob(job_id, *spec, 1, generation);
    }
    if (!s.ok()) {
      LOG(ERROR) << "job " << job_id << ": cannot produce its batches: " << s;
      ReportSink* sink;
      {
        absl::MutexLock lock(&mu_);
        sink = sink_;
      }
      if (sink != nullptr && job_fault && Deterministic(s)) {
        v1::ReportProgressRequest report;
        report.set_job_id(job_id);
        report.set_generation(generation);
        report.set_failure(absl::StrCat("dataworker: ", s.message()));
        sink->Report(std::move(report));
      }
    }
    setup[job_id] = s;
  }

  Wakers wakers;
  {
    absl::MutexLock lock(&mu_);
    for (const v1::BatchLease& lease : response.leases()) {
      if (shutting_down_) {
        returned_.push_back(lease.lease_id());
        continue;
      }
      if (auto s = setup.find(lease.job_id()); s != setup.end() && !s->second.ok()) {
        ReturnLeaseLocked(lease, "job");
        continue;
      }
      Job& job = jobs_[lease.job_id()];
      // A lease that names the dataset (the coordinator has its identity, train and
      // validation manifests together) must name the one this worker read.
      if (lease.dataset_size() != 0 && !job.manifest_sha256.empty() &&
          (lease.manifest_sha256() != job.manifest_sha256 ||
           lease.dataset_size() != job.train_size || lease.val_dataset_size() != job.val_size ||
           lease.val_manifest_sha256() != job.val_manifest_sha256)) {
        LOG(WARNING) << "lease " << lease.lease_id() << " of job " << lease.job_id()
                     << " names dataset (" << lease.dataset_size() << ", "
                     << lease.manifest_sha256() << "; validation " << lease.val_dataset_size()
                     << ", " << lease.val_manifest_sha256() << "), this worker reads ("
                     << job.train_size << ", " << job.manifest_sha256 << "; validation "
                     << job.val_size << ", " << job.val_manifest_sha256 << "): refused";
        ReturnLeaseLocked(lease, "identity");
        continue;
      }
      if (!AdvanceGenerationLocked(lease.job_id(), lease.generation(), &wakers)) {
        metrics_->LeaseDropped("stale");
        continue;
      }
      StreamKey key{lease.job_id(), lease.generation(), lease.rank()};
      Stream& stream = streams_[key];
      stream.key = key;
      stream.pending[lease.global_index()] = lease;
    }
    work_cv_.SignalAll();
  }
  Wake(wakers);
}

int64_t DataService::HeldLeasesLocked() const {
  int64_t held = 0;
  for (const auto& [key, stream] : streams_) {
    held += static_cast<int64_t>(stream.pending.size());
    for (const auto& slot : stream.slots) held += slot->lease ? 1 : 0;
  }
  for (const auto& [id, conn] : conns_) held += conn.holding ? 1 : 0;
  return held;
}

int DataService::FreeLeaseCapacity() const {
  absl::MutexLock lock(&mu_);
  if (shutting_down_ || options_.standalone) return 0;
  return static_cast<int>(std::max<int64_t>(0, max_leases_ - HeldLeasesLocked()));
}

std::vector<std::string> DataService::TakeReturnedLeases() {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> ids = std::move(returned_);
  returned_.clear();
  return ids;
}

bool DataService::AdvanceGenerationLocked(const std::string& job_id, int64_t generation,
                                          Wakers* wakers) {
  Job& job = jobs_[job_id];
  if (generation < job.generation) return false;
  if (generation == job.generation) return true;
  job.generation = generation;
  for (auto it = streams_.begin(); it != streams_.end();) {
    auto next = std::next(it);
    if (std::get<0>(it->first) == job_id && std::get<1>(it->first) < generation) {
      if (it->second.conn != 0) {
        EndConnectionLocked(conns_[it->second.conn],
                            absl::FailedPreconditionError(absl::StrCat(
                                "generation ", std::get<1>(it->first), " of job ", job_id,
                                " is stale: the job is at generation ", generation)),
                            wakers);
      }
      EraseStreamLocked(it, /*return_leases=*/false, "stale");
    }
    it = next;
  }
  return true;
}

void DataService::EraseStreamLocked(std::map<StreamKey, Stream>::iterator it, bool return_leases,
                                    const char* lease_reason) {
  Stream& stream = it->second;
  for (auto& [g, lease] : stream.pending) {
    if (return_leases) {
      returned_.push_back(lease.lease_id());
    } else {
      metrics_->LeaseDropped(lease_reason);
    }
  }
  for (auto& slot : stream.slots) {
    slot->orphaned = true;
    if (slot->ready && slot->batch) --buffered_;
    slot->batch.reset();
    if (slot->lease) {
      if (return_leases) {
        returned_.push_back(slot->lease->lease_id());
      } else {
        metrics_->LeaseDropped(lease_reason);
      }
    }
  }
  metrics_->buffered_batches.Set(static_cast<double>(buffered_));
  if (stream.conn != 0 && !return_leases) {
    // A stale stream: what its call is writing is void. (When shutting down, the call's lease is
    // either delivered or, abandoned, handed back.)
    if (auto c = conns_.find(stream.conn); c != conns_.end()) c->second.holding.reset();
  }
  if (rr_cursor_ && *rr_cursor_ == it->first) rr_cursor_.reset();
  streams_.erase(it);
}

// ---------------------------------------------------------------------------------------------
// Quarantine.

void DataService::OnQuarantine(const std::string& job_id, const QuarantinedVideo& video) {
  const std::string reason(BadVideoReasonName(video.reason));
  ReportSink* sink = nullptr;
  int64_t generation = 0;
  std::string manifest_sha256;  // the job's dataset, which the coordinator keeps quarantines by
  {
    absl::MutexLock lock(&mu_);
    auto job = jobs_.find(job_id);
    if (job != jobs_.end()) manifest_sha256 = job->second.manifest_sha256;
    std::string sha = manifest_sha256;
    if (job != jobs_.end() && job->second.val_size > 0 && video.sample >= job->second.train_size) {
      // A probe job's validation video (sample N_train + row): the pair of manifests names it.
      absl::StrAppend(&sha, "+", job->second.val_manifest_sha256);
    }
    if (!quarantined_.insert({sha, video.sample}).second) return;
    generation = job == jobs_.end() ? 0 : job->second.generation;
    sink = sink_;
  }
  LOG(WARNING) << "job " << job_id << ": quarantined video " << video.path << " (row "
               << video.sample << "): " << reason << ": " << video.detail;
  metrics_->BadVideo(reason);
  if (sink != nullptr) {
    v1::ReportProgressRequest report;
    report.set_job_id(job_id);
    report.set_generation(generation);
    // Named so that a report landing after the job ended is still recorded for the dataset.
    report.set_manifest_sha256(manifest_sha256);
    v1::QuarantinedVideo* q = report.add_quarantined();
    q->set_sample(video.sample);
    q->set_path(video.path);
    q->set_reason(reason);
    q->set_detail(video.detail);
    sink->Report(std::move(report));
  }
}

// ---------------------------------------------------------------------------------------------
// Streams.

absl::StatusOr<std::unique_ptr<StreamHandle>> DataService::OpenStream(
    const v1::StreamBatchesRequest& request) {
  if (request.job_id().empty()) return absl::InvalidArgumentError("job_id: must be set");
  if (request.generation() < 0 || request.rank() < 0 || request.from_global_index() < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "generation, rank and from_global_index must be >= 0, got ", request.generation(), ", ",
        request.rank(), ", ", request.from_global_index()));
  }
  Wakers wakers;
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return absl::UnavailableError("dataworker shutting down");
    if (options_.standalone) {
      const StandaloneJob& standalone = *options_.standalone;
      if (request.job_id() != standalone.job_id) {
        return absl::NotFoundError(absl::StrCat("job ", request.job_id(),
                                                " not served here (this worker serves job ",
                                                standalone.job_id, ")"));
      }
      if (request.rank() >= standalone.world_size) {
        return absl::InvalidArgumentError(absl::StrCat(
            "rank ", request.rank(), ": must be below the world size ", standalone.world_size));
      }
    }
    if (!AdvanceGenerationLocked(request.job_id(), request.generation(), &wakers)) {
      return absl::FailedPreconditionError(
          absl::StrCat("generation ", request.generation(), " of job ", request.job_id(),
                       " is stale: the job is at generation ", jobs_[request.job_id()].generation));
    }
    StreamKey key{request.job_id(), request.generation(), request.rank()};
    auto it = streams_.find(key);
    if (it != streams_.end() && it->second.conn != 0) {
      EndConnectionLocked(conns_[it->second.conn],
                          absl::AbortedError(absl::StrCat(
                              KeyName(key), ": replaced by a newer StreamBatches call")),
                          &wakers);
      it->second.conn = 0;
    }
    if (options_.standalone) {
      // The stream starts over at `from`.
      if (it != streams_.end()) EraseStreamLocked(it, false, "consumed");
      it = streams_.emplace(key, Stream{}).first;
      it->second.key = key;
      it->second.next_g = request.from_global_index();
    } else {
      if (it == streams_.end()) {
        it = streams_.emplace(key, Stream{}).first;
        it->second.key = key;
      }
      // What the trainer has already consumed is not sent again.
      Stream& stream = it->second;
      for (auto p = stream.pending.begin();
           p != stream.pending.end() && p->first < request.from_global_index();) {
        metrics_->LeaseDropped("consumed");
        p = stream.pending.erase(p);
      }
      for (auto s = stream.slots.begin(); s != stream.slots.end();) {
        if ((*s)->global_index < request.from_global_index()) {
          (*s)->orphaned = true;
          if ((*s)->ready && (*s)->batch) --buffered_;
          metrics_->LeaseDropped("consumed");
          s = stream.slots.erase(s);
        } else {
          ++s;
        }
      }
      metrics_->buffered_batches.Set(static_cast<double>(buffered_));
    }
    id = next_conn_++;
    Connection& conn = conns_[id];
    conn.key = key;
    it->second.conn = id;
    metrics_->active_streams.Set(static_cast<double>(conns_.size()));
    work_cv_.SignalAll();
  }
  Wake(wakers);
  return std::unique_ptr<StreamHandle>(new StreamHandle(this, id));
}

void DataService::EndConnectionLocked(Connection& conn, absl::Status status, Wakers* wakers) {
  if (!conn.end) conn.end = std::move(status);
  if (conn.waker) {
    wakers->push_back(std::move(conn.waker));
    conn.waker = nullptr;
  }
}

void DataService::TakeWakerLocked(uint64_t conn_id, Wakers* wakers) {
  auto c = conns_.find(conn_id);
  if (c == conns_.end() || !c->second.waker) return;
  wakers->push_back(std::move(c->second.waker));
  c->second.waker = nullptr;
}

DataService::NextResult DataService::TakeNext(uint64_t conn_id,
                                              std::unique_ptr<ProducedBatch>* batch,
                                              absl::Status* end, std::function<void()> wake) {
  absl::MutexLock lock(&mu_);
  auto c = conns_.find(conn_id);
  if (c == conns_.end()) {
    *end = absl::InternalError("stream closed");
    return NextResult::kEnded;
  }
  Connection& conn = c->second;
  if (conn.end) {
    *end = *conn.end;
    return NextResult::kEnded;
  }
  auto it = streams_.find(conn.key);
  if (it == streams_.end() || it->second.conn != conn_id) {
    *end = absl::InternalError("stream gone");
    return NextResult::kEnded;
  }
  Stream& stream = it->second;
  if (stream.slots.empty() && options_.standalone) {
    auto job = jobs_.find(std::get<0>(conn.key));
    if (job != jobs_.end() && job->second.total_batches > 0 &&
        stream.next_g >= job->second.total_batches) {
      // A probe job's stream has sent every batch of its rank.
      conn.end = absl::OkStatus();
      *end = absl::OkStatus();
      return NextResult::kEnded;
    }
  }
  if (!stream.slots.empty() && stream.slots.front()->ready) {
    std::shared_ptr<Slot> slot = std::move(stream.slots.front());
    stream.slots.erase(stream.slots.begin());
    work_cv_.SignalAll();  // room for one more
    if (!slot->status.ok()) {
      conn.end = slot->status;
      *end = slot->status;
      return NextResult::kEnded;
    }
    --buffered_;
    metrics_->buffered_batches.Set(static_cast<double>(buffered_));
    conn.holding = slot->lease;
    conn.holding_batch = true;
    *batch = std::move(slot->batch);
    return NextResult::kReady;
  }
  conn.waker = std::move(wake);
  return NextResult::kWaiting;
}

void DataService::Delivered(uint64_t conn_id, int64_t bytes) {
  metrics_->batches_sent.Increment();
  metrics_->bytes_sent.Increment(static_cast<double>(bytes));
  absl::MutexLock lock(&mu_);
  auto c = conns_.find(conn_id);
  if (c == conns_.end()) return;
  c->second.holding.reset();
  c->second.holding_batch = false;
}

void DataService::Abandoned(uint64_t conn_id) {
  absl::MutexLock lock(&mu_);
  auto c = conns_.find(conn_id);
  if (c == conns_.end()) return;
  Connection& conn = c->second;
  conn.holding_batch = false;
  if (!conn.holding) return;
  v1::BatchLease lease = std::move(*conn.holding);
  conn.holding.reset();
  auto it = streams_.find(conn.key);
  if (shutting_down_ || it == streams_.end()) {
    returned_.push_back(lease.lease_id());
    return;
  }
  // Produced again (same bytes) for the trainer's next call.
  it->second.pending[lease.global_index()] = std::move(lease);
  work_cv_.SignalAll();
}

void DataService::Cancel(uint64_t conn_id) {
  Wakers wakers;
  {
    absl::MutexLock lock(&mu_);
    auto c = conns_.find(conn_id);
    if (c == conns_.end()) return;
    EndConnectionLocked(c->second, absl::CancelledError("the trainer cancelled the stream"),
                        &wakers);
  }
  Wake(wakers);
}

void DataService::Close(uint64_t conn_id) {
  Abandoned(conn_id);
  absl::MutexLock lock(&mu_);
  auto c = conns_.find(conn_id);
  if (c == conns_.end()) return;
  auto it = streams_.find(c->second.key);
  conns_.erase(c);
  metrics_->active_streams.Set(static_cast<double>(conns_.size()));
  if (it == streams_.end() || it->second.conn != conn_id) return;
  it->second.conn = 0;
  // A standalone stream lives as long as its call; a lease stream while it holds leases.
  if (options_.standalone || (it->second.pending.empty() && it->second.slots.empty())) {
    EraseStreamLocked(it, /*return_leases=*/shutting_down_, "consumed");
  }
  work_cv_.SignalAll();
}

// ---------------------------------------------------------------------------------------------
// Introspection.

int64_t DataService::buffered_batches() const {
  absl::MutexLock lock(&mu_);
  return buffered_;
}

int64_t DataService::held_leases() const {
  absl::MutexLock lock(&mu_);
  return HeldLeasesLocked();
}

int DataService::active_streams() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(conns_.size());
}

std::string DataService::StatusLine() const {
  absl::MutexLock lock(&mu_);
  return absl::StrCat("streams ", conns_.size(), ", buffered batches ", buffered_, ", leases ",
                      HeldLeasesLocked(), shutting_down_ ? ", shutting down" : "");
}

// ---------------------------------------------------------------------------------------------

StreamHandle::~StreamHandle() { Close(); }

StreamHandle::NextResult StreamHandle::TakeNext(std::unique_ptr<ProducedBatch>* batch,
                                                absl::Status* end, std::function<void()> wake) {
  return service_->TakeNext(id_, batch, end, std::move(wake));
}

void StreamHandle::Delivered(int64_t bytes) { service_->Delivered(id_, bytes); }
void StreamHandle::Abandoned() { service_->Abandoned(id_); }
void StreamHandle::Cancel() { service_->Cancel(id_); }

void StreamHandle::Close() {
  if (closed_) return;
  closed_ = true;
  service_->Close(id_);
}

}  // namespace vjepa::dataworker
