#include "services/coordinator/store.h"

#include <sqlite3.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status/status_macros.h"

namespace vjepa::coordinator {
namespace {

// Each entry moves the schema from version i to i+1. Never edit a released entry: add one.
constexpr const char* kMigrations[] = {
    // 0 -> 1: jobs.
    R"sql(
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        kind TEXT NOT NULL,
        state INTEGER NOT NULL,
        spec_yaml TEXT NOT NULL,
        message TEXT NOT NULL DEFAULT '',
        create_time_ms INTEGER NOT NULL,
        update_time_ms INTEGER NOT NULL);
      CREATE INDEX jobs_owner ON jobs(owner);
    )sql",
    // 1 -> 2: idempotent submits, progress fields, event logs, the worker registry.
    R"sql(
      ALTER TABLE jobs ADD COLUMN client_request_id TEXT NOT NULL DEFAULT '';
      ALTER TABLE jobs ADD COLUMN step INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN total_steps INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN trainers INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE jobs ADD COLUMN dataworkers INTEGER NOT NULL DEFAULT 0;
      CREATE UNIQUE INDEX jobs_request ON jobs(owner, client_request_id)
        WHERE client_request_id != '';
      CREATE TABLE job_events (
        job_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        time_ms INTEGER NOT NULL,
        type TEXT NOT NULL,
        state INTEGER NOT NULL,
        message TEXT NOT NULL,
        step INTEGER NOT NULL,
        PRIMARY KEY (job_id, seq));
      INSERT INTO job_events (job_id, seq, time_ms, type, state, message, step)
        SELECT id, 1, create_time_ms, 'submitted', state, 'job submitted', 0 FROM jobs;
      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        incarnation INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        state INTEGER NOT NULL,
        advertise_address TEXT NOT NULL,
        register_time_ms INTEGER NOT NULL,
        last_heartbeat_ms INTEGER NOT NULL,
        job_id TEXT NOT NULL,
        cpus INTEGER NOT NULL,
        device TEXT NOT NULL,
        message TEXT NOT NULL,
        principal TEXT NOT NULL);
      CREATE INDEX workers_name ON workers(name);
    )sql",
    // 2 -> 3: the checkpoint index (blobs under <data_dir>/checkpoints, docs/checkpoints.md).
    R"sql(
      CREATE TABLE checkpoints (
        id TEXT PRIMARY KEY,
        job_id TEXT NOT NULL,
        generation INTEGER NOT NULL,
        step INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        final INTEGER NOT NULL,
        create_time_ms INTEGER NOT NULL,
        path TEXT NOT NULL,
        UNIQUE (job_id, step));
    )sql",
    // 3 -> 4: the batch ledger (docs/architecture.md §4): a cursor per job plus its outstanding
    // (LEASED or DELIVERED) batches; a batch at or above the cursor without a row is PENDING.
    R"sql(
      CREATE TABLE ledgers (
        job_id TEXT PRIMARY KEY,
        world_size INTEGER NOT NULL,
        batches_per_epoch INTEGER NOT NULL,
        steps INTEGER NOT NULL,
        window_steps INTEGER NOT NULL,
        generation INTEGER NOT NULL,
        committed_below INTEGER NOT NULL,
        progress_step INTEGER NOT NULL,
        restarts INTEGER NOT NULL);
      CREATE TABLE ledger_entries (
        job_id TEXT NOT NULL,
        g INTEGER NOT NULL,
        state INTEGER NOT NULL,
        worker_id TEXT NOT NULL,
        lease_id TEXT NOT NULL,
        deadline_ms INTEGER NOT NULL,
        step INTEGER NOT NULL,
        PRIMARY KEY (job_id, g));
    )sql",
    // 4 -> 5: assignments and the runtime of jobs (docs/pretraining.md): a trainer's rank and
    // generation, a job's runtime (dataset identity, gang, c10d store) as a serialized
    // vjepa.v1.JobRuntime, and the quarantined videos of each dataset (by manifest digest).
    R"sql(
      ALTER TABLE workers ADD COLUMN rank INTEGER NOT NULL DEFAULT 0;
      ALTER TABLE workers ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
      CREATE TABLE job_runtime (
        job_id TEXT PRIMARY KEY,
        runtime BLOB NOT NULL);
      CREATE TABLE quarantine (
        manifest_sha256 TEXT NOT NULL,
        sample INTEGER NOT NULL,
        path TEXT NOT NULL,
        reason TEXT NOT NULL,
        detail TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        PRIMARY KEY (manifest_sha256, sample));
    )sql",
};
static_assert(sizeof(kMigrations) / sizeof(kMigrations[0]) == Store::kSchemaVersion);

