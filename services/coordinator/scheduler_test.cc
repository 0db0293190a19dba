#include "services/coordinator/scheduler.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::coordinator {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

SchedJob Job(const std::string& id, int trainers, int64_t order, int priority = 0,
             double demand = 1, std::vector<std::string> held = {}) {
  SchedJob j;
  j.id = id;
  j.trainers = trainers;
  j.order = order;
  j.priority = priority;
  j.demand = demand;
  j.trainers_held = std::move(held);
  return j;
}

std::vector<SchedWorker> Trainers(const std::vector<std::string>& ids) {
  std::vector<SchedWorker> out;
  for (const auto& id : ids) out.push_back({id, true, ""});
  return out;
}

std::vector<SchedWorker> With(std::vector<SchedWorker> a, const std::vector<SchedWorker>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

TEST(SchedulerTest, AJobGetsAllItsTrainersOrNone) {
  const SchedulePlan p = Schedule({Job("a", 2, 1), Job("b", 2, 2)}, Trainers({"t0", "t1", "t2"}));
  EXPECT_THAT(p.jobs.at("a").trainers, ElementsAre("t0", "t1"));
  EXPECT_TRUE(p.jobs.at("a").gang_changed);
  EXPECT_THAT(p.jobs.at("b").trainers, IsEmpty());
  EXPECT_THAT(p.idle_trainers, ElementsAre("t2"));
}

TEST(SchedulerTest, NoJobPassesOneThatWaits) {
  // The head job needs 4 of 3 trainers: the small job behind it waits too (no starvation).
  const SchedulePlan p =
      Schedule({Job("big", 4, 1), Job("small", 1, 2)}, Trainers({"t0", "t1", "t2"}));
  EXPECT_THAT(p.jobs.at("big").trainers, IsEmpty());
  EXPECT_THAT(p.jobs.at("small").trainers, IsEmpty());
  EXPECT_EQ(p.idle_trainers.size(), 3u);
}

TEST(SchedulerTest, HigherPriorityFirstThenSubmissionOrder) {
  const SchedulePlan p =
      Schedule({Job("old", 2, 1), Job("urgent", 2, 5, /*priority=*/10), Job("newer", 1, 3)},
               Trainers({"t0", "t1", "t2"}));
  EXPECT_THAT(p.jobs.at("urgent").trainers, ElementsAre("t0", "t1"));
  EXPECT_THAT(p.jobs.at("old").trainers, IsEmpty());
  EXPECT_THAT(p.jobs.at("newer").trainers, IsEmpty());  // behind "old", which waits
}

TEST(SchedulerTest, ARunningGangKeepsItsTrainersAndRanks) {
  // A running job is not preempted by a higher-priority one.
  const SchedulePlan p =
      Schedule({Job("run", 2, 1, 0, 1, {"t2", "t0"}), Job("urgent", 2, 2, /*priority=*/9)},
               Trainers({"t0", "t1", "t2"}));
  EXPECT_THAT(p.jobs.at("run").trainers, ElementsAre("t2", "t0"));
  EXPECT_FALSE(p.jobs.at("run").gang_changed);
  EXPECT_THAT(p.jobs.at("urgent").trainers, IsEmpty());
  EXPECT_THAT(p.idle_trainers, ElementsAre("t1"));
}

TEST(SchedulerTest, AJobThatLostATrainerRegainsAGangBeforeWaitingJobs) {
  // t1 of "run" is gone; "urgent" waits with a higher priority. "run" keeps its survivor and
  // takes a free trainer first.
  const SchedulePlan p =
      Schedule({Job("urgent", 1, 0, /*priority=*/9), Job("run", 2, 1, 0, 1, {"t0", "t1"})},
               Trainers({"t0", "t3"}));
  EXPECT_THAT(p.jobs.at("run").trainers, ElementsAre("t0", "t3"));
  EXPECT_TRUE(p.jobs.at("run").gang_changed);
  EXPECT_THAT(p.jobs.at("urgent").trainers, IsEmpty());
}

TEST(SchedulerTest, DataworkersAreSharedInProportionToDemand) {
  std::vector<SchedWorker> dws;
  for (int i = 0; i < 6; ++i) dws.push_back({"d" + std::to_string(i), false, ""});
  const SchedulePlan p = Schedule({Job("a", 1, 1, 0, /*demand=*/3), Job("b", 1, 2, 0, 1)},
                                  With(Trainers({"t0", "t1"}), dws));
  // One each, then the remaining 4 as 3:1.
  EXPECT_EQ(p.jobs.at("a").dataworkers.size(), 4u);
  EXPECT_EQ(p.jobs.at("b").dataworkers.size(), 2u);
  EXPECT_THAT(p.idle_dataworkers, IsEmpty());
  // A waiting job gets none; with no running job every dataworker idles.
  const SchedulePlan none = Schedule({Job("w", 3, 1)}, With(Trainers({"t0"}), dws));
  EXPECT_THAT(none.jobs.at("w").dataworkers, IsEmpty());
  EXPECT_EQ(none.idle_dataworkers.size(), 6u);
}

TEST(SchedulerTest, FewerDataworkersThanJobsGoToTheFirstJobs) {
  const SchedulePlan p =
      Schedule({Job("a", 1, 1), Job("b", 1, 2)}, With(Trainers({"t0", "t1"}), {{"d0", false, ""}}));
  EXPECT_THAT(p.jobs.at("a").dataworkers, ElementsAre("d0"));
  EXPECT_THAT(p.jobs.at("b").dataworkers, IsEmpty());
}

TEST(SchedulerTest, DataworkersStayWithTheirJobWhileTheSplitAllows) {
  // d0 and d1 serve b; a arrives: the split is 2:2, and b keeps the two it had.
  const std::vector<SchedWorker> dws = {
      {"d0", false, "b"}, {"d1", false, "b"}, {"d2", false, ""}, {"d3", false, ""}};
  const SchedulePlan p =
      Schedule({Job("a", 1, 1), Job("b", 1, 2, 0, 1, {"t1"})}, With(Trainers({"t0", "t1"}), dws));
  EXPECT_THAT(p.jobs.at("b").dataworkers, UnorderedElementsAre("d0", "d1"));
  EXPECT_THAT(p.jobs.at("a").dataworkers, UnorderedElementsAre("d2", "d3"));
  // Demand of b falls to a fifth of a's: b keeps one of its own.
  const SchedulePlan q = Schedule({Job("a", 1, 1, 0, 5), Job("b", 1, 2, 0, 1, {"t1"})},
                                  With(Trainers({"t0", "t1"}), dws));
  EXPECT_EQ(q.jobs.at("a").dataworkers.size(), 3u);
  ASSERT_EQ(q.jobs.at("b").dataworkers.size(), 1u);
  EXPECT_EQ(q.jobs.at("b").dataworkers[0], "d0");
}

TEST(SchedulerTest, CudaJobsGetGpuTrainersAndTheKindsQueueSeparately) {
  std::vector<SchedWorker> workers = Trainers({"c0", "c1", "g0"});
  workers[2].cuda = true;
  SchedJob gpu_big = Job("gpu-big", 2, 1);  // waits: one GPU trainer only
  gpu_big.cuda = true;
  SchedJob gpu = Job("gpu", 1, 2);
  gpu.cuda = true;
  const SchedulePlan p = Schedule({gpu_big, Job("cpu", 2, 3), gpu}, workers);
  EXPECT_THAT(p.jobs.at("gpu-big").trainers, IsEmpty());
  // Behind a waiting GPU job: a CPU job runs on CPU trainers, a GPU job still waits its turn.
  EXPECT_THAT(p.jobs.at("cpu").trainers, UnorderedElementsAre("c0", "c1"));
  EXPECT_THAT(p.jobs.at("gpu").trainers, IsEmpty());
  EXPECT_THAT(p.idle_trainers, ElementsAre("g0"));

  // A CPU job never takes a GPU trainer, nor a GPU job a CPU one.
  const SchedulePlan q = Schedule({gpu, Job("cpu", 3, 2)}, workers);
  EXPECT_THAT(q.jobs.at("gpu").trainers, ElementsAre("g0"));
  EXPECT_THAT(q.jobs.at("cpu").trainers, IsEmpty());
}

}  // namespace
}  // namespace vjepa::coordinator
