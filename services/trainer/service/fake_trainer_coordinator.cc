#include "services/trainer/service/fake_trainer_coordinator.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "grpcpp/server_builder.h"
#include "services/trainer/checkpoint/sha256.h"

namespace vjepa::trainer {

class FakeTrainerCoordinator::Workers final : public v1::WorkerService::Service {
 public:
  explicit Workers(FakeTrainerCoordinator* f) : f_(f) {}

  grpc::Status RegisterWorker(grpc::ServerContext*, const v1::RegisterWorkerRequest* req,
                              v1::RegisterWorkerResponse* resp) override {
    absl::MutexLock lock(&f_->mu_);
    f_->registrations_.push_back(*req);
    resp->mutable_worker()->set_id(absl::StrCat("w-", req->name(), "-", req->incarnation()));
    resp->mutable_worker()->set_name(req->name());
    resp->mutable_worker()->set_incarnation(req->incarnation());
    resp->set_heartbeat_interval_ms(50);
    resp->set_lost_after_ms(5000);
    *resp->mutable_assignment() = f_->AssignmentLocked(req->name());
    return grpc::Status::OK;
  }

  grpc::Status Heartbeat(grpc::ServerContext*, const v1::HeartbeatRequest* req,
                         v1::HeartbeatResponse* resp) override {
    absl::MutexLock lock(&f_->mu_);
    ++f_->heartbeats_;
    if (f_->fail_next_heartbeat_) {
      f_->fail_next_heartbeat_ = false;
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "declared LOST");
    }
    if (!req->c10d_store_address().empty()) {
      // Every rank of that (job, generation) gets it.
      auto set = [&](v1::TrainerAssignment& a) {
        if (req->job_id() == a.job_id() && req->generation() == a.generation() &&
            a.c10d_store_address().empty()) {
          a.set_c10d_store_address(req->c10d_store_address());
        }
      };
      set(f_->default_);
      for (auto& [name, a] : f_->by_name_) set(a);
    }
    resp->mutable_worker()->set_id(req->worker_id());
    resp->set_heartbeat_interval_ms(50);
    *resp->mutable_assignment() = f_->AssignmentLocked(NameOf(req->worker_id()));
    return grpc::Status::OK;
  }

  grpc::Status ReportProgress(grpc::ServerContext*, const v1::ReportProgressRequest* req,
                              v1::ReportProgressResponse*) override {
    absl::MutexLock lock(&f_->mu_);
    const v1::TrainerAssignment& a = f_->AssignmentLocked(NameOf(req->worker_id()));
    if ((req->job_id() != a.job_id() || req->generation() != a.generation()) &&
        f_->succeeded_.count({req->job_id(), req->generation()}) == 0) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "stale generation");
    }
    f_->reports_.push_back(*req);
    return grpc::Status::OK;
  }

  grpc::Status UploadCheckpoint(grpc::ServerContext*,
                                grpc::ServerReader<v1::UploadCheckpointRequest>* reader,
                                v1::UploadCheckpointResponse* resp) override {
    v1::UploadCheckpointRequest msg;
    Upload upload;
    if (!reader->Read(&msg) || !msg.has_header()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no header");
    }
    upload.header = msg.header();
    while (reader->Read(&msg)) {
      if (msg.chunk().size() > (1u << 20)) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "chunk over 1 MiB");
      }
      upload.data += msg.chunk();
    }
    absl::MutexLock lock(&f_->mu_);
    const v1::UploadCheckpointRequest::Header& h = upload.header;
    const v1::TrainerAssignment& a = f_->AssignmentLocked(NameOf(h.worker_id()));
    grpc::Status status = grpc::Status::OK;
    if (h.job_id() != a.job_id() || h.generation() != a.generation()) {
      status = grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "stale generation");
    } else if (static_cast<int64_t>(upload.data.size()) != h.size_bytes()) {
      status = grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "size mismatch");
    } else if (checkpoint::Sha256Hex(upload.data) != h.sha256()) {
      status = grpc::Status(grpc::StatusCode::DATA_LOSS, "digest mismatch");
    }
    upload.accepted = status.ok();
    if (status.ok()) {
      f_->files_[{h.job_id(), h.step()}] = upload.data;
      resp->set_checkpoint_id(absl::StrCat(h.job_id(), "/", h.step()));
      if (h.final()) {  // the job SUCCEEDED: its trainers go idle
        f_->succeeded_.insert({h.job_id(), h.generation()});
        if (f_->default_.job_id() == h.job_id()) f_->default_ = v1::TrainerAssignment();
        for (auto& [name, other] : f_->by_name_) {
          if (other.job_id() == h.job_id()) other = v1::TrainerAssignment();
        }
      }
    }
    f_->uploads_.push_back(std::move(upload));
    return status;
  }

 private:
  FakeTrainerCoordinator* const f_;
};

