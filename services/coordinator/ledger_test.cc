#include "services/coordinator/ledger.h"

#include <string>
#include <vector>

#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::coordinator {
namespace {

using ::testing::ElementsAre;
using ::vjepa::testing::StatusIs;

LedgerShape Shape(int m, int64_t nb, int64_t steps, int64_t window) {
  LedgerShape s;
  s.world_size = m;
  s.batches_per_epoch = nb;
  s.steps = steps;
  s.window_steps = window;
  return s;
}

class Ids {
 public:
  std::string operator()() { return "l-" + std::to_string(next_++); }

 private:
  int next_ = 0;
};

std::vector<int64_t> Gs(const std::vector<LeaseGrant>& grants) {
  std::vector<int64_t> out;
  for (const auto& g : grants) out.push_back(g.g);
  return out;
}

TEST(LedgerTest, ShapeMustHoldABatch) {
  EXPECT_THAT(JobLedger::Create(Shape(0, 5, 10, 2)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(JobLedger::Create(Shape(1, 0, 10, 2)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(JobLedger::Create(Shape(1, 5, 0, 2)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_THAT(JobLedger::Create(Shape(1, 5, 10, 0)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST(LedgerTest, LeasesLowestPendingBatchesInsideTheWindowWithTheirIdentity) {
  ASSERT_OK_AND_ASSIGN(JobLedger l, JobLedger::Create(Shape(2, 3, 10, 2)));
  Ids ids;
  // No progress yet: the window is steps 0 and 1, i.e. g < 4.
  std::vector<LeaseGrant> a = l.Lease("dw-a", 3, 1000, 500, std::ref(ids));
  EXPECT_THAT(Gs(a), ElementsAre(0, 1, 2));
  EXPECT_EQ(a[2].epoch, 0);
  EXPECT_EQ(a[2].batch_index, 2);
  EXPECT_EQ(a[2].rank, 0);
  EXPECT_EQ(a[1].rank, 1);
  EXPECT_EQ(a[0].deadline_ms, 1500);
  EXPECT_EQ(a[0].generation, 1);
  std::vector<LeaseGrant> b = l.Lease("dw-b", 10, 1000, 500, std::ref(ids));
  ASSERT_THAT(Gs(b), ElementsAre(3));
  EXPECT_EQ(b[0].epoch, 1);  // g = 3 is batch 0 of data epoch 1 (nb = 3)
  EXPECT_EQ(b[0].batch_index, 0);
  EXPECT_TRUE(l.Lease("dw-b", 10, 1000, 500, std::ref(ids)).empty());
  // Step 0 consumed g 0 and 1: the window moves to g < 6.
  ASSERT_OK(l.Deliver(1, 0, {0, 1}));
  EXPECT_THAT(Gs(l.Lease("dw-a", 10, 1000, 500, std::ref(ids))), ElementsAre(4, 5));
  const LedgerCounts c = l.Counts();
  EXPECT_EQ(c.delivered, 2);
  EXPECT_EQ(c.leased, 4);
  EXPECT_EQ(c.committed, 0);
  EXPECT_EQ(c.pending, 20 - 6);
}

TEST(LedgerTest, ACheckpointCommitsEveryBatchBelowItsStep) {
  ASSERT_OK_AND_ASSIGN(JobLedger l, JobLedger::Create(Shape(2, 3, 4, 4)));
  Ids ids;
  l.Lease("dw", 8, 0, 100, std::ref(ids));
  ASSERT_OK(l.Deliver(1, 1, {0, 1, 2, 3}));
  ASSERT_OK(l.Commit(1, 1));  // steps 0 and 1 done: g < 4
  EXPECT_EQ(l.committed_below(), 4);
  EXPECT_EQ(l.Counts().committed, 4);
  EXPECT_EQ(l.Counts().delivered, 0);
  EXPECT_EQ(l.Counts().leased, 4);
  ASSERT_OK(l.Commit(1, 0));  // an older checkpoint changes nothing
  EXPECT_EQ(l.committed_below(), 4);
  EXPECT_FALSE(l.complete());
  ASSERT_OK(l.Commit(1, 3));
  EXPECT_TRUE(l.complete());
  EXPECT_EQ(l.Counts().pending, 0);
  EXPECT_EQ(l.Counts().leased, 0);
  EXPECT_THAT(l.Commit(1, 4), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

TEST(LedgerTest, LostExpiredAndReturnedLeasesBecomePendingAgain) {
  ASSERT_OK_AND_ASSIGN(JobLedger l, JobLedger::Create(Shape(1, 10, 10, 6)));
  Ids ids;
  std::vector<LeaseGrant> a = l.Lease("dw-a", 2, 0, 100, std::ref(ids));   // g 0, 1
  std::vector<LeaseGrant> b = l.Lease("dw-b", 2, 50, 100, std::ref(ids));  // g 2, 3
  EXPECT_EQ(l.ReleaseWorker("dw-a"), 2);
  // The same batches go to another worker (it will produce identical bytes).
  EXPECT_THAT(Gs(l.Lease("dw-c", 2, 60, 100, std::ref(ids))), ElementsAre(0, 1));
  // dw-b's leases (deadline 150) expire at 151, dw-c's (160) not yet.
  EXPECT_EQ(l.ExpireLeases(151), 2);
  EXPECT_THAT(Gs(l.Lease("dw-d", 1, 151, 100, std::ref(ids))), ElementsAre(2));
  // A worker hands back only its own leases; a repeated return is ignored.
  std::vector<LeaseGrant> d = l.Lease("dw-d", 1, 151, 100, std::ref(ids));  // g 3
  EXPECT_EQ(l.Return("dw-c", {d[0].lease_id}), 0);
  EXPECT_EQ(l.Return("dw-d", {d[0].lease_id}), 1);
  EXPECT_EQ(l.Return("dw-d", {d[0].lease_id}), 0);
  EXPECT_THAT(Gs(l.Lease("dw-e", 1, 151, 100, std::ref(ids))), ElementsAre(3));
  // A delivered batch is no longer a lease: losing its producer changes nothing.
  ASSERT_OK(l.Deliver(1, 0, {0}));
  EXPECT_EQ(l.ReleaseWorker("dw-c"), 1);  // only g 1 was still leased
  EXPECT_EQ(l.Counts().delivered, 1);
}

TEST(LedgerTest, ALostTrainerStartsANewGenerationFromTheLastCheckpoint) {
  ASSERT_OK_AND_ASSIGN(JobLedger l, JobLedger::Create(Shape(2, 4, 10, 2)));
  Ids ids;
  l.Lease("dw", 4, 0, 100, std::ref(ids));
  ASSERT_OK(l.Deliver(1, 0, {0, 1}));
  ASSERT_OK(l.Commit(1, 0));  // checkpoint after step 0
  ASSERT_OK(l.Deliver(1, 1, {2, 3}));
  l.Lease("dw", 4, 0, 100, std::ref(ids));
  EXPECT_EQ(l.Restart(), 2);
  EXPECT_EQ(l.restarts(), 1);
  EXPECT_EQ(l.resume_step(), 1);
  // Delivered-but-uncommitted and leased batches are pending again, from the resume step on.
  EXPECT_EQ(l.Counts().delivered, 0);
  EXPECT_EQ(l.Counts().leased, 0);
  EXPECT_EQ(l.Counts().pending, 20 - 2);
  std::vector<LeaseGrant> again = l.Lease("dw", 10, 0, 100, std::ref(ids));
  EXPECT_THAT(Gs(again), ElementsAre(2, 3, 4, 5));
  EXPECT_EQ(again[0].generation, 2);
  // Reports of the old generation are fenced.
  EXPECT_THAT(l.Deliver(1, 1, {2, 3}),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  EXPECT_THAT(l.Commit(1, 1), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  ASSERT_OK(l.Deliver(2, 1, {2, 3}));
  ASSERT_OK(l.Commit(2, 1));
  EXPECT_EQ(l.committed_below(), 4);
}

TEST(LedgerTest, EveryBatchIsCommittedOnceAndTheJobCompletesThroughFaults) {
  // Two trainers, a dataworker lost every 3rd round, a trainer lost once, checkpoints every 2
  // steps: the set of committed batches grows by contiguous ranges and ends at every batch.
  ASSERT_OK_AND_ASSIGN(JobLedger l, JobLedger::Create(Shape(2, 5, 12, 3)));
  Ids ids;
  std::vector<int> commits(static_cast<size_t>(l.total_batches()), 0);
  int64_t step = 0;
  bool restarted = false;
  for (int round = 0; round < 200 && !l.complete(); ++round) {
    const std::string worker = "dw-" + std::to_string(round % 3);
    l.Lease(worker, 3, round, 1000, std::ref(ids));
    if (round % 3 == 2) l.ReleaseWorker(worker);
    // Trainers consume step `step` when both its batches are leased or delivered.
    const int64_t g0 = step * 2, g1 = step * 2 + 1;
    const LedgerSnapshot s = l.Snapshot();
    int ready = 0;
    for (const auto& e : s.outstanding) ready += (e.g == g0 || e.g == g1) ? 1 : 0;
    if (ready < 2) continue;
    ASSERT_OK(l.Deliver(l.generation(), step, {g0, g1}));
    if (step == 7 && !restarted) {
      restarted = true;
      l.Restart();
      step = l.resume_step();
      continue;
    }
    if (step % 2 == 1 || step == 11) {
      const int64_t before = l.committed_below();
      ASSERT_OK(l.Commit(l.generation(), step));
      for (int64_t g = before; g < l.committed_below(); ++g) ++commits[static_cast<size_t>(g)];
    }
    ++step;
  }
  ASSERT_TRUE(l.complete());
  EXPECT_TRUE(restarted);
  EXPECT_EQ(l.generation(), 2);
  for (size_t g = 0; g < commits.size(); ++g) EXPECT_EQ(commits[g], 1) << "batch " << g;
}

TEST(LedgerTest, SnapshotRestoresTheSameLedger) {
  ASSERT_OK_AND_ASSIGN(JobLedger l, JobLedger::Create(Shape(2, 4, 10, 3)));
  Ids ids;
  l.Lease("dw", 6, 0, 100, std::ref(ids));
  ASSERT_OK(l.Deliver(1, 0, {0, 1}));
  ASSERT_OK(l.Deliver(1, 1, {2, 3}));
  ASSERT_OK(l.Commit(1, 0));
  ASSERT_OK_AND_ASSIGN(JobLedger r, JobLedger::Restore(l.shape(), l.Snapshot()));
  EXPECT_EQ(r.generation(), l.generation());
  EXPECT_EQ(r.committed_below(), 2);
  EXPECT_EQ(r.Counts().leased, l.Counts().leased);
  EXPECT_EQ(r.Counts().delivered, 2);
  EXPECT_EQ(Gs(r.Lease("dw", 10, 0, 100, std::ref(ids))),
            Gs(l.Lease("dw", 10, 0, 100, std::ref(ids))));

  LedgerSnapshot bad = l.Snapshot();
  bad.outstanding.push_back(bad.outstanding.front());
  EXPECT_THAT(JobLedger::Restore(l.shape(), bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  bad = l.Snapshot();
  bad.outstanding.push_back(LedgerEntry{0});  // below the cursor
  EXPECT_THAT(JobLedger::Restore(l.shape(), bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  bad = l.Snapshot();
  bad.committed_below = 21;
  EXPECT_THAT(JobLedger::Restore(l.shape(), bad).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
}

}  // namespace
}  // namespace vjepa::coordinator