constexpr char kJobColumns[] =
    "id, name, owner, kind, state, spec_yaml, message, create_time_ms, update_time_ms, "
    "client_request_id, step, total_steps, generation, trainers, dataworkers, rowid";

// A prepared statement that finalizes itself.
class Stmt {
 public:
  Stmt(sqlite3* db, const std::string& sql) : db_(db) {
    rc_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
  ~Stmt() { sqlite3_finalize(stmt_); }
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  absl::Status prepared() const {
    if (rc_ == SQLITE_OK) return absl::OkStatus();
    return absl::InternalError(absl::StrCat("store: prepare: ", sqlite3_errmsg(db_)));
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) {
    sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Stmt& BindBlob(int i, const std::string& v) {
    sqlite3_bind_blob(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    return *this;
  }
  // SQLITE_ROW or SQLITE_DONE, or an error status.
  absl::StatusOr<bool> Step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return absl::InternalError(absl::StrCat("store: ", sqlite3_errmsg(db_)));
  }
  int64_t Int(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::string Blob(int col) const {
    const void* b = sqlite3_column_blob(stmt_, col);
    return b ? std::string(static_cast<const char*>(b), sqlite3_column_bytes(stmt_, col))
             : std::string();
  }
  std::string Text(int col) const {
    const unsigned char* t = sqlite3_column_text(stmt_, col);
    return t ? std::string(reinterpret_cast<const char*>(t), sqlite3_column_bytes(stmt_, col))
             : std::string();
  }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int rc_;
};

v1::Job ReadJob(const Stmt& s, int64_t* rowid) {
  v1::Job j;
  j.set_id(s.Text(0));
  j.set_name(s.Text(1));
  j.set_owner(s.Text(2));
  j.set_kind(s.Text(3));
  j.set_state(static_cast<v1::JobState>(s.Int(4)));
  j.set_spec_yaml(s.Text(5));
  j.set_message(s.Text(6));
  j.set_create_time_ms(s.Int(7));
  j.set_update_time_ms(s.Int(8));
  j.set_client_request_id(s.Text(9));
  j.set_step(s.Int(10));
  j.set_total_steps(s.Int(11));
  j.set_generation(s.Int(12));
  j.set_trainers(static_cast<int32_t>(s.Int(13)));
  j.set_dataworkers(static_cast<int32_t>(s.Int(14)));
  if (rowid) *rowid = s.Int(15);
  return j;
}

constexpr char kCheckpointColumns[] =
    "id, job_id, generation, step, size_bytes, sha256, final, create_time_ms, path";

CheckpointRow ReadCheckpoint(const Stmt& s) {
  CheckpointRow r;
  r.id = s.Text(0);
  r.job_id = s.Text(1);
  r.generation = s.Int(2);
  r.step = s.Int(3);
  r.size_bytes = s.Int(4);
  r.sha256 = s.Text(5);
  r.final = s.Int(6) != 0;
  r.create_time_ms = s.Int(7);
  r.path = s.Text(8);
  return r;
}

absl::StatusOr<std::vector<CheckpointRow>> SelectCheckpoints(sqlite3* db,
                                                             const std::string& job_id) {
  Stmt s(db, job_id.empty() ? absl::StrCat("SELECT ", kCheckpointColumns,
                                           " FROM checkpoints ORDER BY job_id, step")
                            : absl::StrCat("SELECT ", kCheckpointColumns,
                                           " FROM checkpoints WHERE job_id = ? ORDER BY step"));
  RETURN_IF_ERROR(s.prepared());
  if (!job_id.empty()) s.Bind(1, job_id);
  std::vector<CheckpointRow> rows;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    rows.push_back(ReadCheckpoint(s));
  }
  return rows;
}

absl::Status InsertEvent(sqlite3* db, const std::string& job_id, const v1::JobEvent& e) {
  Stmt s(db,
         "INSERT INTO job_events (job_id, seq, time_ms, type, state, message, step) "
         "VALUES (?, ?, ?, ?, ?, ?, ?)");
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, job_id).Bind(2, e.seq()).Bind(3, e.time_ms()).Bind(4, e.type());
  s.Bind(5, static_cast<int64_t>(e.state())).Bind(6, e.message()).Bind(7, e.step());
  return s.Step().status();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  return OpenAtVersion(path, kSchemaVersion);
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenAtVersion(const std::string& path, int version) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db,
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::UnavailableError(absl::StrCat("store ", path, ": cannot open: ", msg));
  }
  std::unique_ptr<Store> store(new Store(db));
  sqlite3_busy_timeout(db, 5000);
  RETURN_IF_ERROR(store->Exec("PRAGMA journal_mode=WAL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA synchronous=FULL"));
  RETURN_IF_ERROR(store->Exec("PRAGMA foreign_keys=ON"));
  {
    Stmt s(db, "PRAGMA user_version");
    RETURN_IF_ERROR(s.prepared());
    ASSIGN_OR_RETURN(bool row, s.Step());
    store->version_ = row ? static_cast<int>(s.Int(0)) : 0;
  }
  if (store->version_ > kSchemaVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "store ", path, ": schema version ", store->version_, " is newer than this coordinator's (",
        kSchemaVersion, "): run a newer coordinator"));
  }
  RETURN_IF_ERROR(store->Migrate(version));
  return store;
}

