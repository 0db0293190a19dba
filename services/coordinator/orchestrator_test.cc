#include "services/coordinator/orchestrator.h"

#include <algorithm>
#include <memory>
#include <set>

#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

const rpc::Principal kAlice{"alice", rpc::Role::kUser};
const rpc::Principal kWorker{"workers", rpc::Role::kWorker};

// Two trainers, batch 2, 10 steps: 20 global batches.
constexpr char kSpec[] =
    "name: o\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\n"
    "optim: {steps: 10, batch_size: 2}\ncheckpoint: {every_steps: 2}\n"
    "resources: {trainers: 2, dataworkers: 1}\n";

class OrchestratorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(store_, Store::Open(dir_.File("c.db")));
    Start();
  }
  // (Re)creates everything above the store, as a coordinator restart does.
  void Start() {
    orch_.reset();
    workers_.reset();
    jobs_.reset();
    metrics_ = std::make_unique<metrics::Registry>();
    jobs_ = std::make_unique<JobManager>(store_.get(), *metrics_, [this] { return now_; });
    ASSERT_OK(jobs_->Init());
    WorkerRegistryOptions w;
    w.heartbeat_interval = absl::Seconds(1);
    w.lost_after = absl::Seconds(5);
    w.now = [this] { return now_; };
    workers_ = std::make_unique<WorkerRegistry>(store_.get(), *metrics_, w);
    ASSERT_OK(workers_->Init());
    OrchestratorOptions o;
    o.now = [this] { return now_; };
    o.max_restarts = 2;
    o.lease_duration = absl::Seconds(60);
    o.grace = absl::Seconds(5);
    orch_ = std::make_unique<Orchestrator>(store_.get(), jobs_.get(), workers_.get(), *metrics_, o);
    ASSERT_OK(orch_->Init());
    workers_->SetListener([this](const v1::Worker& w) { orch_->OnWorkerLeft(w); });
  }

  std::string Submit(const std::string& spec = kSpec) {
    v1::SubmitJobRequest req;
    req.set_spec_yaml(spec);
    v1::SubmitJobResponse resp;
    EXPECT_OK(jobs_->SubmitJob(kAlice, req, &resp));
    return resp.job().id();
  }
  std::string Register(const std::string& name, v1::WorkerKind kind, int64_t incarnation = 1) {
    v1::RegisterWorkerRequest req;
    req.set_name(name);
    req.set_incarnation(incarnation);
    req.set_kind(kind);
    req.set_advertise_address(name + ":1");
    v1::RegisterWorkerResponse resp;
    EXPECT_OK(workers_->RegisterWorker(kWorker, req, &resp));
    return resp.worker().id();
  }
  v1::TrainerAssignment Beat(const std::string& id, const std::string& c10d = "",
                             const std::string& job = "", int64_t generation = 0) {
    v1::HeartbeatRequest req;
    req.set_worker_id(id);
    req.set_c10d_store_address(c10d);
    req.set_job_id(job);
    req.set_generation(generation);
    v1::HeartbeatResponse resp;
    EXPECT_OK(workers_->Heartbeat(kWorker, req, &resp));
    orch_->OnHeartbeat(resp.worker(), &req, resp.mutable_assignment());
    return resp.assignment();
  }
  v1::LeaseBatchesResponse Lease(const std::string& id, int max) {
    v1::LeaseBatchesRequest req;
    req.set_worker_id(id);
    req.set_max_batches(max);
    v1::LeaseBatchesResponse resp;
    EXPECT_OK(orch_->LeaseBatches(kWorker, req, &resp));
    return resp;
  }
  absl::Status Identity(const std::string& dw, const std::string& job, int64_t n) {
    v1::ReportProgressRequest req;
    req.set_worker_id(dw);
    req.set_job_id(job);
    req.set_generation(1);
    req.set_dataset_size(n);
    req.set_manifest_sha256("abc123");
    req.set_recipe_version("r1");
    v1::ReportProgressResponse resp;
    return orch_->ReportProgress(kWorker, req, &resp);
  }
  absl::Status Progress(const std::string& trainer, const std::string& job, int64_t generation,
                        int rank, int64_t step, std::vector<int64_t> delivered) {
    v1::ReportProgressRequest req;
    req.set_worker_id(trainer);
    req.set_job_id(job);
    req.set_generation(generation);
    req.set_rank(rank);
    req.set_step(step);
    req.set_loss(0.5);
    req.set_clips_per_second(10);
    req.set_data_wait_fraction(0.25);
    for (int64_t g : delivered) req.add_delivered(g);
    v1::ReportProgressResponse resp;
    return orch_->ReportProgress(kWorker, req, &resp);
  }
  absl::Status Commit(const std::string& job, int64_t generation, int64_t step) {
    CheckpointRow row;
    row.id = absl::StrCat(job, "/", step);
    row.job_id = job;
    row.generation = generation;
    row.step = step;
    row.path = row.id;
    absl::MutexLock lock(orch_->commit_mutex());
    return store_->CommitCheckpoint(row, [&](StoreTxn& txn) ABSL_NO_THREAD_SAFETY_ANALYSIS {
      return orch_->OnCheckpointCommitted(txn, job, generation, step, false);
    });
  }
  v1::Job Get(const std::string& id) {
    v1::GetJobRequest req;
    req.set_id(id);
    v1::GetJobResponse resp;
    EXPECT_OK(jobs_->GetJob(kAlice, req, &resp));
    orch_->Decorate(resp.mutable_job());
    return resp.job();
  }
  // A scheduled job with trainers t0, t1 and dataworker d0 whose dataset (8 videos, 4 batches
  // per epoch) is known.
  std::string Running() {
    const std::string job = Submit();
    t0_ = Register("t0", v1::TRAINER);
    t1_ = Register("t1", v1::TRAINER);
    d0_ = Register("d0", v1::DATAWORKER);
    orch_->Tick();
    EXPECT_EQ(Get(job).state(), v1::SCHEDULED);
    EXPECT_EQ(Lease(d0_, 8).leases_size(), 1);
    EXPECT_OK(Identity(d0_, job, 8));
    return job;
  }

  testing::ScratchDir dir_;
  absl::Time now_ = absl::FromUnixSeconds(2'000'000);
  std::unique_ptr<Store> store_;
  std::unique_ptr<metrics::Registry> metrics_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<WorkerRegistry> workers_;
  std::unique_ptr<Orchestrator> orch_;
  std::string t0_, t1_, d0_;
};

