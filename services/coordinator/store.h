// The coordinator's durable state in SQLite (WAL, synchronous=FULL): jobs, their event logs and
// the worker registry. Every write is committed before the method returns, so an acknowledged
// RPC survives a SIGKILL. The schema is versioned (PRAGMA user_version) and migrated forward on
// open; see kMigrations in store.cc.
#ifndef VJEPA_SERVICES_COORDINATOR_STORE_H_
#define VJEPA_SERVICES_COORDINATOR_STORE_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
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

class Store {
 public:
  static constexpr int kSchemaVersion = 2;

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
