// The dataworker's logic, without gRPC: per-job producers, a pool of producer threads, and one
// bounded buffer per stream (job, generation, rank) (docs/architecture.md §3, §4).
//
// Work comes from leases (coordinator mode: AddLeases) or, in standalone mode, from the streams
// themselves: a StreamBatches request (job, generation, rank, from) makes the stream produce
// g = from, from + M, from + 2M, ... (M = world size; epoch = g / nb, batch = g mod nb). A probe
// job has a fixed number of batches (nb = spec::PlanProbeBatches(...).total(), all in epoch 0):
// its stream stops at g = nb and the call ends OK once the last batch is taken.
//
// Flow control: a stream holds at most K batches (`stream_buffer_batches`) counting the ones
// being produced, and a producer only starts a batch for a stream with room. A trainer that
// stops reading stops its stream's production; memory per stream stays at K batches plus the
// one its StreamBatches call is writing.
//
// Threads: the producer threads are owned here (Start / Stop). StreamHandle calls come from
// gRPC callback threads; wake-ups are called from producer threads, never under the mutex.
#ifndef VJEPA_SERVICES_DATAWORKER_DATA_SERVICE_H_
#define VJEPA_SERVICES_DATAWORKER_DATA_SERVICE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/spec/job_spec.h"
#include "services/dataworker/batch_producer.h"
#include "services/dataworker/dataworker_metrics.h"
#include "vjepa/v1/data.pb.h"
#include "vjepa/v1/worker.pb.h"

namespace vjepa::dataworker {

// The one job a standalone worker serves (no coordinator).
struct StandaloneJob {
  std::string job_id = "standalone";
  spec::JobSpec spec;
  int world_size = 1;  // M trainers
};

struct DataServiceOptions {
  int threads = 2;                // producer threads
  int stream_buffer_batches = 2;  // K
  // Leases held at once (queued, being produced, buffered or being sent); 0: 2·K·threads.
  int max_leases = 0;
  std::optional<StandaloneJob> standalone;
  std::function<absl::Time()> now = [] { return absl::Now(); };  // lease deadlines
};

// Where reports for the coordinator go (CoordinatorClient). Called on producer threads and in
// AddLeases; must not block for long.
class ReportSink {
 public:
  virtual ~ReportSink() = default;
  // job_id, generation and one of: quarantined videos, the dataset identity, a failure.
  virtual void Report(v1::ReportProgressRequest report) = 0;
};

class StreamHandle;

class DataService {
 public:
  DataService(DataServiceOptions options, std::shared_ptr<ProducerFactory> factory,
              DataworkerMetrics* metrics);
  ~DataService();  // Stop()

  // Where reports go; null: nowhere. Set before Start.
  void SetReportSink(ReportSink* sink);
  // Creates the standalone job (if any) and starts the producer threads.
  absl::Status Start();
  // Stops producing and ends every stream (a call finishes the batch it is writing, then ends
  // with UNAVAILABLE). Returns the leases not delivered, to hand back. Idempotent.
  std::vector<std::string> Shutdown();
  // Shutdown() and joins the producer threads (each finishes the batch it is producing).
  void Stop();

  // Coordinator mode: takes the leases of a LeaseBatches response (spec_yaml describes the job
  // of leases whose job is new to this worker). Leases it refuses are queued for return.
  void AddLeases(const v1::LeaseBatchesResponse& response);
  // How many more leases it can take now.
  int FreeLeaseCapacity() const;
  // Leases that failed or were refused since the last call, to hand back to the coordinator.
  std::vector<std::string> TakeReturnedLeases();

  // A StreamBatches call. Errors: INVALID_ARGUMENT (bad fields, rank ≥ M), NOT_FOUND (standalone:
  // another job), FAILED_PRECONDITION (a generation older than one already seen for the job),
  // UNAVAILABLE (shutting down). A newer call for the same stream ends the older one (ABORTED).
  absl::StatusOr<std::unique_ptr<StreamHandle>> OpenStream(const v1::StreamBatchesRequest& request);

  // For tests and status messages.
  int64_t buffered_batches() const;
  int64_t held_leases() const;
  int active_streams() const;
  std::string StatusLine() const;

 private:
  friend class StreamHandle;
  using StreamKey = std::tuple<std::string, int64_t, int32_t>;  // job, generation, rank