Store::~Store() { sqlite3_close(db_); }

absl::Status Store::Exec(const char* sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(absl::StrCat("store: ", msg));
  }
  return absl::OkStatus();
}

absl::Status Store::Migrate(int target) {
  while (version_ < target) {
    RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
    absl::Status s = Exec(kMigrations[version_]);
    if (s.ok()) s = Exec(absl::StrCat("PRAGMA user_version=", version_ + 1).c_str());
    if (!s.ok()) {
      (void)Exec("ROLLBACK");
      return absl::InternalError(absl::StrCat("store: migration ", version_, " -> ", version_ + 1,
                                              " failed: ", s.message()));
    }
    RETURN_IF_ERROR(Exec("COMMIT"));
    ++version_;
  }
  return absl::OkStatus();
}

absl::Status Store::InsertJob(const v1::Job& j, const v1::JobEvent& event) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status s = [&]() -> absl::Status {
    Stmt st(db_,
            "INSERT INTO jobs (id, name, owner, kind, state, spec_yaml, message, create_time_ms, "
            "update_time_ms, client_request_id, step, total_steps, generation, trainers, "
            "dataworkers) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    RETURN_IF_ERROR(st.prepared());
    st.Bind(1, j.id()).Bind(2, j.name()).Bind(3, j.owner()).Bind(4, j.kind());
    st.Bind(5, static_cast<int64_t>(j.state())).Bind(6, j.spec_yaml()).Bind(7, j.message());
    st.Bind(8, j.create_time_ms()).Bind(9, j.update_time_ms()).Bind(10, j.client_request_id());
    st.Bind(11, j.step()).Bind(12, j.total_steps()).Bind(13, j.generation());
    st.Bind(14, static_cast<int64_t>(j.trainers())).Bind(15, static_cast<int64_t>(j.dataworkers()));
    RETURN_IF_ERROR(st.Step().status());
    return InsertEvent(db_, j.id(), event);
  }();
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return Exec("COMMIT");
}

