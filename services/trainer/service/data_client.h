// The trainer's data client (docs/architecture.md §3, §4): rank r of M consumes at step s the
// global batch g = s·M + r, strictly in order. Batches come over DataService.StreamBatches from
// one or more dataworkers; a reorder buffer of at most K batches ahead puts them in order, drops
// duplicates and batches already consumed, and a broken stream is reopened (with backoff) from the
// next needed g, on another dataworker where the stream's slot has one.
//
// Streams: `streams` slots read at once; slot j owns the addresses j, j + streams, ... and moves
// to its next one when a stream breaks. With one stream per dataworker (the default) each
// dataworker's stream carries the g's of this rank leased to it (coordinator mode); with one slot
// the client reads one dataworker at a time and fails over to the next (standalone mode, where a
// dataworker produces every g of the rank).
//
// Threads: one reader thread per slot, owned here (Start / Stop). Next() is called by one
// consumer at a time; every other method is thread-safe.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_DATA_CLIENT_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_DATA_CLIENT_H_

#include <torch/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/rpc/tls.h"
#include "services/trainer/vjepa/trainer.h"
#include "vjepa/v1/data.pb.h"

namespace grpc {
class ClientContext;
}

namespace vjepa::trainer {

struct DataClientOptions {
  std::string job_id;
  int64_t generation = 0;
  int rank = 0;                        // r
  int world_size = 1;                  // M
  std::vector<std::string> addresses;  // dataworkers, HOST:PORT or unix:PATH
  std::string token;                   // a worker token
  rpc::TlsFiles tls;
  int reorder_batches = 4;  // K: batches held ahead of the one the trainer needs
  int64_t start_step = 0;   // the first step's batch is g = start_step·M + r
  int streams = 0;          // slots read at once; 0: one per address

  // What the model takes; a header that differs is an error naming the field.
  int batch_size = 0;       // B (probe batches: at most B)
  int64_t num_tokens = 0;   // N
  int64_t token_bytes = 0;  // P
  int mask_configs = 0;     // pretrain batches: >= 1

  // Probe batches (a probe job): B' <= B samples (the last batch of a split may be smaller),
  // B'·segments·views clips in (sample, segment, view) order, B' labels, no masks, a split and
  // total_batches > 0 in the header.
  bool probe = false;
  int segments = 1;
  int views = 1;

  // Reconnecting: the wait before reopening a broken stream doubles from `initial_backoff` up to
  // `max_backoff`; a slot whose streams keep failing for `reconnect_deadline` without bringing a
  // batch gives up. When every slot gave up, Next() fails with their last errors.
  absl::Duration initial_backoff = absl::Milliseconds(50);
  absl::Duration max_backoff = absl::Seconds(2);
  absl::Duration reconnect_deadline = absl::Seconds(60);
  int max_receive_message_bytes = 64 << 20;
};

// One step's batch.
struct StepBatch {
  int64_t step = 0;
  int64_t global_index = 0;  // g = step·M + r
  // tokens uint8 [B, N, P], masks int64 [B, L] per mask config; probe batches: tokens
  // [B·segments·views, N, P], no masks, the labels in the header.
  jepa::Batch batch;
  v1::BatchHeader header;  // as received, without the packed masks
  std::string source;      // the dataworker it came from
};

struct DataClientStats {
  double data_wait_seconds = 0;  // total time Next() waited for a batch
  int64_t batches = 0;           // returned by Next()
  int64_t duplicates = 0;        // dropped: already buffered or already consumed
  int64_t reconnects = 0;        // streams reopened after a break
  int64_t bytes = 0;             // clip bytes received
};

class DataClient {
 public:
  // INVALID_ARGUMENT for options that cannot work (no address, rank outside [0, M), K < 1,
  // shapes not set).
  static absl::StatusOr<std::unique_ptr<DataClient>> Create(DataClientOptions options);
  ~DataClient();  // Stop()

  // Opens the streams (their reader threads).
  absl::Status Start();
  // The batch of step next_step(), waiting for it as long as any stream may still bring it.
  // Errors: a header or batch that does not match the model or the request (INVALID_ARGUMENT,
  // naming the field), a stream error that retrying cannot fix (its status), every slot gave up
  // (UNAVAILABLE), CANCELLED after Stop().
  absl::StatusOr<StepBatch> Next();
  // Cancels the streams and joins the reader threads; a waiting Next() returns CANCELLED.
  // Idempotent.
  void Stop();
  // Reads `address` too, in a new slot of its own (its reader thread starts at once when the
  // client was started). For a dataworker that joins the job while it runs. An address already
  // read is ignored; after Stop() this does nothing.
  void AddAddress(const std::string& address);

  int64_t next_step() const;
  DataClientStats stats() const;
  double data_wait_seconds() const { return stats().data_wait_seconds; }

 private:
  struct Slot {
    std::vector<std::string> addresses;
    grpc::ClientContext* context = nullptr;  // the open call, for Stop
    bool gave_up = false;
    absl::Status last_error;
  };

  explicit DataClient(DataClientOptions options);
  // How a stream ended: its status; `fatal` when retrying cannot help; `progress` when it
  // brought at least one batch.
  struct StreamEnd {
    absl::Status status;
    bool fatal = false;
    bool progress = false;
  };
  void ReaderLoop(int slot);
  StreamEnd ReadStream(int slot, const std::string& address);
  // Converts a received header (masks moved out of it) and its token tensor.
  absl::StatusOr<StepBatch> MakeBatch(v1::BatchHeader header, torch::Tensor tokens,
                                      const std::string& address) const;
  // Records a fatal error and cancels every stream.
  void Fail(absl::Status status);
  void CancelStreamsLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllGaveUpLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks a header against the request and the model.
  absl::Status CheckHeader(const v1::BatchHeader& h, const std::string& address) const;
  // Puts a batch in the reorder buffer (waiting for room); false when it was a duplicate.
  bool Offer(StepBatch batch);
  // The first g the slot's next stream should start from: the next needed g not yet buffered.
  int64_t FromIndexLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stop() was called or a fatal error happened.
  bool Stopping() const;

  const DataClientOptions options_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);

  mutable absl::Mutex mu_;
  absl::CondVar ready_cv_;  // the needed batch arrived, an error, a slot gave up, stop
  absl::CondVar room_cv_;   // the window moved, stop
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, StepBatch> buffer_ ABSL_GUARDED_BY(mu_);  // by g
  int64_t next_g_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);  // fatal: Next() returns it
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  DataClientStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_DATA_CLIENT_H_