class FakeTrainerCoordinator::Checkpoints final : public v1::CheckpointService::Service {
 public:
  explicit Checkpoints(FakeTrainerCoordinator* f) : f_(f) {}

  grpc::Status PullCheckpoint(grpc::ServerContext*, const v1::PullCheckpointRequest* req,
                              grpc::ServerWriter<v1::PullCheckpointResponse>* writer) override {
    std::string data;
    {
      absl::MutexLock lock(&f_->mu_);
      f_->pulls_.push_back(*req);
      auto it = f_->files_.find({req->job_id(), req->step()});
      if (it == f_->files_.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "no such checkpoint");
      }
      data = it->second;
    }
    const int64_t size = static_cast<int64_t>(data.size());
    if (req->offset() < 0 || req->offset() > size) {
      return grpc::Status(grpc::StatusCode::OUT_OF_RANGE, "offset beyond the size");
    }
    v1::Checkpoint c;
    c.set_id(absl::StrCat(req->job_id(), "/", req->step()));
    c.set_job_id(req->job_id());
    c.set_step(req->step());
    c.set_size_bytes(size);
    c.set_sha256(checkpoint::Sha256Hex(data));
    const int64_t chunk = 256 << 10;
    int64_t at = req->offset();
    do {
      v1::PullCheckpointResponse resp;
      *resp.mutable_checkpoint() = c;
      resp.set_offset(at);
      const int64_t n = std::min(chunk, size - at);
      resp.set_data(data.substr(static_cast<size_t>(at), static_cast<size_t>(n)));
      if (!writer->Write(resp)) break;
      at += n;
    } while (at < size);
    return grpc::Status::OK;
  }

 private:
  FakeTrainerCoordinator* const f_;
};

FakeTrainerCoordinator::FakeTrainerCoordinator()
    : workers_(std::make_unique<Workers>(this)), checkpoints_(std::make_unique<Checkpoints>(this)) {
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
  builder.SetMaxReceiveMessageSize(8 << 20);
  builder.RegisterService(workers_.get());
  builder.RegisterService(checkpoints_.get());
  server_ = builder.BuildAndStart();
}

FakeTrainerCoordinator::~FakeTrainerCoordinator() {
  if (server_) server_->Shutdown(std::chrono::system_clock::now());
}

std::string FakeTrainerCoordinator::address() const { return absl::StrCat("127.0.0.1:", port_); }

void FakeTrainerCoordinator::SetAssignment(const v1::TrainerAssignment& assignment) {
  absl::MutexLock lock(&mu_);
  default_ = assignment;
  by_name_.clear();
}

void FakeTrainerCoordinator::SetAssignment(const std::string& name,
                                           const v1::TrainerAssignment& assignment) {
  absl::MutexLock lock(&mu_);
  by_name_[name] = assignment;
}

v1::TrainerAssignment FakeTrainerCoordinator::assignment(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = by_name_.find(name);
  return it == by_name_.end() ? default_ : it->second;
}

v1::TrainerAssignment& FakeTrainerCoordinator::AssignmentLocked(const std::string& name) {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? default_ : it->second;
}

std::string FakeTrainerCoordinator::NameOf(const std::string& worker_id) {
  // "w-<name>-<incarnation>"
  const size_t last = worker_id.rfind('-');
  if (worker_id.size() < 2 || last == std::string::npos || last < 2) return "";
  return worker_id.substr(2, last - 2);
}

void FakeTrainerCoordinator::FailNextHeartbeat() {
  absl::MutexLock lock(&mu_);
  fail_next_heartbeat_ = true;
}

void FakeTrainerCoordinator::AddCheckpoint(const std::string& job_id, int64_t step,
                                           std::string data) {
  absl::MutexLock lock(&mu_);
  files_[{job_id, step}] = std::move(data);
}

int FakeTrainerCoordinator::registrations() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(registrations_.size());
}

std::vector<v1::RegisterWorkerRequest> FakeTrainerCoordinator::registration_requests() const {
  absl::MutexLock lock(&mu_);
  return registrations_;
}

int FakeTrainerCoordinator::heartbeats() const {
  absl::MutexLock lock(&mu_);
  return heartbeats_;
}

std::vector<v1::ReportProgressRequest> FakeTrainerCoordinator::reports() const {
  absl::MutexLock lock(&mu_);
  return reports_;
}

std::vector<FakeTrainerCoordinator::Upload> FakeTrainerCoordinator::uploads() const {
  absl::MutexLock lock(&mu_);
  return uploads_;
}

std::vector<v1::PullCheckpointRequest> FakeTrainerCoordinator::pulls() const {
  absl::MutexLock lock(&mu_);
  return pulls_;
}

}  // namespace vjepa::trainer