absl::StatusOr<v1::JobEvent> Store::UpdateJob(const v1::Job& j, v1::JobEvent event) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status s = [&]() -> absl::Status {
    Stmt st(db_,
            "UPDATE jobs SET state = ?, message = ?, update_time_ms = ?, step = ?, generation = ? "
            "WHERE id = ?");
    RETURN_IF_ERROR(st.prepared());
    st.Bind(1, static_cast<int64_t>(j.state())).Bind(2, j.message()).Bind(3, j.update_time_ms());
    st.Bind(4, j.step()).Bind(5, j.generation()).Bind(6, j.id());
    RETURN_IF_ERROR(st.Step().status());
    if (sqlite3_changes(db_) != 1)
      return absl::NotFoundError(absl::StrCat("job ", j.id(), " not found"));
    Stmt seq(db_, "SELECT COALESCE(MAX(seq), 0) + 1 FROM job_events WHERE job_id = ?");
    RETURN_IF_ERROR(seq.prepared());
    seq.Bind(1, j.id());
    RETURN_IF_ERROR(seq.Step().status());
    event.set_seq(seq.Int(0));
    return InsertEvent(db_, j.id(), event);
  }();
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  return event;
}

absl::StatusOr<std::optional<v1::Job>> Store::GetJob(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE id = ?"));
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<v1::Job>();
  return std::optional<v1::Job>(ReadJob(s, nullptr));
}

absl::StatusOr<std::optional<v1::Job>> Store::FindJobByRequestId(const std::string& owner,
                                                                 const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kJobColumns,
                           " FROM jobs WHERE owner = ? AND client_request_id = ?"));
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, owner).Bind(2, request_id);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<v1::Job>();
  return std::optional<v1::Job>(ReadJob(s, nullptr));
}

absl::StatusOr<std::vector<v1::Job>> Store::ListJobs(const JobFilter& filter,
                                                     std::vector<int64_t>* rowids) {
  absl::MutexLock lock(&mu_);
  std::string sql = absl::StrCat("SELECT ", kJobColumns, " FROM jobs WHERE rowid > ?");
  if (!filter.owner.empty()) absl::StrAppend(&sql, " AND owner = ?");
  if (!filter.states.empty()) {
    std::vector<int> states(filter.states.begin(), filter.states.end());
    absl::StrAppend(&sql, " AND state IN (", absl::StrJoin(states, ","), ")");
  }
  absl::StrAppend(&sql, " ORDER BY rowid LIMIT ?");
  Stmt s(db_, sql);
  RETURN_IF_ERROR(s.prepared());
  int i = 1;
  s.Bind(i++, filter.after_rowid);
  if (!filter.owner.empty()) s.Bind(i++, filter.owner);
  s.Bind(i++, static_cast<int64_t>(filter.limit));
  std::vector<v1::Job> jobs;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    int64_t rowid;
    jobs.push_back(ReadJob(s, &rowid));
    if (rowids) rowids->push_back(rowid);
  }
  return jobs;
}

absl::StatusOr<std::vector<v1::JobEvent>> Store::ListEvents(const std::string& job_id,
                                                            int64_t after_seq, int limit) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "SELECT seq, time_ms, type, state, message, step FROM job_events "
         "WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?");
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, job_id).Bind(2, after_seq).Bind(3, static_cast<int64_t>(limit));
  std::vector<v1::JobEvent> events;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::JobEvent& e = events.emplace_back();
    e.set_seq(s.Int(0));
    e.set_time_ms(s.Int(1));
    e.set_type(s.Text(2));
    e.set_state(static_cast<v1::JobState>(s.Int(3)));
    e.set_message(s.Text(4));
    e.set_step(s.Int(5));
  }
  return events;
}

absl::StatusOr<std::vector<std::pair<v1::JobState, int64_t>>> Store::CountJobsByState() {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT state, COUNT(*) FROM jobs GROUP BY state");
  RETURN_IF_ERROR(s.prepared());
  std::vector<std::pair<v1::JobState, int64_t>> counts;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    counts.emplace_back(static_cast<v1::JobState>(s.Int(0)), s.Int(1));
  }
  return counts;
}

