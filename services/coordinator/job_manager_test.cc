#include "services/coordinator/job_manager.h"

#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
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
const rpc::Principal kBob{"bob", rpc::Role::kUser};
const rpc::Principal kAdmin{"root", rpc::Role::kAdmin};

std::string Spec(const std::string& name) {
  return "name: " + name +
         "\nmodel:\n  preset: nano\ndataset:\n  manifest: data/m.csv\n"
         "optim:\n  steps: 200\n";
}

v1::SubmitJobRequest Submit(const std::string& name, const std::string& rid = "") {
  v1::SubmitJobRequest r;
  r.set_spec_yaml(Spec(name));
  r.set_client_request_id(rid);
  return r;
}

class JobManagerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.File("c.db"));
    ASSERT_OK(store.status());
    store_ = std::move(*store);
    jobs_ = std::make_unique<JobManager>(store_.get(), registry_);
    ASSERT_OK(jobs_->Init());
  }

  v1::Job MustSubmit(const rpc::Principal& p, const std::string& name,
                     const std::string& rid = "") {
    v1::SubmitJobResponse resp;
    EXPECT_OK(jobs_->SubmitJob(p, Submit(name, rid), &resp));
    return resp.job();
  }

  std::vector<std::string> ListIds(const rpc::Principal& p, v1::ListJobsRequest req = {}) {
    v1::ListJobsResponse resp;
    EXPECT_OK(jobs_->ListJobs(p, req, &resp));
    std::vector<std::string> ids;
    for (const auto& j : resp.jobs()) ids.push_back(j.id());
    return ids;
  }

  testing::ScratchDir dir_;
  metrics::Registry registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<JobManager> jobs_;
};

TEST_F(JobManagerTest, SubmitStoresAPendingJobWithTheCanonicalSpec) {
  v1::Job job = MustSubmit(kAlice, "first");
  EXPECT_THAT(job.id(), ::testing::StartsWith("j-"));
  EXPECT_EQ(job.name(), "first");
  EXPECT_EQ(job.owner(), "alice");
  EXPECT_EQ(job.kind(), "pretrain");
  EXPECT_EQ(job.state(), v1::PENDING);
  EXPECT_EQ(job.total_steps(), 200);
  EXPECT_EQ(job.trainers(), 1);
  // Defaults are spelled out in the stored spec.
  EXPECT_THAT(job.spec_yaml(), HasSubstr("schedule_scale"));
  ASSERT_OK_AND_ASSIGN(auto stored, store_->GetJob(job.id()));
  ASSERT_TRUE(stored.has_value());
  EXPECT_EQ(stored->spec_yaml(), job.spec_yaml());
  EXPECT_THAT(metrics::Render(registry_), HasSubstr("vjepa_coordinator_jobs{state=\"PENDING\"} 1"));
}

TEST_F(JobManagerTest, RetriedSubmitWithTheSameRequestIdNeverMakesTwoJobs) {
  v1::Job first = MustSubmit(kAlice, "a", "req-1");
  v1::SubmitJobResponse again;
  ASSERT_OK(jobs_->SubmitJob(kAlice, Submit("a", "req-1"), &again));
  EXPECT_TRUE(again.deduplicated());
  EXPECT_EQ(again.job().id(), first.id());
  EXPECT_EQ(ListIds(kAlice).size(), 1u);
  // The key is per principal.
  v1::Job bobs = MustSubmit(kBob, "a", "req-1");
  EXPECT_NE(bobs.id(), first.id());
  // Without a key, every submit is a new job.
  MustSubmit(kAlice, "a");
  MustSubmit(kAlice, "a");
  EXPECT_EQ(ListIds(kAlice).size(), 3u);
}

TEST_F(JobManagerTest, SubmitRefusesBadSpecsWithTheFieldPath) {
  v1::SubmitJobRequest bad = Submit("x");
  bad.set_spec_yaml(Spec("x") + "  lr:\n    peak: -1\n");
  v1::SubmitJobResponse resp;
  EXPECT_THAT(jobs_->SubmitJob(kAlice, bad, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, "optim.lr.peak: must be > 0, got -1"));
  bad.set_spec_yaml(std::string(2 << 20, '#'));
  EXPECT_THAT(jobs_->SubmitJob(kAlice, bad, &resp),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("spec")));
  v1::SubmitJobRequest long_id = Submit("x", std::string(129, 'r'));
  EXPECT_THAT(jobs_->SubmitJob(kAlice, long_id, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "client_request_id: must be at most 128 bytes, got 129"));
  EXPECT_TRUE(ListIds(kAdmin).empty());
  EXPECT_THAT(metrics::Render(registry_),
              HasSubstr("vjepa_coordinator_submits_rejected_total{code=\"INVALID_ARGUMENT\"} 2"));
}

