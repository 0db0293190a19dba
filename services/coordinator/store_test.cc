#include "services/coordinator/store.h"

#include <sqlite3.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "common/status/status_macros.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::coordinator {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           absl::StrCat("vjepa-store-", getpid(), "-",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = (dir_ / "coordinator.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Runs raw SQL on the file, as a previous release would have written it.
  void RawExec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
  }

  std::filesystem::path dir_;
  std::string path_;
};

v1::Job MakeJob(const std::string& id, const std::string& owner, const std::string& rid = "") {
  v1::Job j;
  j.set_id(id);
  j.set_name("n-" + id);
  j.set_owner(owner);
  j.set_kind("pretrain");
  j.set_state(v1::PENDING);
  j.set_spec_yaml("name: n\n");
  j.set_create_time_ms(1000);
  j.set_update_time_ms(1000);
  j.set_client_request_id(rid);
  j.set_total_steps(200);
  j.set_trainers(2);
  j.set_dataworkers(3);
  return j;
}

v1::JobEvent FirstEvent() {
  v1::JobEvent e;
  e.set_seq(1);
  e.set_time_ms(1000);
  e.set_type("submitted");
  e.set_state(v1::PENDING);
  return e;
}

TEST_F(StoreTest, KeepsJobsEventsAndWorkersAcrossReopen) {
  {
    ASSERT_OK_AND_ASSIGN(auto store, Store::Open(path_));
    EXPECT_EQ(store->schema_version(), Store::kSchemaVersion);
    ASSERT_OK(store->InsertJob(MakeJob("j-1", "alice", "r1"), FirstEvent()));
    ASSERT_OK(store->InsertJob(MakeJob("j-2", "bob"), FirstEvent()));
    v1::Job j = MakeJob("j-1", "alice", "r1");
    j.set_state(v1::CANCELLED);
    j.set_message("cancelled by alice");
    v1::JobEvent e;
    e.set_type("cancel");
    e.set_state(v1::CANCELLED);
    ASSERT_OK_AND_ASSIGN(v1::JobEvent stored, store->UpdateJob(j, e));
    EXPECT_EQ(stored.seq(), 2);
    v1::Worker w;
    w.set_id("w-1");
    w.set_name("dw-0");
    w.set_incarnation(3);
    w.set_kind(v1::DATAWORKER);
    w.set_state(v1::LOST);
    ASSERT_OK(store->PutWorker(w));
  }
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(path_));
  ASSERT_OK_AND_ASSIGN(auto j1, store->GetJob("j-1"));
  ASSERT_TRUE(j1.has_value());
  EXPECT_EQ(j1->state(), v1::CANCELLED);
  EXPECT_EQ(j1->message(), "cancelled by alice");
  EXPECT_EQ(j1->trainers(), 2);
  ASSERT_OK_AND_ASSIGN(auto by_rid, store->FindJobByRequestId("alice", "r1"));
  ASSERT_TRUE(by_rid.has_value());
  EXPECT_EQ(by_rid->id(), "j-1");
  ASSERT_OK_AND_ASSIGN(auto other_owner, store->FindJobByRequestId("bob", "r1"));
  EXPECT_FALSE(other_owner.has_value());
  ASSERT_OK_AND_ASSIGN(auto events, store->ListEvents("j-1", 0));
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[1].type(), "cancel");
  JobFilter bobs;
  bobs.owner = "bob";
  ASSERT_OK_AND_ASSIGN(auto jobs, store->ListJobs(bobs));
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].id(), "j-2");
  JobFilter cancelled;
  cancelled.states = {v1::CANCELLED, v1::FAILED};
  ASSERT_OK_AND_ASSIGN(jobs, store->ListJobs(cancelled));
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto workers, store->ListWorkers());
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0].state(), v1::LOST);
  EXPECT_EQ(workers[0].incarnation(), 3);
}