absl::StatusOr<std::vector<CheckpointRow>> Store::DeleteJob(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  std::vector<CheckpointRow> rows;
  absl::Status s = [&]() -> absl::Status {
    ASSIGN_OR_RETURN(rows, SelectCheckpoints(db_, job_id));
    Stmt job(db_, "DELETE FROM jobs WHERE id = ?");
    RETURN_IF_ERROR(job.prepared());
    job.Bind(1, job_id);
    RETURN_IF_ERROR(job.Step().status());
    if (sqlite3_changes(db_) != 1) {
      return absl::NotFoundError(absl::StrCat("job ", job_id, " not found"));
    }
    for (const char* sql :
         {"DELETE FROM job_events WHERE job_id = ?", "DELETE FROM checkpoints WHERE job_id = ?",
          "DELETE FROM ledgers WHERE job_id = ?", "DELETE FROM ledger_entries WHERE job_id = ?",
          "DELETE FROM job_runtime WHERE job_id = ?"}) {
      Stmt st(db_, sql);
      RETURN_IF_ERROR(st.prepared());
      st.Bind(1, job_id);
      RETURN_IF_ERROR(st.Step().status());
    }
    return absl::OkStatus();
  }();
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  return rows;
}

absl::Status Store::CommitCheckpoint(const CheckpointRow& r,
                                     const std::function<absl::Status(StoreTxn&)>& in_txn) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status s = [&]() -> absl::Status {
    Stmt st(db_, absl::StrCat("INSERT INTO checkpoints (", kCheckpointColumns,
                              ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    RETURN_IF_ERROR(st.prepared());
    st.Bind(1, r.id).Bind(2, r.job_id).Bind(3, r.generation).Bind(4, r.step);
    st.Bind(5, r.size_bytes).Bind(6, r.sha256).Bind(7, int64_t{r.final ? 1 : 0});
    st.Bind(8, r.create_time_ms).Bind(9, r.path);
    RETURN_IF_ERROR(st.Step().status());
    if (in_txn) {
      StoreTxn txn{db_};
      RETURN_IF_ERROR(in_txn(txn));
    }
    return absl::OkStatus();
  }();
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return Exec("COMMIT");
}

absl::Status Store::MarkCheckpointFinal(const std::string& id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "UPDATE checkpoints SET final = 1 WHERE id = ?");
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, id);
  return s.Step().status();
}

absl::StatusOr<std::optional<CheckpointRow>> Store::FindCheckpoint(const std::string& job_id,
                                                                   int64_t step) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, absl::StrCat("SELECT ", kCheckpointColumns,
                           " FROM checkpoints WHERE job_id = ? AND step = ?"));
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, job_id).Bind(2, step);
  ASSIGN_OR_RETURN(bool row, s.Step());
  if (!row) return std::optional<CheckpointRow>();
  return std::optional<CheckpointRow>(ReadCheckpoint(s));
}

absl::StatusOr<std::vector<CheckpointRow>> Store::ListCheckpoints(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  return SelectCheckpoints(db_, job_id);
}

absl::Status Store::DeleteCheckpoints(const std::vector<std::string>& ids) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status s = [&]() -> absl::Status {
    for (const std::string& id : ids) {
      Stmt st(db_, "DELETE FROM checkpoints WHERE id = ?");
      RETURN_IF_ERROR(st.prepared());
      st.Bind(1, id);
      RETURN_IF_ERROR(st.Step().status());
    }
    return absl::OkStatus();
  }();
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return Exec("COMMIT");
}

absl::Status Store::PutWorker(const v1::Worker& w) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "INSERT OR REPLACE INTO workers (id, name, incarnation, kind, state, advertise_address, "
         "register_time_ms, last_heartbeat_ms, job_id, cpus, device, message, principal, rank, "
         "generation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, w.id()).Bind(2, w.name()).Bind(3, w.incarnation());
  s.Bind(4, static_cast<int64_t>(w.kind())).Bind(5, static_cast<int64_t>(w.state()));
  s.Bind(6, w.advertise_address()).Bind(7, w.register_time_ms()).Bind(8, w.last_heartbeat_ms());
  s.Bind(9, w.job_id()).Bind(10, static_cast<int64_t>(w.cpus())).Bind(11, w.device());
  s.Bind(12, w.message()).Bind(13, w.principal());
  s.Bind(14, static_cast<int64_t>(w.rank())).Bind(15, w.generation());
  return s.Step().status();
}

