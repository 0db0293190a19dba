// Checkpoint files between a trainer and the coordinator: UploadCheckpoint (rank 0, one header
// then chunks of at most 1 MiB) and PullCheckpoint (resumable from the bytes already written),
// both checked against the file's SHA-256. UNAVAILABLE and DEADLINE_EXCEEDED are retried with
// backoff (the coordinator may be restarting) until the retry budget is spent or the caller
// cancels.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_CHECKPOINT_TRANSFER_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_CHECKPOINT_TRANSFER_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "vjepa/v1/checkpoint.grpc.pb.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::trainer {

struct TransferOptions {
  std::string token;      // a worker token
  std::string worker_id;  // the calling worker: pulls name it (workers see assigned jobs only)
  absl::Duration attempt_timeout = absl::Minutes(5);
  absl::Duration retry_budget = absl::Minutes(5);
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Polled between attempts and while backing off: true ends the transfer with CANCELLED.
  std::function<bool()> cancelled;
};

// Calls `attempt` until it returns anything but UNAVAILABLE or DEADLINE_EXCEEDED, the budget is
// spent (the last error, annotated) or `options.cancelled` says so (CANCELLED).
absl::Status RetryTransient(const std::string& what, const TransferOptions& options,
                            const std::function<absl::Status()>& attempt);

// Hex SHA-256 and size of a file.
absl::Status FileDigest(const std::string& path, std::string* sha256_hex, int64_t* size);

// Uploads `path` with `header` (its size_bytes and sha256 are filled in here). Errors: the
// coordinator's (FAILED_PRECONDITION: a stale generation; DATA_LOSS, INVALID_ARGUMENT), or the
// file's.
absl::StatusOr<v1::UploadCheckpointResponse> UploadCheckpoint(
    v1::WorkerService::StubInterface* stub, v1::UploadCheckpointRequest::Header header,
    const std::string& path, const TransferOptions& options);

// Pulls checkpoint `step` of `job_id` into `path` (a partial file there is continued), checks its
// SHA-256 and returns its description. DATA_LOSS when the digest does not match (the file is
// removed).
absl::StatusOr<v1::Checkpoint> PullCheckpoint(v1::CheckpointService::StubInterface* stub,
                                              const std::string& job_id, int64_t step,
                                              const std::string& path,
                                              const TransferOptions& options);

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_CHECKPOINT_TRANSFER_H_