TEST_F(StoreTest, RefusesASecondJobWithTheSameRequestId) {
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(path_));
  ASSERT_OK(store->InsertJob(MakeJob("j-1", "alice", "r1"), FirstEvent()));
  EXPECT_THAT(store->InsertJob(MakeJob("j-2", "alice", "r1"), FirstEvent()),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("UNIQUE")));
  // The failed transaction left nothing behind.
  ASSERT_OK_AND_ASSIGN(auto j2, store->GetJob("j-2"));
  EXPECT_FALSE(j2.has_value());
  ASSERT_OK_AND_ASSIGN(auto events, store->ListEvents("j-2", 0));
  EXPECT_TRUE(events.empty());
  // Another owner may use the same id.
  EXPECT_OK(store->InsertJob(MakeJob("j-3", "bob", "r1"), FirstEvent()));
}

TEST_F(StoreTest, MigratesADataDirOfThePreviousSchema) {
  {
    ASSERT_OK_AND_ASSIGN(auto old, Store::OpenAtVersion(path_, 1));
    EXPECT_EQ(old->schema_version(), 1);
  }
  // A job as the version-1 coordinator wrote it.
  RawExec(
      "INSERT INTO jobs (id, name, owner, kind, state, spec_yaml, message, create_time_ms, "
      "update_time_ms) VALUES ('j-old', 'old-job', 'alice', 'pretrain', 3, 'name: old-job\n', "
      "'running', 5000, 6000)");
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(path_));
  EXPECT_EQ(store->schema_version(), Store::kSchemaVersion);
  ASSERT_OK_AND_ASSIGN(auto job, store->GetJob("j-old"));
  ASSERT_TRUE(job.has_value());
  EXPECT_EQ(job->name(), "old-job");
  EXPECT_EQ(job->owner(), "alice");
  EXPECT_EQ(job->state(), v1::RUNNING);
  EXPECT_EQ(job->spec_yaml(), "name: old-job\n");
  EXPECT_EQ(job->client_request_id(), "");
  // The migration gave the old job its first event.
  ASSERT_OK_AND_ASSIGN(auto events, store->ListEvents("j-old", 0));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].type(), "submitted");
  EXPECT_EQ(events[0].time_ms(), 5000);
  // And new jobs go in beside it.
  EXPECT_OK(store->InsertJob(MakeJob("j-new", "alice", "r"), FirstEvent()));
  // Version 3: the checkpoint index, empty after the migration, usable at once.
  ASSERT_OK_AND_ASSIGN(auto none, store->ListCheckpoints(""));
  EXPECT_TRUE(none.empty());
  CheckpointRow row;
  row.id = "j-old/10";
  row.job_id = "j-old";
  row.step = 10;
  row.size_bytes = 3;
  row.sha256 = std::string(64, 'a');
  row.path = "j-old/10-0.safetensors";
  EXPECT_OK(store->CommitCheckpoint(row, nullptr));
  EXPECT_FALSE(store->CommitCheckpoint(row, nullptr).ok());  // (job, step) is unique
  ASSERT_OK_AND_ASSIGN(auto rows, store->ListCheckpoints("j-old"));
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].path, row.path);
  // Version 4: the batch ledger.
  ASSERT_OK_AND_ASSIGN(auto no_ledger, store->GetLedger("j-old"));
  EXPECT_FALSE(no_ledger.has_value());
  ASSERT_OK(store->PutLedger("j-old", LedgerShape{}, LedgerSnapshot{}));
  ASSERT_OK_AND_ASSIGN(auto deleted, store->DeleteJob("j-old"));
  EXPECT_EQ(deleted.size(), 1u);
  ASSERT_OK_AND_ASSIGN(auto gone, store->GetLedger("j-old"));
  EXPECT_FALSE(gone.has_value());  // deleted with its job
}

