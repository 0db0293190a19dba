// The checkpoint store, free of gRPC: uploads from trainers (digest checked, written to a temp
// file, fsynced, renamed, then indexed in one SQLite transaction), listing and resumable pulls
// by users and workers, retention (the last K plus every N-th step, never the newest, the final
// one or one being pulled), and deleting a finished job with its checkpoints. Blobs live under
// <root>/<job id>/<step>-<generation>.safetensors; the index is the `checkpoints` table of the
// Store. RPC semantics: proto/vjepa/v1/{worker,checkpoint,job}.proto; docs/checkpoints.md.
#ifndef VJEPA_SERVICES_COORDINATOR_CHECKPOINT_STORE_H_
#define VJEPA_SERVICES_COORDINATOR_CHECKPOINT_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/metrics/metrics.h"
#include "common/rpc/auth.h"
#include "services/coordinator/job_manager.h"
#include "services/coordinator/store.h"
#include "vjepa/v1/checkpoint.pb.h"
#include "vjepa/v1/job.pb.h"
#include "vjepa/v1/worker.pb.h"

namespace vjepa::coordinator {

struct CheckpointStoreOptions {
  std::string root;                                   // <data_dir>/checkpoints
  int64_t max_bytes = int64_t{16} << 30;              // largest accepted upload
  static constexpr int64_t kMaxChunkBytes = 1 << 20;  // upload and pull chunks
};

// Called inside the SQLite transaction that indexes a new checkpoint, after its blob is durable
// under its final name. The batch ledger marks the batches the checkpoint covers COMMITTED
// here, so that the checkpoint and the ledger change together or not at all. An error rolls the
// index row back and fails the upload (the blob is removed). Use only `txn` (the store's lock is
// held).
using CheckpointCommittedHook = std::function<absl::Status(
    StoreTxn& txn, const std::string& job_id, int64_t generation, int64_t step, bool final)>;

class CheckpointStore {
 public:
  using Clock = std::function<absl::Time()>;
  // `store` and `jobs` must outlive this object.
  CheckpointStore(
      Store* store, JobManager* jobs, metrics::Registry& registry, CheckpointStoreOptions options,
      Clock now = [] { return absl::Now(); });

  // Creates the root and reconciles it with the index: files without an index row (orphans of
  // an interrupted upload or deletion, temp files) are deleted; rows without a file are logged
  // and removed.
  absl::Status Init();

  // The hook OnCheckpointCommitted (see CheckpointCommittedHook); the server sets it, the
  // default does nothing. `hook_mu`, when given, is held around the commit transaction, so that
  // the hook may use state it guards (lock order: this store, hook_mu, the Store). Set it before
  // serving.
  void SetOnCheckpointCommitted(CheckpointCommittedHook hook, absl::Mutex* hook_mu = nullptr);
  // Whether worker `worker_id` (registered by the calling principal) may see `job_id`'s
  // checkpoints; unset: every worker may.
  using WorkerAccess = std::function<bool(const rpc::Principal& caller,
                                          const std::string& worker_id, const std::string& job_id)>;
  void SetWorkerAccess(WorkerAccess access);

  // `next` reads the next message of the client stream (false at its end).
  absl::Status UploadCheckpoint(const rpc::Principal& caller,
                                const std::function<bool(v1::UploadCheckpointRequest*)>& next,
                                v1::UploadCheckpointResponse* resp);
  absl::Status ListCheckpoints(const rpc::Principal& caller, const v1::ListCheckpointsRequest& req,
                               v1::ListCheckpointsResponse* resp);
  // Streams the file through `send` (false: the client went away) until every byte is sent.
  absl::Status PullCheckpoint(const rpc::Principal& caller, const v1::PullCheckpointRequest& req,
                              const std::function<bool(const v1::PullCheckpointResponse&)>& send,
                              const std::function<bool()>& cancelled);
  // JobService.DeleteJob: a finished job, its events and its checkpoints.
  absl::Status DeleteJob(const rpc::Principal& caller, const v1::DeleteJobRequest& req,
                         v1::DeleteJobResponse* resp);

 private:
  struct Upload;
  absl::StatusOr<v1::Job> GetJobFor(const rpc::Principal& caller, const std::string& id,
                                    const std::string& worker_id);
  absl::Status CheckUploadable(const v1::Job& job, int64_t generation) const;
  // Deletes the job's checkpoints that retention no longer keeps.
  void ApplyRetentionLocked(const v1::Job& job) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveBlob(const std::string& relative_path);
  void RefreshStoredLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Refuse(absl::Status s, const char* result);

  Store* const store_;
  JobManager* const jobs_;
  const CheckpointStoreOptions options_;
  const Clock now_;

  // Serialises commits, retention, deletions and the start of pulls, so that a checkpoint that
  // is pinned is never removed.
  absl::Mutex mu_;
  std::map<std::string, int> pins_ ABSL_GUARDED_BY(mu_);  // checkpoint id -> pulls in progress
  CheckpointCommittedHook on_committed_ ABSL_GUARDED_BY(mu_);
  absl::Mutex* hook_mu_ ABSL_GUARDED_BY(mu_) = nullptr;
  absl::Mutex access_mu_;
  WorkerAccess worker_access_ ABSL_GUARDED_BY(access_mu_);

  prometheus::Family<prometheus::Counter>& uploads_;
  prometheus::Counter& bytes_received_;
  prometheus::Counter& pulls_;
  prometheus::Counter& bytes_sent_;
  prometheus::Gauge& stored_;
  prometheus::Counter& retention_deleted_;
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_CHECKPOINT_STORE_H_