absl::StatusOr<std::vector<v1::Worker>> Store::ListWorkers() {
  absl::MutexLock lock(&mu_);
  Stmt s(
      db_,
      "SELECT id, name, incarnation, kind, state, advertise_address, register_time_ms, "
      "last_heartbeat_ms, job_id, cpus, device, message, principal, rank, generation FROM workers "
      "ORDER BY rowid");
  RETURN_IF_ERROR(s.prepared());
  std::vector<v1::Worker> workers;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::Worker& w = workers.emplace_back();
    w.set_id(s.Text(0));
    w.set_name(s.Text(1));
    w.set_incarnation(s.Int(2));
    w.set_kind(static_cast<v1::WorkerKind>(s.Int(3)));
    w.set_state(static_cast<v1::WorkerState>(s.Int(4)));
    w.set_advertise_address(s.Text(5));
    w.set_register_time_ms(s.Int(6));
    w.set_last_heartbeat_ms(s.Int(7));
    w.set_job_id(s.Text(8));
    w.set_cpus(static_cast<int32_t>(s.Int(9)));
    w.set_device(s.Text(10));
    w.set_message(s.Text(11));
    w.set_principal(s.Text(12));
    w.set_rank(static_cast<int32_t>(s.Int(13)));
    w.set_generation(s.Int(14));
  }
  return workers;
}

absl::Status Store::WriteLedger(StoreTxn& txn, const std::string& job_id, const LedgerShape& shape,
                                const LedgerSnapshot& snapshot) {
  Stmt row(txn.db,
           "INSERT OR REPLACE INTO ledgers (job_id, world_size, batches_per_epoch, steps, "
           "window_steps, generation, committed_below, progress_step, restarts) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
  RETURN_IF_ERROR(row.prepared());
  row.Bind(1, job_id).Bind(2, int64_t{shape.world_size}).Bind(3, shape.batches_per_epoch);
  row.Bind(4, shape.steps).Bind(5, shape.window_steps).Bind(6, snapshot.generation);
  row.Bind(7, snapshot.committed_below).Bind(8, snapshot.progress_step);
  row.Bind(9, snapshot.restarts);
  RETURN_IF_ERROR(row.Step().status());
  Stmt clear(txn.db, "DELETE FROM ledger_entries WHERE job_id = ?");
  RETURN_IF_ERROR(clear.prepared());
  clear.Bind(1, job_id);
  RETURN_IF_ERROR(clear.Step().status());
  for (const LedgerEntry& e : snapshot.outstanding) {
    Stmt entry(txn.db,
               "INSERT INTO ledger_entries (job_id, g, state, worker_id, lease_id, deadline_ms, "
               "step) VALUES (?, ?, ?, ?, ?, ?, ?)");
    RETURN_IF_ERROR(entry.prepared());
    entry.Bind(1, job_id).Bind(2, e.g);
    entry.Bind(3, int64_t{e.state == LedgerEntry::State::kDelivered ? 1 : 0});
    entry.Bind(4, e.worker_id).Bind(5, e.lease_id).Bind(6, e.deadline_ms).Bind(7, e.step);
    RETURN_IF_ERROR(entry.Step().status());
  }
  return absl::OkStatus();
}

absl::Status Store::PutLedger(const std::string& job_id, const LedgerShape& shape,
                              const LedgerSnapshot& snapshot) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  StoreTxn txn{db_};
  absl::Status s = WriteLedger(txn, job_id, shape, snapshot);
  if (!s.ok()) {
    (void)Exec("ROLLBACK");
    return s;
  }
  return Exec("COMMIT");
}