TEST_F(OrchestratorTest, GangIsScheduledAllOrNoneAndRankZeroNamesTheStore) {
  const std::string job = Submit();
  const std::string t0 = Register("t0", v1::TRAINER);
  Register("d0", v1::DATAWORKER);
  orch_->Tick();
  EXPECT_EQ(Get(job).state(), v1::PENDING);  // one trainer of two: nothing is placed
  EXPECT_EQ(Beat(t0).job_id(), "");
  const std::string t1 = Register("t1", v1::TRAINER);
  orch_->Tick();
  v1::Job j = Get(job);
  EXPECT_EQ(j.state(), v1::SCHEDULED);
  EXPECT_EQ(j.generation(), 1);
  ASSERT_EQ(j.runtime().trainers_size(), 2);

  v1::TrainerAssignment a0 = Beat(j.runtime().trainers(0));
  v1::TrainerAssignment a1 = Beat(j.runtime().trainers(1));
  EXPECT_EQ(a0.job_id(), job);
  EXPECT_EQ(a0.rank(), 0);
  EXPECT_EQ(a1.rank(), 1);
  EXPECT_EQ(a1.world_size(), 2);
  EXPECT_EQ(a0.c10d_store_address(), "");
  EXPECT_THAT(a0.dataworkers(), ElementsAre("d0:1"));
  EXPECT_EQ(a0.resume_step(), 0);
  EXPECT_EQ(a0.steps(), 10);
  // Only rank 0 of the current generation names the store.
  Beat(j.runtime().trainers(1), "10.0.0.2:99", job, 1);
  EXPECT_EQ(Beat(j.runtime().trainers(1)).c10d_store_address(), "");
  Beat(j.runtime().trainers(0), "10.0.0.1:29500", job, 1);
  EXPECT_EQ(Beat(j.runtime().trainers(1)).c10d_store_address(), "10.0.0.1:29500");
}

