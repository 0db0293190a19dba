#include "services/coordinator/checkpoint_store.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/spec/job_spec.h"
#include "common/status/status_macros.h"
#include "glog/logging.h"
#include "services/trainer/checkpoint/file_io.h"
#include "services/trainer/checkpoint/safetensors_header.h"
#include "services/trainer/checkpoint/sha256.h"

namespace vjepa::coordinator {
namespace {

namespace fs = std::filesystem;

absl::Status ToAbsl(const core::Status& s) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.code()), s.message());
}

bool Uploadable(v1::JobState state) {
  return state == v1::PENDING || state == v1::SCHEDULED || state == v1::RUNNING ||
         state == v1::RESTARTING;
}

std::string BlobPath(const std::string& job_id, int64_t step, int64_t generation) {
  return absl::StrCat(job_id, "/", step, "-", generation, ".safetensors");
}

v1::Checkpoint ToProto(const CheckpointRow& r) {
  v1::Checkpoint c;
  c.set_id(r.id);
  c.set_job_id(r.job_id);
  c.set_step(r.step);
  c.set_generation(r.generation);
  c.set_size_bytes(r.size_bytes);
  c.set_sha256(r.sha256);
  c.set_create_time_ms(r.create_time_ms);
  c.set_final(r.final);
  return c;
}

// Job ids are server-made ("j-..."); anything else must not reach a path.
absl::Status CheckJobId(const std::string& id) {
  if (id.empty()) return absl::InvalidArgumentError("job_id: must not be empty");
  for (char c : id) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') {
      return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

CheckpointStore::CheckpointStore(Store* store, JobManager* jobs, metrics::Registry& registry,
                                 CheckpointStoreOptions options, Clock now)
    : store_(store),
      jobs_(jobs),
      options_(std::move(options)),
      now_(std::move(now)),
      uploads_(metrics::AddCounter(registry, "vjepa_coordinator_checkpoint_uploads_total",
                                   "UploadCheckpoint calls by result: ok, deduplicated, "
                                   "digest_mismatch, refused.")),
      bytes_received_(metrics::AddCounter(registry,
                                          "vjepa_coordinator_checkpoint_received_bytes_total",
                                          "Checkpoint bytes received by UploadCheckpoint.")
                          .Add({})),
      pulls_(metrics::AddCounter(registry, "vjepa_coordinator_checkpoint_pulls_total",
                                 "PullCheckpoint streams started.")
                 .Add({})),
      bytes_sent_(metrics::AddCounter(registry, "vjepa_coordinator_checkpoint_sent_bytes_total",
                                      "Checkpoint bytes sent by PullCheckpoint.")
                      .Add({})),
      stored_(metrics::AddGauge(registry, "vjepa_coordinator_checkpoints_stored",
                                "Checkpoints in the store now.")
                  .Add({})),
      retention_deleted_(
          metrics::AddCounter(registry, "vjepa_coordinator_checkpoint_retention_deletions_total",
                              "Checkpoints deleted by retention (keep_last, keep_every).")
              .Add({})) {
  for (const char* result : {"ok", "deduplicated", "digest_mismatch", "refused"}) {
    uploads_.Add({{"result", result}});
  }
}

void CheckpointStore::SetOnCheckpointCommitted(CheckpointCommittedHook hook, absl::Mutex* hook_mu) {
  absl::MutexLock lock(&mu_);
  on_committed_ = std::move(hook);
  hook_mu_ = hook_mu;
}

void CheckpointStore::SetWorkerAccess(WorkerAccess access) {
  absl::MutexLock lock(&access_mu_);
  worker_access_ = std::move(access);
}

absl::Status CheckpointStore::Init() {
  absl::MutexLock lock(&mu_);
  std::error_code ec;
  fs::create_directories(options_.root, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("checkpoint dir ", options_.root, ": cannot create: ", ec.message()));
  }
  ASSIGN_OR_RETURN(std::vector<CheckpointRow> rows, store_->ListCheckpoints(""));
  std::set<std::string> indexed;
  std::vector<std::string> missing;
  for (const CheckpointRow& r : rows) {
    if (fs::is_regular_file(fs::path(options_.root) / r.path, ec)) {
      indexed.insert(r.path);
    } else {
      LOG(WARNING) << "checkpoint " << r.id << ": file " << options_.root << "/" << r.path
                   << " is missing; removing it from the index";
      missing.push_back(r.id);
    }
  }
  if (!missing.empty()) RETURN_IF_ERROR(store_->DeleteCheckpoints(missing));
  // Everything else under the root is an orphan: a blob renamed before its index row was
  // committed, one whose row was deleted before the file, or a temp file of an upload.
  for (const auto& job_dir : fs::directory_iterator(options_.root, ec)) {
    const std::string job = job_dir.path().filename().string();
    if (!job_dir.is_directory()) {
      LOG(WARNING) << "checkpoint dir: removing stray file " << job_dir.path().string();
      fs::remove(job_dir.path(), ec);
      continue;
    }
    bool empty = true;
    for (const auto& file : fs::directory_iterator(job_dir.path(), ec)) {
      const std::string rel = job + "/" + file.path().filename().string();
      if (indexed.count(rel)) {
        empty = false;
        continue;
      }
      LOG(WARNING) << "checkpoint dir: removing orphan " << file.path().string();
      fs::remove_all(file.path(), ec);
    }
    if (empty) fs::remove(job_dir.path(), ec);
  }
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("checkpoint dir ", options_.root, ": cannot reconcile: ", ec.message()));
  }
  RefreshStoredLocked();
  return absl::OkStatus();
}