TEST_F(JobManagerTest, UsersSeeOnlyTheirOwnJobsAndAdminsSeeAll) {
  v1::Job a = MustSubmit(kAlice, "a");
  v1::Job b = MustSubmit(kBob, "b");
  v1::GetJobResponse got;
  EXPECT_OK(jobs_->GetJob(
      kAlice,
      [&] {
        v1::GetJobRequest r;
        r.set_id(a.id());
        return r;
      }(),
      &got));
  v1::GetJobRequest bobs;
  bobs.set_id(b.id());
  EXPECT_THAT(jobs_->GetJob(kAlice, bobs, &got),
              StatusIs(absl::StatusCode::kNotFound, "job " + b.id() + " not found"));
  v1::GetJobRequest missing;
  missing.set_id("j-nope");
  EXPECT_THAT(jobs_->GetJob(kAlice, missing, &got),
              StatusIs(absl::StatusCode::kNotFound, "job j-nope not found"));
  EXPECT_OK(jobs_->GetJob(kAdmin, bobs, &got));
  EXPECT_EQ(got.job().owner(), "bob");

  EXPECT_THAT(ListIds(kAlice), ElementsAre(a.id()));
  EXPECT_THAT(ListIds(kAdmin), ElementsAre(a.id(), b.id()));
  v1::ListJobsRequest only_bob;
  only_bob.set_owner("bob");
  EXPECT_THAT(ListIds(kAdmin, only_bob), ElementsAre(b.id()));
  EXPECT_TRUE(ListIds(kAlice, only_bob).empty());

  v1::CancelJobRequest cancel_bobs;
  cancel_bobs.set_id(b.id());
  v1::CancelJobResponse cancelled;
  EXPECT_THAT(jobs_->CancelJob(kAlice, cancel_bobs, &cancelled),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("not found")));
}

TEST_F(JobManagerTest, ListFiltersByStateAndPages) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(MustSubmit(kAlice, "j" + std::to_string(i)).id());
  v1::CancelJobRequest c;
  c.set_id(ids[1]);
  v1::CancelJobResponse cr;
  ASSERT_OK(jobs_->CancelJob(kAlice, c, &cr));
  v1::ListJobsRequest cancelled;
  cancelled.add_states(v1::CANCELLED);
  EXPECT_THAT(ListIds(kAlice, cancelled), ElementsAre(ids[1]));
  v1::ListJobsRequest pending;
  pending.add_states(v1::PENDING);
  EXPECT_EQ(ListIds(kAlice, pending).size(), 4u);

  std::vector<std::string> paged;
  v1::ListJobsRequest page;
  page.set_page_size(2);
  for (int n = 0; n < 10; ++n) {
    v1::ListJobsResponse resp;
    ASSERT_OK(jobs_->ListJobs(kAlice, page, &resp));
    for (const auto& j : resp.jobs()) paged.push_back(j.id());
    if (resp.next_page_token().empty()) break;
    page.set_page_token(resp.next_page_token());
  }
  EXPECT_EQ(paged, ids);
  v1::ListJobsRequest bad;
  bad.set_page_token("zzz");
  v1::ListJobsResponse resp;
  EXPECT_THAT(jobs_->ListJobs(kAlice, bad, &resp),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_token")));
}

TEST_F(JobManagerTest, CancelIsIdempotentAndRefusesFinishedJobs) {
  v1::Job a = MustSubmit(kAlice, "a");
  v1::CancelJobRequest req;
  req.set_id(a.id());
  req.set_reason("wrong data");
  v1::CancelJobResponse resp;
  ASSERT_OK(jobs_->CancelJob(kAlice, req, &resp));
  EXPECT_EQ(resp.job().state(), v1::CANCELLED);
  EXPECT_EQ(resp.job().message(), "cancelled by alice: wrong data");
  ASSERT_OK(jobs_->CancelJob(kAlice, req, &resp));
  EXPECT_EQ(resp.job().state(), v1::CANCELLED);
  ASSERT_OK_AND_ASSIGN(auto events, store_->ListEvents(a.id(), 0));
  EXPECT_EQ(events.size(), 2u);  // the second cancel changed nothing

  v1::Job b = MustSubmit(kAlice, "b");
  ASSERT_OK(jobs_->Transition(b.id(), v1::FAILED, "failure", "manifest unreadable").status());
  req.set_id(b.id());
  EXPECT_THAT(
      jobs_->CancelJob(kAlice, req, &resp),
      StatusIs(absl::StatusCode::kFailedPrecondition, "job " + b.id() + " already ended FAILED"));
}