TEST_F(StoreTest, KeepsTheBatchLedgerAndCommitsItWithACheckpoint) {
  LedgerShape shape;
  shape.world_size = 2;
  shape.batches_per_epoch = 5;
  shape.steps = 10;
  shape.window_steps = 3;
  ASSERT_OK_AND_ASSIGN(JobLedger ledger, JobLedger::Create(shape));
  int next = 0;
  ledger.Lease("dw-1", 4, 100, 50, [&] { return absl::StrCat("l-", next++); });
  ASSERT_OK(ledger.Deliver(1, 0, {0, 1}));
  {
    ASSERT_OK_AND_ASSIGN(auto store, Store::Open(path_));
    ASSERT_OK(store->InsertJob(MakeJob("j-1", "alice"), FirstEvent()));
    ASSERT_OK(store->PutLedger("j-1", shape, ledger.Snapshot()));
  }
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(path_));  // as after a restart
  ASSERT_OK_AND_ASSIGN(auto stored, store->GetLedger("j-1"));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->shape.world_size, 2);
  EXPECT_EQ(stored->shape.window_steps, 3);
  ASSERT_OK_AND_ASSIGN(JobLedger restored, JobLedger::Restore(stored->shape, stored->snapshot));
  EXPECT_EQ(restored.Counts().delivered, 2);
  EXPECT_EQ(restored.Counts().leased, 2);
  ASSERT_EQ(stored->snapshot.outstanding.size(), 4u);
  EXPECT_EQ(stored->snapshot.outstanding[2].worker_id, "dw-1");
  EXPECT_EQ(stored->snapshot.outstanding[2].lease_id, "l-2");
  EXPECT_EQ(stored->snapshot.outstanding[2].deadline_ms, 150);
  EXPECT_EQ(stored->snapshot.outstanding[0].step, 0);

  // The ledger commits in the checkpoint's transaction, and a failing commit changes neither.
  CheckpointRow row;
  row.id = "j-1/0";
  row.job_id = "j-1";
  row.step = 0;
  row.generation = 1;
  row.size_bytes = 3;
  row.sha256 = std::string(64, 'a');
  row.path = "j-1/0-1.safetensors";
  JobLedger committed = restored;
  ASSERT_OK(committed.Commit(1, 0));
  EXPECT_FALSE(store
                   ->CommitCheckpoint(row,
                                      [&](StoreTxn& txn) -> absl::Status {
                                        RETURN_IF_ERROR(Store::WriteLedger(txn, "j-1", shape,
                                                                           committed.Snapshot()));
                                        return absl::InternalError("disk full");
                                      })
                   .ok());
  ASSERT_OK_AND_ASSIGN(auto unchanged, store->GetLedger("j-1"));
  EXPECT_EQ(unchanged->snapshot.committed_below, 0);
  ASSERT_OK_AND_ASSIGN(auto no_rows, store->ListCheckpoints("j-1"));
  EXPECT_TRUE(no_rows.empty());
  ASSERT_OK(store->CommitCheckpoint(row, [&](StoreTxn& txn) {
    return Store::WriteLedger(txn, "j-1", shape, committed.Snapshot());
  }));
  ASSERT_OK_AND_ASSIGN(auto after, store->GetLedger("j-1"));
  EXPECT_EQ(after->snapshot.committed_below, 2);
  EXPECT_EQ(after->snapshot.outstanding.size(), 2u);  // g 2 and 3, still leased
}

TEST_F(StoreTest, RefusesASchemaNewerThanItKnows) {
  { ASSERT_OK_AND_ASSIGN(auto store, Store::Open(path_)); }
  RawExec(absl::StrCat("PRAGMA user_version=", Store::kSchemaVersion + 1));
  EXPECT_THAT(Store::Open(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("is newer than")));
}

TEST_F(StoreTest, ReportsAnUnopenableFile) {
  EXPECT_THAT(Store::Open((dir_ / "missing" / "dir" / "x.db").string()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot open")));
}

}  // namespace
}  // namespace vjepa::coordinator