TEST_F(OrchestratorTest, HigherPriorityGoesFirstAndEqualOnesInSubmissionOrder) {
  const std::string first = Submit();
  const std::string second = Submit();
  std::string urgent_spec = kSpec;
  urgent_spec.replace(urgent_spec.find("dataworkers: 1}"), 15, "dataworkers: 1, priority: 5}");
  const std::string urgent = Submit(urgent_spec);
  ASSERT_FALSE(urgent.empty());
  Register("t0", v1::TRAINER);
  Register("t1", v1::TRAINER);
  Register("d0", v1::DATAWORKER);
  orch_->Tick();
  EXPECT_EQ(Get(urgent).state(), v1::SCHEDULED);
  EXPECT_EQ(Get(first).state(), v1::PENDING);
  EXPECT_EQ(Get(second).state(), v1::PENDING);
  v1::CancelJobRequest cancel;
  cancel.set_id(urgent);
  v1::CancelJobResponse cancelled;
  ASSERT_OK(jobs_->CancelJob(kAlice, cancel, &cancelled));
  orch_->Tick();  // drops the cancelled job and frees its trainers
  orch_->Tick();
  EXPECT_EQ(Get(first).state(), v1::SCHEDULED);
  EXPECT_EQ(Get(second).state(), v1::PENDING);
}

