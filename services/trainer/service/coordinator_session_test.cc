// vjepa-trainer in coordinator mode as a process on 127.0.0.1, against an in-process fake
// coordinator (FakeTrainerCoordinator) and a standalone vjepa-dataworker serving job
// "standalone" on a generated dataset: it reports every consumed batch exactly once, uploads its
// checkpoints (every checkpoint_every steps and a final one) with the right digest, stops a run
// whose assignment moves away without uploading, resumes from a pulled checkpoint, registers again
// when a heartbeat is refused, and runs two ranks through rank 0's c10d store.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/checkpoint/sha256.h"
#include "services/trainer/service/fake_trainer_coordinator.h"
#include "services/trainer/service/test_dataset.h"
#include "tests/process.h"

namespace vjepa::trainer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kJob[] = "standalone";
constexpr char kSpec[] =
    "name: coordinator-session-test\n"
    "model: {preset: nano}\n"
    "dataset: {manifest: manifest.txt}\n"
    "optim: {batch_size: 2, steps: 8}\n";

class CoordinatorSessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(
        dataworker_, StartTestDataworker(dir_, kSpec, kJob,
                                         {absl::StrCat("--world_size=", WorldSize())}, &worker_));
    trainer_ = Trainer("trainer-0");
  }

  // The trainers of a job of this many ranks are tested (the dataworker serves them all).
  virtual int WorldSize() const { return 1; }

  std::unique_ptr<testing::Process> Trainer(const std::string& name) {
    return std::make_unique<testing::Process>(
        std::vector<std::string>{
            testing::BinDir() + "/vjepa-trainer", "--coordinator=" + coordinator_.address(),
            "--token_file=" + dir_.File("worker.token"), "--name=" + name,
            "--advertise_address=127.0.0.1", "--work_dir=" + dir_.File("work-" + name),
            "--batch_log=" + dir_.File("batches.jsonl"), "--torch_threads=1", "--data_deadline=20s",
            "--c10d_timeout=30s"},
        dir_.File(name + ".log"));
  }

  void TearDown() override {
    if (trainer_ != nullptr && trainer_->Running()) {
      trainer_->Signal(SIGTERM);
      EXPECT_EQ(trainer_->Wait(absl::Seconds(60)), 0) << trainer_->Log();
    }
  }

  v1::TrainerAssignment Assignment(int64_t generation, int64_t steps, int64_t every) const {
    v1::TrainerAssignment a;
    a.set_job_id(kJob);
    a.set_generation(generation);
    a.set_rank(0);
    a.set_world_size(1);
    a.set_spec_yaml(kSpec);
    a.add_dataworkers(dataworker_);
    a.set_steps(steps);
    a.set_checkpoint_every(every);
    return a;
  }

  // The g's of the accepted reports of `generation` and `rank`, in report order.
  std::vector<int64_t> Delivered(int64_t generation, int rank = 0) const {
    std::vector<int64_t> out;
    for (const v1::ReportProgressRequest& r : coordinator_.reports()) {
      EXPECT_EQ(r.job_id(), kJob);
      EXPECT_TRUE(r.failure().empty()) << r.failure();
      if (r.generation() == generation && r.rank() == rank) {
        out.insert(out.end(), r.delivered().begin(), r.delivered().end());
      }
    }
    return out;
  }

  bool FinalUploaded(int64_t generation) const {
    for (const auto& u : coordinator_.uploads()) {
      if (u.header.generation() == generation && u.header.final() && u.accepted) return true;
    }
    return false;
  }

  // The batch log's lines as key -> value maps.
  std::vector<std::map<std::string, std::string>> BatchLog() const {
    std::vector<std::map<std::string, std::string>> out;
    std::ifstream in(dir_.File("batches.jsonl"));
    static const std::regex kField(R"re("(\w+)":("[^"]*"|-?\d+))re");
    for (std::string line; std::getline(in, line);) {
      std::map<std::string, std::string> fields;
      for (std::sregex_iterator it(line.begin(), line.end(), kField), end; it != end; ++it) {
        fields[(*it)[1]] = (*it)[2];
      }
      out.push_back(fields);
    }
    return out;
  }

  testing::ScratchDir dir_;
  FakeTrainerCoordinator coordinator_;
  std::unique_ptr<testing::Process> worker_;
  std::string dataworker_;
  std::unique_ptr<testing::Process> trainer_;
};