void CheckpointStore::RefreshStoredLocked() {
  auto rows = store_->ListCheckpoints("");
  if (rows.ok()) stored_.Set(static_cast<double>(rows->size()));
}

absl::Status CheckpointStore::Refuse(absl::Status s, const char* result) {
  uploads_.Add({{"result", result}}).Increment();
  return s;
}

absl::StatusOr<v1::Job> CheckpointStore::GetJobFor(const rpc::Principal& caller,
                                                   const std::string& id,
                                                   const std::string& worker_id) {
  RETURN_IF_ERROR(CheckJobId(id));
  ASSIGN_OR_RETURN(std::optional<v1::Job> job, store_->GetJob(id));
  // Another user's job answers exactly like a missing one; admins see every job, workers the
  // jobs they are assigned to.
  if (!job.has_value() || (caller.role == rpc::Role::kUser && job->owner() != caller.name)) {
    return absl::NotFoundError(absl::StrCat("job ", id, " not found"));
  }
  WorkerAccess access;
  {
    absl::MutexLock lock(&access_mu_);
    access = worker_access_;
  }
  if (caller.role == rpc::Role::kWorker && access && !access(caller, worker_id, id)) {
    return absl::NotFoundError(
        absl::StrCat("job ", id, " not found (worker \"", worker_id, "\" is not assigned to it)"));
  }
  return *job;
}

absl::Status CheckpointStore::CheckUploadable(const v1::Job& job, int64_t generation) const {
  if (!Uploadable(job.state())) {
    return absl::FailedPreconditionError(absl::StrCat("job ", job.id(), " is ",
                                                      v1::JobState_Name(job.state()),
                                                      ": it takes no more checkpoints"));
  }
  if (generation != job.generation()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job.id(), ": upload of generation ", generation, " but the job is at generation ",
        job.generation(), generation < job.generation() ? " (a stale trainer)" : ""));
  }
  return absl::OkStatus();
}