absl::StatusOr<std::optional<StoredLedger>> Store::GetLedger(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Stmt row(db_,
           "SELECT world_size, batches_per_epoch, steps, window_steps, generation, "
           "committed_below, progress_step, restarts FROM ledgers WHERE job_id = ?");
  RETURN_IF_ERROR(row.prepared());
  row.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool found, row.Step());
  if (!found) return std::optional<StoredLedger>();
  StoredLedger l;
  l.shape.world_size = static_cast<int>(row.Int(0));
  l.shape.batches_per_epoch = row.Int(1);
  l.shape.steps = row.Int(2);
  l.shape.window_steps = row.Int(3);
  l.snapshot.generation = row.Int(4);
  l.snapshot.committed_below = row.Int(5);
  l.snapshot.progress_step = row.Int(6);
  l.snapshot.restarts = row.Int(7);
  Stmt entries(db_,
               "SELECT g, state, worker_id, lease_id, deadline_ms, step FROM ledger_entries "
               "WHERE job_id = ? ORDER BY g");
  RETURN_IF_ERROR(entries.prepared());
  entries.Bind(1, job_id);
  while (true) {
    ASSIGN_OR_RETURN(bool more, entries.Step());
    if (!more) break;
    LedgerEntry e;
    e.g = entries.Int(0);
    e.state = entries.Int(1) == 1 ? LedgerEntry::State::kDelivered : LedgerEntry::State::kLeased;
    e.worker_id = entries.Text(2);
    e.lease_id = entries.Text(3);
    e.deadline_ms = entries.Int(4);
    e.step = entries.Int(5);
    l.snapshot.outstanding.push_back(std::move(e));
  }
  return std::optional<StoredLedger>(std::move(l));
}

absl::Status Store::PutJobRuntime(const std::string& job_id, const v1::JobRuntime& runtime) {
  v1::JobRuntime stored = runtime;
  stored.clear_quarantined();  // kept per dataset in its own table
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "INSERT OR REPLACE INTO job_runtime (job_id, runtime) VALUES (?, ?)");
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, job_id).BindBlob(2, stored.SerializeAsString());
  return s.Step().status();
}

absl::StatusOr<std::optional<v1::JobRuntime>> Store::GetJobRuntime(const std::string& job_id) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_, "SELECT runtime FROM job_runtime WHERE job_id = ?");
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, job_id);
  ASSIGN_OR_RETURN(bool found, s.Step());
  if (!found) return std::optional<v1::JobRuntime>();
  v1::JobRuntime runtime;
  if (!runtime.ParseFromString(s.Blob(0))) {
    return absl::DataLossError(absl::StrCat("store: job ", job_id, ": unreadable runtime row"));
  }
  return std::optional<v1::JobRuntime>(std::move(runtime));
}

absl::StatusOr<int64_t> Store::AddQuarantined(const std::string& manifest_sha256,
                                              const std::vector<v1::QuarantinedVideo>& videos,
                                              int64_t time_ms) {
  absl::MutexLock lock(&mu_);
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  int64_t added = 0;
  absl::Status st = [&]() -> absl::Status {
    for (const v1::QuarantinedVideo& v : videos) {
      Stmt s(db_,
             "INSERT OR IGNORE INTO quarantine (manifest_sha256, sample, path, reason, detail, "
             "time_ms) VALUES (?, ?, ?, ?, ?, ?)");
      RETURN_IF_ERROR(s.prepared());
      s.Bind(1, manifest_sha256).Bind(2, v.sample()).Bind(3, v.path()).Bind(4, v.reason());
      s.Bind(5, v.detail()).Bind(6, time_ms);
      RETURN_IF_ERROR(s.Step().status());
      added += sqlite3_changes(db_);
    }
    return absl::OkStatus();
  }();
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  RETURN_IF_ERROR(Exec("COMMIT"));
  return added;
}

absl::StatusOr<std::vector<v1::QuarantinedVideo>> Store::ListQuarantined(
    const std::string& manifest_sha256) {
  absl::MutexLock lock(&mu_);
  Stmt s(db_,
         "SELECT sample, path, reason, detail FROM quarantine WHERE manifest_sha256 = ? "
         "ORDER BY sample");
  RETURN_IF_ERROR(s.prepared());
  s.Bind(1, manifest_sha256);
  std::vector<v1::QuarantinedVideo> out;
  while (true) {
    ASSIGN_OR_RETURN(bool row, s.Step());
    if (!row) break;
    v1::QuarantinedVideo& v = out.emplace_back();
    v.set_sample(s.Int(0));
    v.set_path(s.Text(1));
    v.set_reason(s.Text(2));
    v.set_detail(s.Text(3));
  }
  return out;
}

}  // namespace vjepa::coordinator