TEST_F(CoordinatorSessionTest, ReportsEveryBatchOnceAndUploadsCheckpoints) {
  coordinator_.SetAssignment(Assignment(1, 5, 2));
  ASSERT_TRUE(testing::WaitFor([&] { return FinalUploaded(1) || !trainer_->Running(); },
                               absl::Seconds(120)))
      << trainer_->Log();
  ASSERT_TRUE(trainer_->Running()) << trainer_->Log();
  EXPECT_GE(coordinator_.registrations(), 1);

  EXPECT_THAT(Delivered(1), ElementsAre(0, 1, 2, 3, 4));
  const std::vector<v1::ReportProgressRequest> reports = coordinator_.reports();
  ASSERT_FALSE(reports.empty());
  EXPECT_EQ(reports.back().step(), 5);
  for (const auto& r : reports) {
    EXPECT_GT(r.loss(), 0);
    EXPECT_GT(r.step_seconds(), 0);
  }

  const auto uploads = coordinator_.uploads();
  ASSERT_EQ(uploads.size(), 3u) << trainer_->Log();
  std::vector<int64_t> steps;
  for (const auto& u : uploads) {
    EXPECT_TRUE(u.accepted);
    EXPECT_EQ(u.header.job_id(), kJob);
    EXPECT_EQ(u.header.generation(), 1);
    EXPECT_THAT(u.header.worker_id(), ::testing::StartsWith("w-trainer-0-"));
    EXPECT_EQ(u.header.sha256(), checkpoint::Sha256Hex(u.data));
    EXPECT_EQ(u.header.size_bytes(), static_cast<int64_t>(u.data.size()));
    EXPECT_EQ(u.header.final(), u.header.step() == 5);
    steps.push_back(u.header.step());
  }
  EXPECT_THAT(steps, ElementsAre(2, 4, 5));
  // The uploaded file is the checkpoint of that step.
  const std::string copy = dir_.File("uploaded.safetensors");
  {
    std::ofstream out(copy, std::ios::binary);
    out << uploads.back().data;
  }
  core::StatusOr<checkpoint::TrainingCheckpoint> c = checkpoint::LoadCheckpoint(copy);
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->step, 5);

  const auto log = BatchLog();
  ASSERT_EQ(log.size(), 5u);
  for (size_t i = 0; i < log.size(); ++i) {
    EXPECT_EQ(log[i].at("job_id"), "\"standalone\"");
    EXPECT_EQ(log[i].at("generation"), "1");
    EXPECT_EQ(log[i].at("rank"), "0");
    EXPECT_EQ(log[i].at("step"), std::to_string(i));
    EXPECT_EQ(log[i].at("g"), std::to_string(i));
    EXPECT_EQ(log[i].count("epoch"), 1u);
    EXPECT_EQ(log[i].count("batch_index"), 1u);
    EXPECT_EQ(log[i].at("source"), "\"" + dataworker_ + "\"");
  }
  // Idle now (the job succeeded): SIGTERM ends the process with 0.
  trainer_->Signal(SIGTERM);
  EXPECT_EQ(trainer_->Wait(absl::Seconds(60)), 0) << trainer_->Log();
}

TEST_F(CoordinatorSessionTest, AnotherGenerationStopsTheRunWithoutUploading) {
  coordinator_.SetAssignment(Assignment(1, 1000, 0));
  ASSERT_TRUE(testing::WaitFor([&] { return Delivered(1).size() >= 2 || !trainer_->Running(); },
                               absl::Seconds(120)))
      << trainer_->Log();
  coordinator_.SetAssignment(Assignment(2, 2, 0));
  ASSERT_TRUE(testing::WaitFor([&] { return FinalUploaded(2) || !trainer_->Running(); },
                               absl::Seconds(120)))
      << trainer_->Log();
  EXPECT_THAT(trainer_->Log(), HasSubstr("run of job standalone generation 1 stopped at step"));
  for (const auto& u : coordinator_.uploads()) {
    EXPECT_EQ(u.header.generation(), 2) << "generation 1 uploaded step " << u.header.step();
  }
  EXPECT_THAT(Delivered(2), ElementsAre(0, 1));
  // Generation 1's reports hold every g it consumed at most once, in order.
  const std::vector<int64_t> first = Delivered(1);
  for (size_t i = 0; i < first.size(); ++i) EXPECT_EQ(first[i], static_cast<int64_t>(i));
  EXPECT_FALSE(std::filesystem::exists(dir_.File("work-trainer-0/standalone/g1")) &&
               !std::filesystem::is_empty(dir_.File("work-trainer-0/standalone/g1")));
}