absl::Status CheckpointStore::UploadCheckpoint(
    const rpc::Principal& caller, const std::function<bool(v1::UploadCheckpointRequest*)>& next,
    v1::UploadCheckpointResponse* resp) {
  v1::UploadCheckpointRequest msg;
  if (!next(&msg) || !msg.has_header()) {
    return Refuse(absl::InvalidArgumentError("the first message must be the header"), "refused");
  }
  const v1::UploadCheckpointRequest::Header h = msg.header();
  if (absl::Status s = CheckJobId(h.job_id()); !s.ok()) return Refuse(s, "refused");
  if (h.step() < 0 || h.generation() < 0) {
    return Refuse(absl::InvalidArgumentError(absl::StrCat("step and generation: must be >= 0, got ",
                                                          h.step(), " and ", h.generation())),
                  "refused");
  }
  if (h.size_bytes() <= 0 || h.size_bytes() > options_.max_bytes) {
    return Refuse(absl::InvalidArgumentError(absl::StrCat(
                      "size_bytes: must be in 1..", options_.max_bytes, ", got ", h.size_bytes())),
                  "refused");
  }
  if (core::Status s = checkpoint::CheckSha256Text(h.sha256(), "sha256"); !s.ok()) {
    return Refuse(
        absl::InvalidArgumentError(absl::StrCat("sha256: must be 64 lower-case hex digits, got \"",
                                                h.sha256().substr(0, 80), "\"")),
        "refused");
  }
  auto job = GetJobFor(caller, h.job_id(), h.worker_id());
  if (!job.ok()) return Refuse(job.status(), "refused");
  if (absl::Status s = CheckUploadable(*job, h.generation()); !s.ok()) {
    // A retried final upload that made the job SUCCEEDED goes on to be deduplicated.
    auto existing = store_->FindCheckpoint(h.job_id(), h.step());
    const bool retry = job->state() == v1::SUCCEEDED && existing.ok() && existing->has_value() &&
                       (*existing)->generation == h.generation();
    if (!retry) return Refuse(s, "refused");
  }

  // Receive into a temp file beside the final name; nothing is kept unless every check passes.
  const std::string rel = BlobPath(h.job_id(), h.step(), h.generation());
  const std::string path = options_.root + "/" + rel;
  std::error_code ec;
  fs::create_directories(options_.root + "/" + h.job_id(), ec);
  if (ec) {
    return Refuse(absl::UnavailableError(absl::StrCat("checkpoint dir: cannot create ", h.job_id(),
                                                      ": ", ec.message())),
                  "refused");
  }
  auto writer = checkpoint::AtomicFileWriter::Open(path);
  if (!writer.ok()) return Refuse(ToAbsl(writer.status()), "refused");
  checkpoint::Sha256 sha;
  int64_t received = 0;
  while (next(&msg)) {
    if (!msg.has_chunk()) {
      return Refuse(absl::InvalidArgumentError("a second header after the first"), "refused");
    }
    const std::string& chunk = msg.chunk();
    if (static_cast<int64_t>(chunk.size()) > CheckpointStoreOptions::kMaxChunkBytes) {
      return Refuse(absl::InvalidArgumentError(absl::StrCat("chunk: must be at most ",
                                                            CheckpointStoreOptions::kMaxChunkBytes,
                                                            " bytes, got ", chunk.size())),
                    "refused");
    }
    received += static_cast<int64_t>(chunk.size());
    bytes_received_.Increment(static_cast<double>(chunk.size()));
    if (received > h.size_bytes()) {
      return Refuse(absl::InvalidArgumentError(
                        absl::StrCat("chunks add up to more than size_bytes ", h.size_bytes())),
                    "refused");
    }
    sha.Update(chunk);
    if (core::Status s = (*writer)->Append(chunk.data(), chunk.size()); !s.ok()) {
      return Refuse(ToAbsl(s), "refused");
    }
  }
  if (received != h.size_bytes()) {
    return Refuse(absl::InvalidArgumentError(absl::StrCat(
                      "chunks add up to ", received, " bytes, size_bytes says ", h.size_bytes())),
                  "refused");
  }
  const std::string digest = checkpoint::ToHex(sha.Finish());
  if (digest != h.sha256()) {
    return Refuse(
        absl::DataLossError(absl::StrCat("checkpoint ", h.job_id(), "/", h.step(),
                                         ": SHA-256 of the received bytes is ", digest,
                                         ", the header says ", h.sha256(), "; nothing was kept")),
        "digest_mismatch");
  }

  bool deduplicated = false;
  v1::Job current;
  {
    absl::MutexLock lock(&mu_);
    // The job may have moved on while the bytes arrived.
    auto now_job = GetJobFor(caller, h.job_id(), h.worker_id());
    if (!now_job.ok()) return Refuse(now_job.status(), "refused");
    current = *now_job;
    ASSIGN_OR_RETURN(std::optional<CheckpointRow> existing,
                     store_->FindCheckpoint(h.job_id(), h.step()));
    if (existing.has_value()) {
      if (existing->generation != h.generation()) {
        return Refuse(absl::FailedPreconditionError(
                          absl::StrCat("job ", h.job_id(), ": step ", h.step(),
                                       " was committed by generation ", existing->generation)),
                      "refused");
      }
      deduplicated = true;  // the temp file goes with the writer
      if (h.final() && !existing->final) RETURN_IF_ERROR(store_->MarkCheckpointFinal(existing->id));
      resp->set_checkpoint_id(existing->id);
    } else {
      if (absl::Status s = CheckUploadable(current, h.generation()); !s.ok()) {
        return Refuse(s, "refused");
      }
      if (core::Status s = (*writer)->Commit(); !s.ok()) return Refuse(ToAbsl(s), "refused");
      CheckpointRow row;
      row.id = absl::StrCat(h.job_id(), "/", h.step());
      row.job_id = h.job_id();
      row.generation = h.generation();
      row.step = h.step();
      row.size_bytes = h.size_bytes();
      row.sha256 = digest;
      row.final = h.final();
      row.create_time_ms = absl::ToUnixMillis(now_());
      row.path = rel;
      std::optional<absl::MutexLock> hook_lock;
      if (hook_mu_ != nullptr) hook_lock.emplace(hook_mu_);
      absl::Status s = store_->CommitCheckpoint(row, [&](StoreTxn& txn) -> absl::Status {
        if (!on_committed_) return absl::OkStatus();
        return on_committed_(txn, row.job_id, row.generation, row.step, row.final);
      });
      if (!s.ok()) {
        RemoveBlob(rel);
        return Refuse(s, "refused");
      }
      resp->set_checkpoint_id(row.id);
      ApplyRetentionLocked(current);
      RefreshStoredLocked();
    }
  }
  uploads_.Add({{"result", deduplicated ? "deduplicated" : "ok"}}).Increment();
  resp->set_deduplicated(deduplicated);
  // A retried final upload (deduplicated) finishes a transition that failed the first time.
  if (h.final() && current.state() != v1::SUCCEEDED) {
    // A short job may finish before any progress report moved it to RUNNING.
    if (current.state() == v1::SCHEDULED) {
      (void)jobs_->Transition(h.job_id(), v1::RUNNING, "state", "training");
    }
    ASSIGN_OR_RETURN(v1::Job done, jobs_->Transition(h.job_id(), v1::SUCCEEDED, "checkpoint",
                                                     absl::StrCat("final checkpoint at step ",
                                                                  h.step(), " committed")));
    (void)done;
  }
  return absl::OkStatus();
}

