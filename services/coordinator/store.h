// The coordinator's durable state in SQLite (WAL, synchronous=FULL): jobs, their event logs,
// the worker registry, the checkpoint index and the batch ledgers. Every write is committed before
// the method returns, so an acknowledged RPC survives a SIGKILL. The schema is versioned (PRAGMA
// user_version) and migrated forward on open; see kMigrations in store.cc.
#ifndef VJEPA_SERVICES_COORDINATOR_STORE_H_
#define VJEPA_SERVICES_COORDINATOR_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/coordinator/ledger.h"
#include "vjepa/v1/job.pb.h"
#include "vjepa/v1/worker.pb.h"

struct sqlite3;

namespace vjepa::coordinator {

struct JobFilter {
  std::vector<v1::JobState> states;  // empty: any
  std::string owner;                 // empty: any
  int64_t after_rowid = 0;           // paging cursor
  int limit = 1000;
};

// One row of the checkpoint index. `path` is relative to the checkpoint root
// (<data_dir>/checkpoints).
struct CheckpointRow {
  std::string id;  // "<job id>/<step>"
  std::string job_id;
  int64_t generation = 0;
  int64_t step = 0;
  int64_t size_bytes = 0;
  std::string sha256;
  bool final = false;
  int64_t create_time_ms = 0;
  std::string path;
};

// The open transaction handed to code that commits with a checkpoint (the batch ledger): run
// statements on `db` only; the store's lock is held, so calling Store methods would deadlock.
struct StoreTxn {
  sqlite3* db;
};

// A job's batch ledger as persisted (ledger.h).
struct StoredLedger {
  LedgerShape shape;
  LedgerSnapshot snapshot;
};

class Store {
 public:
  static constexpr int kSchemaVersion = 5;

  // Opens (creating if needed) `path` and migrates it to kSchemaVersion.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  // Creates a store at an older schema version: how a data dir of a previous release looks.
  static absl::StatusOr<std::unique_ptr<Store>> OpenAtVersion(const std::string& path, int version);
  ~Store();

  int schema_version() const { return version_; }

  // Inserts a new job and its first event in one transaction.
  absl::Status InsertJob(const v1::Job& job, const v1::JobEvent& event);
  // Updates the job's mutable fields and appends `event` (its seq is assigned) in one
  // transaction; returns the stored event.
  absl::StatusOr<v1::JobEvent> UpdateJob(const v1::Job& job, v1::JobEvent event);
  absl::StatusOr<std::optional<v1::Job>> GetJob(const std::string& id);
  absl::StatusOr<std::optional<v1::Job>> FindJobByRequestId(const std::string& owner,
                                                            const std::string& request_id);
  // Jobs in submission order; `rowids` (if given) receives each job's paging cursor.
  absl::StatusOr<std::vector<v1::Job>> ListJobs(const JobFilter& filter,
                                                std::vector<int64_t>* rowids = nullptr);
  absl::StatusOr<std::vector<v1::JobEvent>> ListEvents(const std::string& job_id, int64_t after_seq,
                                                       int limit = 1000);
  // Number of jobs in each state.
  absl::StatusOr<std::vector<std::pair<v1::JobState, int64_t>>> CountJobsByState();

  // Removes the job, its events and its checkpoint rows in one transaction (NOT_FOUND when the
  // job does not exist); returns the removed checkpoint rows.
  absl::StatusOr<std::vector<CheckpointRow>> DeleteJob(const std::string& job_id);

  // Inserts `row` and runs `in_txn` (may be empty) in the same transaction; an error of either
  // rolls both back.
  absl::Status CommitCheckpoint(const CheckpointRow& row,
                                const std::function<absl::Status(StoreTxn&)>& in_txn);
  absl::Status MarkCheckpointFinal(const std::string& id);

  // The batch ledger of a job: its cursor and outstanding batches replace what was stored, in one
  // transaction (PutLedger) or inside an open one (WriteLedger, e.g. with a checkpoint's commit).
  absl::Status PutLedger(const std::string& job_id, const LedgerShape& shape,
                         const LedgerSnapshot& snapshot);
  static absl::Status WriteLedger(StoreTxn& txn, const std::string& job_id,
                                  const LedgerShape& shape, const LedgerSnapshot& snapshot);
  absl::StatusOr<std::optional<StoredLedger>> GetLedger(const std::string& job_id);
  // The checkpoint of (job, step), whatever its generation.
  absl::StatusOr<std::optional<CheckpointRow>> FindCheckpoint(const std::string& job_id,
                                                              int64_t step);
  // A job's checkpoints by step; an empty job id lists every checkpoint (by job, then step).
  absl::StatusOr<std::vector<CheckpointRow>> ListCheckpoints(const std::string& job_id);
  absl::Status DeleteCheckpoints(const std::vector<std::string>& ids);

  // A job's runtime (without its quarantine list, which is kept per dataset).
  absl::Status PutJobRuntime(const std::string& job_id, const v1::JobRuntime& runtime);
  absl::StatusOr<std::optional<v1::JobRuntime>> GetJobRuntime(const std::string& job_id);
  // Records quarantined videos of the dataset with this manifest digest; returns how many were
  // new (a video already recorded is kept as first reported).
  absl::StatusOr<int64_t> AddQuarantined(const std::string& manifest_sha256,
                                         const std::vector<v1::QuarantinedVideo>& videos,
                                         int64_t time_ms);
  // By manifest row.
  absl::StatusOr<std::vector<v1::QuarantinedVideo>> ListQuarantined(
      const std::string& manifest_sha256);

  absl::Status PutWorker(const v1::Worker& worker);
  absl::StatusOr<std::vector<v1::Worker>> ListWorkers();

 private:
  explicit Store(sqlite3* db) : db_(db) {}
  absl::Status Migrate(int target);
  absl::Status Exec(const char* sql);

  // One connection, one writer: every public method holds mu_ for its whole transaction.
  absl::Mutex mu_;
  sqlite3* const db_;
  int version_ = 0;
};

}  // namespace vjepa::coordinator

#endif  // VJEPA_SERVICES_COORDINATOR_STORE_H_