TEST_F(CoordinatorSessionTest, ResumesFromAPulledCheckpoint) {
  coordinator_.SetAssignment(Assignment(1, 3, 0));
  ASSERT_TRUE(testing::WaitFor([&] { return FinalUploaded(1) || !trainer_->Running(); },
                               absl::Seconds(120)))
      << trainer_->Log();
  v1::TrainerAssignment resumed = Assignment(2, 5, 0);
  resumed.set_resume_checkpoint_id("standalone/3");
  resumed.set_resume_step(3);
  coordinator_.SetAssignment(resumed);
  ASSERT_TRUE(testing::WaitFor([&] { return FinalUploaded(2) || !trainer_->Running(); },
                               absl::Seconds(120)))
      << trainer_->Log();
  const auto pulls = coordinator_.pulls();
  ASSERT_FALSE(pulls.empty());
  EXPECT_EQ(pulls[0].job_id(), kJob);
  EXPECT_EQ(pulls[0].step(), 3);
  EXPECT_THAT(trainer_->Log(), HasSubstr("at step 3"));
  EXPECT_THAT(Delivered(2), ElementsAre(3, 4));
  const auto uploads = coordinator_.uploads();
  ASSERT_EQ(uploads.size(), 2u);
  EXPECT_EQ(uploads[1].header.step(), 5);
  EXPECT_TRUE(uploads[1].header.final());
  std::vector<std::string> gen2_steps;
  for (const auto& line : BatchLog()) {
    if (line.at("generation") == "2") gen2_steps.push_back(line.at("step"));
  }
  EXPECT_THAT(gen2_steps, ElementsAre("3", "4"));
}

TEST_F(CoordinatorSessionTest, RegistersAgainWhenAHeartbeatIsRefused) {
  ASSERT_TRUE(testing::WaitFor(
      [&] { return coordinator_.heartbeats() >= 2 || !trainer_->Running(); }, absl::Seconds(60)))
      << trainer_->Log();
  coordinator_.FailNextHeartbeat();
  ASSERT_TRUE(testing::WaitFor(
      [&] { return coordinator_.registrations() >= 2 || !trainer_->Running(); }, absl::Seconds(60)))
      << trainer_->Log();
  const auto regs = coordinator_.registration_requests();
  ASSERT_GE(regs.size(), 2u);
  EXPECT_EQ(regs[0].name(), "trainer-0");
  EXPECT_EQ(regs[0].kind(), v1::TRAINER);
  EXPECT_EQ(regs[0].advertise_address(), "127.0.0.1");
  EXPECT_GT(regs[1].incarnation(), regs[0].incarnation());
  // The new registration takes assignments as before.
  coordinator_.SetAssignment(Assignment(1, 2, 0));
  ASSERT_TRUE(testing::WaitFor([&] { return FinalUploaded(1) || !trainer_->Running(); },
                               absl::Seconds(120)))
      << trainer_->Log();
  EXPECT_THAT(Delivered(1), ElementsAre(0, 1));
}

class TwoRanksTest : public CoordinatorSessionTest {
 protected:
  int WorldSize() const override { return 2; }
};

TEST_F(TwoRanksTest, RankZeroServesTheStoreAndBothRanksTrain) {
  auto second = Trainer("trainer-1");
  for (int rank : {0, 1}) {
    v1::TrainerAssignment a = Assignment(1, 3, 2);
    a.set_world_size(2);
    a.set_rank(rank);
    coordinator_.SetAssignment(absl::StrCat("trainer-", rank), a);
  }
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        return (FinalUploaded(1) && Delivered(1, 1).size() >= 3) || !trainer_->Running() ||
               !second->Running();
      },
      absl::Seconds(120)))
      << trainer_->Log() << second->Log();
  EXPECT_THAT(trainer_->Log(), HasSubstr("serving the c10d store of job standalone generation 1 "
                                         "at 127.0.0.1:"));
  EXPECT_THAT(Delivered(1, 0), ElementsAre(0, 2, 4));
  EXPECT_THAT(Delivered(1, 1), ElementsAre(1, 3, 5));
  std::vector<int64_t> steps;
  for (const auto& u : coordinator_.uploads()) {
    EXPECT_THAT(u.header.worker_id(), ::testing::StartsWith("w-trainer-0-"));
    EXPECT_TRUE(u.accepted);
    steps.push_back(u.header.step());
  }
  EXPECT_THAT(steps, ElementsAre(2, 3));
  std::map<std::string, std::vector<std::string>> g_by_rank;
  for (const auto& line : BatchLog()) g_by_rank[line.at("rank")].push_back(line.at("g"));
  EXPECT_THAT(g_by_rank["0"], ElementsAre("0", "2", "4"));
  EXPECT_THAT(g_by_rank["1"], ElementsAre("1", "3", "5"));
  second->Signal(SIGTERM);
  EXPECT_EQ(second->Wait(absl::Seconds(60)), 0) << second->Log();
}

}  // namespace
}  // namespace vjepa::trainer