void CheckpointStore::ApplyRetentionLocked(const v1::Job& job) {
  auto spec = spec::ParseJobSpec(job.spec_yaml());
  if (!spec.ok()) {
    LOG(WARNING) << "job " << job.id()
                 << ": spec does not parse, keeping every checkpoint: " << spec.status();
    return;
  }
  const int64_t keep_last = spec->checkpoint.keep_last;
  const int64_t keep_every = spec->checkpoint.keep_every;
  auto rows = store_->ListCheckpoints(job.id());
  if (!rows.ok()) {
    LOG(WARNING) << "job " << job.id() << ": retention skipped: " << rows.status();
    return;
  }
  std::vector<CheckpointRow> doomed;
  const int64_t n = static_cast<int64_t>(rows->size());
  for (int64_t i = 0; i < n; ++i) {
    const CheckpointRow& r = (*rows)[static_cast<size_t>(i)];
    const bool keep = i >= n - std::max<int64_t>(keep_last, 1) || r.final ||
                      (spec->checkpoint.initial && r.step == 0) ||
                      (keep_every > 0 && r.step % keep_every == 0) || pins_.count(r.id) > 0;
    if (!keep) doomed.push_back(r);
  }
  if (doomed.empty()) return;
  std::vector<std::string> ids;
  for (const CheckpointRow& r : doomed) ids.push_back(r.id);
  // Index first, then the files: a crash in between leaves orphans, removed at the next start.
  if (absl::Status s = store_->DeleteCheckpoints(ids); !s.ok()) {
    LOG(WARNING) << "job " << job.id() << ": retention failed: " << s;
    return;
  }
  for (const CheckpointRow& r : doomed) {
    RemoveBlob(r.path);
    retention_deleted_.Increment();
  }
}

void CheckpointStore::RemoveBlob(const std::string& relative_path) {
  std::error_code ec;
  fs::remove(fs::path(options_.root) / relative_path, ec);
  if (ec) LOG(WARNING) << "checkpoint " << relative_path << ": cannot remove: " << ec.message();
}

absl::Status CheckpointStore::ListCheckpoints(const rpc::Principal& caller,
                                              const v1::ListCheckpointsRequest& req,
                                              v1::ListCheckpointsResponse* resp) {
  ASSIGN_OR_RETURN(v1::Job job, GetJobFor(caller, req.job_id(), req.worker_id()));
  ASSIGN_OR_RETURN(std::vector<CheckpointRow> rows, store_->ListCheckpoints(job.id()));
  for (const CheckpointRow& r : rows) *resp->add_checkpoints() = ToProto(r);
  return absl::OkStatus();
}