TEST_F(OrchestratorTest, LeasesWaitForTheDatasetThenFillTheWindowAndCheckpointsCommit) {
  const std::string job = Submit();
  Register("t0", v1::TRAINER);
  Register("t1", v1::TRAINER);
  const std::string d0 = Register("d0", v1::DATAWORKER);
  orch_->Tick();
  v1::LeaseBatchesResponse first = Lease(d0, 8);
  ASSERT_EQ(first.leases_size(), 1);  // the dataset is unknown: one lease, no position
  EXPECT_EQ(first.leases(0).global_index(), 0);
  EXPECT_EQ(first.leases(0).dataset_size(), 0);
  EXPECT_FALSE(first.spec_yaml().empty());
  EXPECT_EQ(Lease(d0, 8).leases_size(), 0);
  ASSERT_OK(Identity(d0, job, 9));  // 9 videos, batch 2: 4 batches per epoch
  v1::LeaseBatchesResponse more = Lease(d0, 100);
  // The window: 4 steps of 2 ranks ahead of the (absent) progress.
  ASSERT_EQ(more.leases_size(), 7);
  EXPECT_EQ(more.leases(0).global_index(), 1);
  EXPECT_EQ(more.leases(5).global_index(), 6);
  EXPECT_EQ(more.leases(5).epoch(), 1);
  EXPECT_EQ(more.leases(5).batch_index(), 2);
  EXPECT_EQ(more.leases(5).rank(), 0);
  EXPECT_EQ(more.leases(5).dataset_size(), 9);
  EXPECT_EQ(more.leases(5).manifest_sha256(), "abc123");

  v1::Job j = Get(job);
  const std::string r0 = j.runtime().trainers(0), r1 = j.runtime().trainers(1);
  ASSERT_OK(Progress(r0, job, 1, 0, 1, {0}));
  ASSERT_OK(Progress(r1, job, 1, 1, 1, {1}));
  ASSERT_OK(Progress(r0, job, 1, 0, 2, {2}));
  ASSERT_OK(Progress(r1, job, 1, 1, 2, {3}));
  j = Get(job);
  EXPECT_EQ(j.state(), v1::RUNNING);
  EXPECT_EQ(j.runtime().batches_delivered(), 4);
  EXPECT_EQ(j.runtime().batches_leased(), 4);
  EXPECT_EQ(j.runtime().batches_total(), 20);
  EXPECT_DOUBLE_EQ(j.runtime().data_wait_fraction(), 0.25);
  EXPECT_DOUBLE_EQ(j.runtime().clips_per_second(), 20);
  EXPECT_EQ(Lease(d0, 100).leases_size(), 4);  // the window moved by two steps
  orch_->Tick();
  const std::string exported = metrics::Render(*metrics_);
  EXPECT_THAT(exported, HasSubstr("vjepa_coordinator_dataworkers_desired 1"));
  EXPECT_THAT(exported, HasSubstr("vjepa_coordinator_dataworkers 1"));
  EXPECT_THAT(exported,
              HasSubstr("vjepa_coordinator_job_data_wait_fraction{job=\"" + job + "\"} 0.25"));
  EXPECT_THAT(exported, HasSubstr("vjepa_coordinator_job_checkpoint_age_seconds{job=\"" + job));
  // 2 ranks × batch 2 at 20 clips/s: 0.2 s a step, a checkpoint every 2 steps.
  EXPECT_THAT(exported, HasSubstr("vjepa_coordinator_job_checkpoint_interval_seconds{job=\"" + job +
                                  "\"} 0.4"));

  ASSERT_OK(Commit(job, 1, 2));  // steps 0 and 1 done: g < 4
  j = Get(job);
  EXPECT_EQ(j.runtime().batches_committed(), 4);
  EXPECT_EQ(j.runtime().batches_delivered(), 0);
  EXPECT_THAT(Commit(job, 7, 4), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
}

TEST_F(OrchestratorTest, LostTrainerRestartsTheJobFencesStaleReportsAndResumes) {
  const std::string job = Running();
  v1::Job j = Get(job);
  const std::string r0 = j.runtime().trainers(0), r1 = j.runtime().trainers(1);
  ASSERT_OK(Progress(r0, job, 1, 0, 1, {0}));
  ASSERT_OK(Progress(r1, job, 1, 1, 1, {1}));
  ASSERT_OK(Commit(job, 1, 1));
  ASSERT_OK(Progress(r0, job, 1, 0, 2, {2}));
  ASSERT_GT(Lease(d0_, 100).leases_size(), 0);

  // r1 goes silent; everyone else keeps beating.
  now_ += absl::Seconds(4);
  Beat(r0);
  Beat(d0_);
  now_ += absl::Seconds(2);
  EXPECT_EQ(workers_->CheckDeadlines(), 1);
  j = Get(job);
  EXPECT_EQ(j.state(), v1::RESTARTING);
  EXPECT_EQ(j.generation(), 2);
  EXPECT_THAT(j.message(), HasSubstr("lost"));
  EXPECT_EQ(j.runtime().batches_leased(), 0);     // every outstanding g went back
  EXPECT_EQ(j.runtime().batches_delivered(), 0);  // delivered but uncommitted: PENDING again
  EXPECT_EQ(j.runtime().batches_committed(), 2);
  EXPECT_EQ(Beat(r0).job_id(), "");  // the survivor stops its run
  EXPECT_THAT(Progress(r0, job, 1, 0, 3, {4}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")));

  const std::string t2 = Register("t2", v1::TRAINER);
  orch_->Tick();
  j = Get(job);
  EXPECT_EQ(j.state(), v1::SCHEDULED);
  EXPECT_EQ(j.generation(), 2);
  std::set<std::string> gang(j.runtime().trainers().begin(), j.runtime().trainers().end());
  EXPECT_EQ(gang, (std::set<std::string>{r0, t2}));
  v1::TrainerAssignment a = Beat(t2);
  EXPECT_EQ(a.generation(), 2);
  EXPECT_EQ(a.resume_step(), 1);
  EXPECT_EQ(a.resume_checkpoint_id(), job + "/1");
  v1::LeaseBatchesResponse leases = Lease(d0_, 100);
  ASSERT_GT(leases.leases_size(), 0);
  EXPECT_EQ(leases.leases(0).global_index(), 2);  // from the checkpoint on
  EXPECT_EQ(leases.leases(0).generation(), 2);
}

TEST_F(OrchestratorTest, TooManyRestartsFailTheJobWithTheReason) {
  const std::string job = Running();
  for (int i = 0; i < 3; ++i) {
    v1::Job j = Get(job);
    ASSERT_EQ(j.state(), v1::SCHEDULED) << i;
    v1::ReportProgressRequest req;
    req.set_worker_id(j.runtime().trainers(0));
    req.set_job_id(job);
    req.set_generation(j.generation());
    req.set_rank(0);
    req.set_failure("step 3: the loss is not finite (nan)");
    v1::ReportProgressResponse resp;
    ASSERT_OK(orch_->ReportProgress(kWorker, req, &resp));
    orch_->Tick();
  }
  v1::Job j = Get(job);
  EXPECT_EQ(j.state(), v1::FAILED);
  EXPECT_THAT(j.message(), HasSubstr("loss is not finite"));
  EXPECT_THAT(j.message(), HasSubstr("after 2 restarts"));
  EXPECT_EQ(Beat(t0_).job_id(), "");
}

TEST_F(OrchestratorTest, LostDataworkersLeasesGoToAnother) {
  const std::string job = Running();
  ASSERT_EQ(Lease(d0_, 100).leases_size(), 7);
  const std::string d1 = Register("d1", v1::DATAWORKER);
  orch_->Tick();
  now_ += absl::Seconds(4);
  Beat(t0_);
  Beat(t1_);
  Beat(d1);
  now_ += absl::Seconds(2);
  ASSERT_EQ(workers_->CheckDeadlines(), 1);  // d0
  orch_->Tick();
  v1::Job j = Get(job);
  EXPECT_EQ(j.state(), v1::SCHEDULED);  // a dataworker never restarts a job
  EXPECT_EQ(j.generation(), 1);
  EXPECT_THAT(j.runtime().dataworkers(), ElementsAre(d1));
  v1::LeaseBatchesResponse leases = Lease(d1, 100);
  ASSERT_EQ(leases.leases_size(), 8);
  EXPECT_EQ(leases.leases(0).global_index(), 0);
  EXPECT_THAT(Beat(t0_).dataworkers(), ElementsAre("d1:1"));
}

TEST_F(OrchestratorTest, CoordinatorRestartKeepsTheJobItsGangAndItsLeases) {
  const std::string job = Running();
  v1::Job before = Get(job);
  const std::string r0 = before.runtime().trainers(0);
  Beat(r0, "10.0.0.1:29500", job, 1);
  ASSERT_OK(Progress(r0, job, 1, 0, 1, {0}));
  ASSERT_EQ(Lease(d0_, 100).leases_size(), 9);  // g 1..9: the window of steps 1..4

  Start();  // a new coordinator on the same store
  orch_->Tick();
  v1::Job after = Get(job);
  EXPECT_EQ(after.state(), v1::RUNNING);
  EXPECT_EQ(after.generation(), 1);
  EXPECT_EQ(after.runtime().trainers(0), r0);
  EXPECT_EQ(after.runtime().batches_leased(), 9);
  EXPECT_EQ(after.runtime().batches_delivered(), 1);
  EXPECT_EQ(Beat(r0).c10d_store_address(), "10.0.0.1:29500");
  EXPECT_EQ(Lease(d0_, 100).leases_size(), 0);  // everything in the window is held
  // Leases nobody claims expire after the grace period.
  now_ += absl::Seconds(4);
  Beat(t0_);
  Beat(t1_);
  Beat(d0_);
  now_ += absl::Seconds(62);
  Beat(t0_);
  Beat(t1_);
  Beat(d0_);
  orch_->Tick();
  EXPECT_EQ(Get(job).runtime().batches_leased(), 0);
}

TEST_F(OrchestratorTest, QuarantineIsKeptPerDatasetAndCancelReleasesTheWorkers) {
  const std::string job = Running();
  v1::ReportProgressRequest req;
  req.set_worker_id(d0_);
  req.set_job_id(job);
  req.set_generation(1);
  req.set_manifest_sha256("abc123");
  v1::QuarantinedVideo* q = req.add_quarantined();
  q->set_sample(3);
  q->set_path("bad.mp4");
  q->set_reason("truncated");
  v1::ReportProgressResponse resp;
  ASSERT_OK(orch_->ReportProgress(kWorker, req, &resp));
  ASSERT_OK(orch_->ReportProgress(kWorker, req, &resp));  // again: recorded once
  v1::Job j = Get(job);
  ASSERT_EQ(j.runtime().quarantined_size(), 1);
  EXPECT_EQ(j.runtime().quarantined(0).path(), "bad.mp4");
  EXPECT_EQ(j.runtime().quarantine_version(), 1);

  v1::CancelJobRequest cancel;
  cancel.set_id(job);
  v1::CancelJobResponse cancelled;
  ASSERT_OK(jobs_->CancelJob(kAlice, cancel, &cancelled));
  orch_->Tick();
  EXPECT_EQ(Beat(t0_).job_id(), "");
  EXPECT_EQ(Lease(d0_, 10).leases_size(), 0);
  EXPECT_EQ(workers_->Get(t0_)->job_id(), "");

  // Another job on the same manifest sees the quarantine once its dataset is known.
  const std::string second = Submit();
  orch_->Tick();
  ASSERT_EQ(Get(second).state(), v1::SCHEDULED);
  ASSERT_EQ(Lease(d0_, 8).leases_size(), 1);
  ASSERT_OK(Identity(d0_, second, 8));
  EXPECT_EQ(Get(second).runtime().quarantined_size(), 1);
  EXPECT_EQ(Get(job).runtime().quarantined_size(), 1);  // a finished job still lists it
}

// A probe job on a job id waits until that job ended, then probes its latest checkpoint: one
// trainer reads the probe-train then the validation batches (g = epoch-0 batch index), and its
// results make the job SUCCEED.
TEST_F(OrchestratorTest, ProbeJobWaitsForItsSourceThenReadsEveryBatchOnceAndSucceeds) {
  const std::string pretrain = Running();
  const std::string probe = Submit(absl::StrCat(
      "name: p\nkind: probe\nmodel: {preset: nano}\ndataset: {manifest: train.csv}\n"
      "probe: {checkpoint: ",
      pretrain, ", num_classes: 4, batch_size: 3, val_manifest: val.csv, pooling: both}\n"));
  orch_->Tick();
  v1::Job p = Get(probe);
  EXPECT_EQ(p.state(), v1::PENDING);
  EXPECT_THAT(p.runtime().phase(),
              HasSubstr("waiting for the latest checkpoint of job " + pretrain));
  EXPECT_EQ(p.total_steps(), 0);
  ASSERT_OK(Commit(pretrain, 1, 2));
  ASSERT_OK(Commit(pretrain, 1, 4));
  v1::CancelJobRequest cancel;
  cancel.set_id(pretrain);
  v1::CancelJobResponse cancelled;
  ASSERT_OK(jobs_->CancelJob(kAlice, cancel, &cancelled));
  orch_->Tick();
  p = Get(probe);
  ASSERT_EQ(p.state(), v1::SCHEDULED);
  EXPECT_EQ(p.runtime().probe_checkpoint(), pretrain + "/4");
  EXPECT_EQ(p.runtime().probe_checkpoint_step(), 4);
  ASSERT_EQ(p.runtime().trainers_size(), 1);
  const std::string trainer = p.runtime().trainers(0);
  v1::TrainerAssignment a = Beat(trainer);
  EXPECT_EQ(a.job_id(), probe);
  EXPECT_EQ(a.world_size(), 1);
  EXPECT_EQ(a.probe_checkpoint_id(), pretrain + "/4");
  EXPECT_EQ(a.resume_checkpoint_id(), "");
  EXPECT_TRUE(orch_->WorkerMayAccess(kWorker, trainer, pretrain));  // may pull the probed one
  EXPECT_FALSE(orch_->WorkerMayAccess(kWorker, Register("t9", v1::TRAINER), pretrain));

  // Until the manifests are read: one lease.
  v1::LeaseBatchesResponse first = Lease(d0_, 8);
  ASSERT_EQ(first.leases_size(), 1);
  EXPECT_EQ(first.leases(0).global_index(), 0);
  EXPECT_EQ(first.leases(0).batch_index(), 0);
  v1::ReportProgressRequest id;
  id.set_worker_id(d0_);
  id.set_job_id(probe);
  id.set_generation(1);
  id.set_dataset_size(7);  // 3 probe-train batches of 3, 3, 1
  id.set_manifest_sha256("train-sha");
  id.set_val_dataset_size(5);  // then 2 validation batches of 3, 2
  id.set_val_manifest_sha256("val-sha");
  id.set_recipe_version("r1");
  v1::ReportProgressResponse resp;
  ASSERT_OK(orch_->ReportProgress(kWorker, id, &resp));
  p = Get(probe);
  EXPECT_EQ(p.runtime().batches_total(), 5);
  EXPECT_EQ(p.runtime().val_dataset_size(), 5);
  EXPECT_EQ(Beat(trainer).steps(), 5);
  // A dataworker that reads another validation manifest is refused.
  id.set_worker_id(Register("d1", v1::DATAWORKER));
  id.set_val_manifest_sha256("other");
  EXPECT_THAT(orch_->ReportProgress(kWorker, id, &resp),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("val-sha")));

  std::set<int64_t> leased{0};
  for (int round = 0; round < 5 && leased.size() < 5; ++round) {
    const v1::LeaseBatchesResponse leases = Lease(d0_, 8);
    for (const v1::BatchLease& l : leases.leases()) {
      EXPECT_EQ(l.epoch(), 0);
      EXPECT_EQ(l.batch_index(), l.global_index());
      EXPECT_EQ(l.val_dataset_size(), 5);
      EXPECT_EQ(l.val_manifest_sha256(), "val-sha");
      EXPECT_TRUE(leased.insert(l.global_index()).second) << l.global_index();
    }
    std::vector<int64_t> all(leased.begin(), leased.end());
    ASSERT_OK(Progress(trainer, probe, 1, 0, static_cast<int64_t>(all.size()), all));
  }
  EXPECT_THAT(leased, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_EQ(Get(probe).state(), v1::RUNNING);

  v1::ReportProgressRequest done;
  done.set_worker_id(trainer);
  done.set_job_id(probe);
  done.set_generation(1);
  done.set_step(5);
  for (const char* pooling : {"attentive", "average"}) {
    v1::ProbeResult* r = done.add_probe_results();
    r->set_pooling(pooling);
    r->set_top1(std::string(pooling) == "attentive" ? 0.6 : 0.4);
    r->set_evaluated_on("val");
    r->set_samples(5);
  }
  v1::ProbeResult bad = done.probe_results(0);
  bad.set_top1(1.5);
  v1::ReportProgressRequest refused = done;
  *refused.mutable_probe_results(0) = bad;
  EXPECT_THAT(orch_->ReportProgress(kWorker, refused, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top1")));
  ASSERT_OK(orch_->ReportProgress(kWorker, done, &resp));
  EXPECT_EQ(resp.job().state(), v1::SUCCEEDED);
  p = Get(probe);
  EXPECT_EQ(p.state(), v1::SUCCEEDED);
  EXPECT_THAT(p.message(), HasSubstr("attentive top-1 0.6000 on 5 val samples"));
  ASSERT_EQ(p.runtime().probe_results_size(), 2);
  EXPECT_EQ(p.runtime().probe_results(1).pooling(), "average");
  EXPECT_EQ(p.runtime().batches_committed(), 5);
  orch_->Tick();
  EXPECT_EQ(Beat(trainer).job_id(), "");  // idle again
}

TEST_F(OrchestratorTest, ProbeOfAPathRunsAtOnceAndAMissingStepFailsTheProbe) {
  const std::string path_probe = Submit(
      "name: p\nkind: probe\nmodel: {preset: nano}\ndataset: {manifest: train.csv}\n"
      "probe: {checkpoint: /ckpt/final.safetensors, num_classes: 4}\n");
  t0_ = Register("t0", v1::TRAINER);
  d0_ = Register("d0", v1::DATAWORKER);
  orch_->Tick();
  v1::Job p = Get(path_probe);
  ASSERT_EQ(p.state(), v1::SCHEDULED);
  EXPECT_EQ(p.runtime().probe_checkpoint(), "/ckpt/final.safetensors");
  v1::TrainerAssignment a = Beat(t0_);
  EXPECT_EQ(a.job_id(), path_probe);
  EXPECT_EQ(a.probe_checkpoint_id(), "");

  // A finished job without the named step: the probe fails and says why.
  const std::string pretrain = Submit();
  v1::CancelJobRequest cancel;
  cancel.set_id(pretrain);
  v1::CancelJobResponse cancelled;
  ASSERT_OK(jobs_->CancelJob(kAlice, cancel, &cancelled));
  const std::string step_probe = Submit(
      absl::StrCat("name: q\nkind: probe\nmodel: {preset: nano}\ndataset: {manifest: train.csv}\n"
                   "probe: {checkpoint: ",
                   pretrain, ", checkpoint_step: 7, num_classes: 4}\n"));
  orch_->Tick();
  p = Get(step_probe);
  EXPECT_EQ(p.state(), v1::FAILED);
  EXPECT_THAT(p.message(), HasSubstr("has no checkpoint of step 7"));
}

}  // namespace
}  // namespace vjepa::coordinator