TEST_F(JobManagerTest, TransitionsFollowTheLifecycle) {
  v1::Job a = MustSubmit(kAlice, "a");
  EXPECT_THAT(jobs_->Transition(a.id(), v1::SUCCEEDED, "t", "").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       "job " + a.id() + ": cannot go from PENDING to SUCCEEDED"));
  ASSERT_OK(jobs_->Transition(a.id(), v1::SCHEDULED, "schedule", "").status());
  ASSERT_OK(jobs_->Transition(a.id(), v1::RUNNING, "start", "").status());
  ASSERT_OK(jobs_->Transition(a.id(), v1::RESTARTING, "trainer_lost", "").status());
  ASSERT_OK(jobs_->Transition(a.id(), v1::RUNNING, "start", "").status());
  ASSERT_OK(jobs_->Transition(a.id(), v1::SUCCEEDED, "done", "").status());
  EXPECT_THAT(jobs_->Transition(a.id(), v1::RUNNING, "t", "").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("from SUCCEEDED")));
  EXPECT_THAT(jobs_->Transition("j-none", v1::RUNNING, "t", "").status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

TEST_F(JobManagerTest, WatchSendsHistoryThenLiveEventsAndEndsWithTheJob) {
  v1::Job a = MustSubmit(kAlice, "a");
  ASSERT_OK(jobs_->Transition(a.id(), v1::SCHEDULED, "schedule", "ranks assigned").status());
  std::vector<v1::JobEvent> seen;
  absl::Mutex mu;
  absl::Notification first_two;
  absl::Status watch_status;
  std::thread watcher([&] {
    v1::WatchJobRequest req;
    req.set_id(a.id());
    watch_status = jobs_->WatchJob(
        kAlice, req,
        [&](const v1::JobEvent& e) {
          absl::MutexLock l(&mu);
          seen.push_back(e);
          if (seen.size() == 2) first_two.Notify();
          return true;
        },
        [] { return false; });
  });
  ASSERT_TRUE(first_two.WaitForNotificationWithTimeout(absl::Seconds(30)));
  ASSERT_OK(jobs_->Transition(a.id(), v1::RUNNING, "start", "stepping").status());
  v1::CancelJobRequest c;
  c.set_id(a.id());
  v1::CancelJobResponse cr;
  ASSERT_OK(jobs_->CancelJob(kAlice, c, &cr));
  watcher.join();  // the stream ends by itself after the terminal event
  EXPECT_OK(watch_status);
  absl::MutexLock l(&mu);
  std::vector<std::string> types;
  for (const auto& e : seen) types.push_back(e.type());
  EXPECT_THAT(types, ElementsAre("submitted", "schedule", "start", "cancel"));
  EXPECT_EQ(seen.back().state(), v1::CANCELLED);
  EXPECT_EQ(seen.back().seq(), 4);
  EXPECT_EQ(seen.back().job().id(), a.id());

  // Resuming after seq 2 replays only the rest, and a finished job's watch ends at once.
  std::vector<int64_t> seqs;
  v1::WatchJobRequest resume;
  resume.set_id(a.id());
  resume.set_after_seq(2);
  EXPECT_OK(jobs_->WatchJob(
      kAlice, resume,
      [&](const v1::JobEvent& e) {
        seqs.push_back(e.seq());
        return true;
      },
      [] { return false; }));
  EXPECT_THAT(seqs, ElementsAre(3, 4));
  resume.set_after_seq(4);
  EXPECT_OK(jobs_->WatchJob(
      kAlice, resume, [&](const v1::JobEvent&) { return true; }, [] { return false; }));
}

TEST_F(JobManagerTest, WatchStopsWhenTheClientGoesAwayAndHidesOtherUsersJobs) {
  v1::Job a = MustSubmit(kAlice, "a");
  v1::WatchJobRequest req;
  req.set_id(a.id());
  std::atomic<int> polls{0};
  EXPECT_THAT(
      jobs_->WatchJob(
          kAlice, req, [](const v1::JobEvent&) { return true; }, [&] { return ++polls > 3; }),
      StatusIs(absl::StatusCode::kCancelled, ::testing::_));
  EXPECT_THAT(jobs_->WatchJob(
                  kBob, req, [](const v1::JobEvent&) { return true; }, [] { return false; }),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

}  // namespace
}  // namespace vjepa::coordinator