absl::Status CheckpointStore::PullCheckpoint(
    const rpc::Principal& caller, const v1::PullCheckpointRequest& req,
    const std::function<bool(const v1::PullCheckpointResponse&)>& send,
    const std::function<bool()>& cancelled) {
  if (req.offset() < 0) {
    return absl::InvalidArgumentError(absl::StrCat("offset: must be >= 0, got ", req.offset()));
  }
  if (req.step() < -1) {
    return absl::InvalidArgumentError(
        absl::StrCat("step: must be >= 0, or -1 for the latest, got ", req.step()));
  }
  ASSIGN_OR_RETURN(v1::Job job, GetJobFor(caller, req.job_id(), req.worker_id()));
  CheckpointRow row;
  {
    absl::MutexLock lock(&mu_);
    ASSIGN_OR_RETURN(std::vector<CheckpointRow> rows, store_->ListCheckpoints(job.id()));
    auto it = rows.end();
    if (req.step() == -1) {
      if (!rows.empty()) it = rows.end() - 1;
    } else {
      it = std::find_if(rows.begin(), rows.end(),
                        [&](const CheckpointRow& r) { return r.step == req.step(); });
    }
    if (it == rows.end()) {
      return absl::NotFoundError(
          req.step() == -1
              ? absl::StrCat("job ", job.id(), " has no checkpoint")
              : absl::StrCat("job ", job.id(), " has no checkpoint at step ", req.step()));
    }
    row = *it;
    ++pins_[row.id];
  }
  struct Unpin {
    CheckpointStore* self;
    std::string id;
    ~Unpin() {
      absl::MutexLock lock(&self->mu_);
      if (--self->pins_[id] == 0) self->pins_.erase(id);
    }
  } unpin{this, row.id};
  pulls_.Increment();
  if (req.offset() > row.size_bytes) {
    return absl::OutOfRangeError(absl::StrCat("offset: ", req.offset(), " is beyond the size ",
                                              row.size_bytes, " of checkpoint ", row.id));
  }
  const std::string path = options_.root + "/" + row.path;
  auto fd = checkpoint::OpenForRead(path);
  if (!fd.ok()) {
    return absl::InternalError(absl::StrCat("checkpoint ", row.id, ": ", fd.status().message()));
  }
  int64_t chunk = req.chunk_bytes();
  if (chunk <= 0 || chunk > CheckpointStoreOptions::kMaxChunkBytes) {
    chunk = CheckpointStoreOptions::kMaxChunkBytes;
  }
  v1::PullCheckpointResponse msg;
  *msg.mutable_checkpoint() = ToProto(row);
  int64_t offset = req.offset();
  do {
    if (cancelled()) return absl::CancelledError("pull cancelled by the client");
    const int64_t n = std::min(chunk, row.size_bytes - offset);
    std::string* data = msg.mutable_data();
    data->resize(static_cast<size_t>(n));
    if (core::Status s = checkpoint::ReadExactlyAt(fd->get(), data->data(), static_cast<size_t>(n),
                                                   static_cast<uint64_t>(offset), path);
        !s.ok()) {
      return ToAbsl(s);
    }
    msg.set_offset(offset);
    if (!send(msg)) return absl::CancelledError("pull cancelled by the client");
    bytes_sent_.Increment(static_cast<double>(n));
    offset += n;
  } while (offset < row.size_bytes);
  return absl::OkStatus();
}

absl::Status CheckpointStore::DeleteJob(const rpc::Principal& caller,
                                        const v1::DeleteJobRequest& req,
                                        v1::DeleteJobResponse* resp) {
  if (req.id().empty()) return absl::InvalidArgumentError("id: must not be empty");
  ASSIGN_OR_RETURN(v1::Job job, GetJobFor(caller, req.id(), ""));
  if (!IsTerminal(job.state())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "job ", job.id(), " is ", v1::JobState_Name(job.state()),
        ": only a SUCCEEDED, FAILED or CANCELLED job can be deleted (cancel it first)"));
  }
  std::vector<CheckpointRow> rows;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [id, n] : pins_) {
      if (id.rfind(job.id() + "/", 0) == 0) {
        return absl::FailedPreconditionError(
            absl::StrCat("job ", job.id(), ": checkpoint ", id, " is being pulled; retry later"));
      }
    }
    ASSIGN_OR_RETURN(rows, store_->DeleteJob(job.id()));
    for (const CheckpointRow& r : rows) RemoveBlob(r.path);
    std::error_code ec;
    fs::remove_all(fs::path(options_.root) / job.id(), ec);
    RefreshStoredLocked();
  }
  RETURN_IF_ERROR(jobs_->Init());  // the per-state job gauges
  resp->set_id(job.id());
  resp->set_checkpoints_deleted(static_cast<int32_t>(rows.size()));
  LOG(INFO) << "job " << job.id() << " deleted by " << caller.name << " with " << rows.size()
            << " checkpoint(s)";
  return absl::OkStatus();
}

}  // namespace vjepa::coordinator