  struct Slot {
    StreamKey key;
    int64_t global_index = 0;
    int64_t epoch = 0;
    int64_t batch_index = 0;
    std::optional<v1::BatchLease> lease;
    bool ready = false;
    bool orphaned = false;  // its stream went away: drop the result
    absl::Status status;    // standalone: a production failure ends the stream here
    std::unique_ptr<ProducedBatch> batch;
  };
  struct Stream {
    StreamKey key;
    std::map<int64_t, v1::BatchLease> pending;  // lease mode: by g
    int64_t next_g = 0;                         // standalone
    std::vector<std::shared_ptr<Slot>> slots;   // in claim order, at most K
    uint64_t conn = 0;                          // attached StreamBatches call, 0: none
  };
  struct Connection {
    StreamKey key;
    std::optional<absl::Status> end;        // set: the call ends with this
    std::function<void()> waker;            // registered while it waits for a batch
    std::optional<v1::BatchLease> holding;  // lease of the batch it is writing
    bool holding_batch = false;
  };
  struct Job {
    int64_t generation = 0;
    std::shared_ptr<BatchProducer> producer;  // null until a lease brings the spec
    int64_t batches_per_epoch = 0;
    int world_size = 1;
    std::string manifest_sha256;
    // Probe jobs: N of dataset.manifest, probe.val_manifest's identity (0 / "" when none), and
    // the number of batches (standalone streams stop there; 0: unbounded, pretrain).
    int64_t train_size = 0;
    int64_t val_size = 0;
    std::string val_manifest_sha256;
    int64_t total_batches = 0;
    int64_t identity_reported_generation = -1;
  };
  struct Claim {
    std::shared_ptr<Slot> slot;
    std::shared_ptr<BatchProducer> producer;
  };
  using Wakers = std::vector<std::function<void()>>;

  void ProducerLoop();
  bool HasWorkLocked(Stream& stream) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AnyWorkLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::optional<Claim> ClaimLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Complete(const std::shared_ptr<Slot>& slot, absl::StatusOr<ProducedBatch> result);

  // Ends `conn` with `status` unless it has ended already; its waker goes to `wakers`.
  void EndConnectionLocked(Connection& conn, absl::Status status, Wakers* wakers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops a stream: its slots are orphaned, its leases dropped (`lease_reason`) or, with
  // `return_leases`, queued for return.
  void EraseStreamLocked(std::map<StreamKey, Stream>::iterator it, bool return_leases,
                         const char* lease_reason) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves job `job_id` to `generation`, ending its older streams. False for an older generation.
  bool AdvanceGenerationLocked(const std::string& job_id, int64_t generation, Wakers* wakers)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TakeWakerLocked(uint64_t conn_id, Wakers* wakers) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnQuarantine(const std::string& job_id, const QuarantinedVideo& video);
  absl::Status SetUpJob(const std::string& job_id, const spec::JobSpec& spec, int world_size,
                        int64_t generation);
  void ReturnLeaseLocked(const v1::BatchLease& lease, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t HeldLeasesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  static void Wake(Wakers& wakers);

  // StreamHandle calls.
  enum class NextResult { kReady, kWaiting, kEnded };
  NextResult TakeNext(uint64_t conn_id, std::unique_ptr<ProducedBatch>* batch, absl::Status* end,
                      std::function<void()> wake);
  void Delivered(uint64_t conn_id, int64_t bytes);
  void Abandoned(uint64_t conn_id);
  void Cancel(uint64_t conn_id);
  void Close(uint64_t conn_id);

  const DataServiceOptions options_;
  const int max_leases_;
  const std::shared_ptr<ProducerFactory> factory_;
  DataworkerMetrics* const metrics_;

  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;
  ReportSink* sink_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<std::string, Job> jobs_ ABSL_GUARDED_BY(mu_);
  std::map<StreamKey, Stream> streams_ ABSL_GUARDED_BY(mu_);
  std::optional<StreamKey> rr_cursor_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Connection> conns_ ABSL_GUARDED_BY(mu_);
  uint64_t next_conn_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<std::string> returned_ ABSL_GUARDED_BY(mu_);
  int64_t buffered_ ABSL_GUARDED_BY(mu_) = 0;
  // (manifest SHA-256, manifest row) of every quarantined video counted and reported; a probe
  // job's validation video is ("<train SHA-256>+<validation SHA-256>", N_train + row).
  absl::flat_hash_set<std::pair<std::string, int64_t>> quarantined_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> threads_;  // touched by Start and Stop only
};

// One StreamBatches call's side of its stream. Exactly one party drives the call at a time:
// the gRPC reactor (while a write is in flight or a callback runs) or the waker (while it waits
// for a batch); Cancel() wakes a waiting call so that it ends.
class StreamHandle {
 public:
  using NextResult = DataService::NextResult;
  ~StreamHandle();  // Close()

  // The next batch of the stream (kReady, moved into *batch), or kEnded with the status the call
  // ends with, or kWaiting: `wake` will be called once, from another thread, when there is news
  // (then call TakeNext again).
  NextResult TakeNext(std::unique_ptr<ProducedBatch>* batch, absl::Status* end,
                      std::function<void()> wake);
  // The batch taken last was written completely (`bytes` on the wire).
  void Delivered(int64_t bytes);
  // The batch taken last will not be written completely (its lease is produced again, or
  // handed back when shutting down).
  void Abandoned();
  // The client went away: ends the call, waking it if it waits.
  void Cancel();
  // The call is finishing: detaches it from its stream. Idempotent.
  void Close();

 private:
  friend class DataService;
  StreamHandle(DataService* service, uint64_t id) : service_(service), id_(id) {}
  DataService* const service_;
  const uint64_t id_;
  bool closed_ = false;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_DATA_SERVICE_H_
