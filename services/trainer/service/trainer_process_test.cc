// The vjepa-trainer binary as a process on 127.0.0.1 against a standalone vjepa-dataworker on a
// generated dataset (tiny H.264 clips, a manifest, a nano spec): it trains, writes checkpoints
// every checkpoint.every_steps and at the end, resumes from the newest one and ends where an
// uninterrupted run ends; SIGTERM stops it after a step with a checkpoint and exit code 0; with no
// dataworker answering it exits 1 naming the cause.
#include <signal.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/service/test_dataset.h"
#include "tests/process.h"

namespace vjepa::trainer {
namespace {

using ::testing::HasSubstr;

constexpr char kSpec[] =
    "name: trainer-process-test\n"
    "model: {preset: nano}\n"
    "dataset: {manifest: manifest.txt}\n"
    "optim: {batch_size: 2, steps: 8}\n"
    "checkpoint: {every_steps: 3}\n";

class TrainerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(address_, StartTestDataworker(dir_, kSpec, "job-t", {}, &worker_));
  }

  std::unique_ptr<testing::Process> Trainer(const std::string& name, const std::string& ckpt_dir,
                                            std::vector<std::string> extra) {
    std::vector<std::string> argv = {testing::BinDir() + "/vjepa-trainer",
                                     "--job_spec=" + dir_.File("spec.yaml"),
                                     "--job_id=job-t",
                                     "--dataworkers=" + address_,
                                     "--token_file=" + dir_.File("worker.token"),
                                     "--checkpoint_dir=" + ckpt_dir,
                                     "--torch_threads=1",
                                     "--data_deadline=20s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<testing::Process>(argv, dir_.File(name + ".log"));
  }

  // The steps and losses of the progress lines of a log.
  static std::vector<std::pair<int64_t, double>> Progress(const std::string& log) {
    std::vector<std::pair<int64_t, double>> out;
    static const std::regex kLine(R"(step (\d+)/\d+ loss (\S+) lr \S+ clips/s \S+ data_wait \S+)");
    for (std::sregex_iterator it(log.begin(), log.end(), kLine), end; it != end; ++it) {
      out.emplace_back(std::stoll((*it)[1]), std::stod((*it)[2]));
    }
    return out;
  }

  // The encoder, predictor and target encoder of two checkpoints agree.
  static void ExpectSameModels(const checkpoint::TrainingCheckpoint& a,
                               const checkpoint::TrainingCheckpoint& b) {
    using Models = std::vector<checkpoint::NamedTensor> checkpoint::TrainingCheckpoint::*;
    for (Models models :
         {&checkpoint::TrainingCheckpoint::encoder, &checkpoint::TrainingCheckpoint::predictor,
          &checkpoint::TrainingCheckpoint::target_encoder}) {
      const auto& x = a.*models;
      const auto& y = b.*models;
      ASSERT_EQ(x.size(), y.size());
      for (size_t i = 0; i < x.size(); ++i) {
        EXPECT_EQ(x[i].name, y[i].name);
        EXPECT_TRUE(torch::allclose(x[i].tensor, y[i].tensor, 1e-5, 1e-6)) << x[i].name;
      }
    }
  }

  static checkpoint::TrainingCheckpoint Load(const std::string& path) {
    core::StatusOr<checkpoint::TrainingCheckpoint> c = checkpoint::LoadCheckpoint(path);
    EXPECT_TRUE(c.ok()) << path << ": " << c.status().ToString();
    return c.ok() ? *std::move(c) : checkpoint::TrainingCheckpoint{};
  }

  testing::ScratchDir dir_;
  std::unique_ptr<testing::Process> worker_;
  std::string address_;
};

TEST_F(TrainerProcessTest, TrainsCheckpointsAndResumesToTheSameParameters) {
  const std::string resumed_dir = dir_.File("ckpt-resumed");
  {
    auto first = Trainer("first", resumed_dir, {"--steps=6"});
    ASSERT_EQ(first->Wait(absl::Seconds(120)), 0) << first->Log();
    const auto progress = Progress(first->Log());
    ASSERT_EQ(progress.size(), 6u) << first->Log();
    for (size_t i = 0; i < progress.size(); ++i) {
      EXPECT_EQ(progress[i].first, static_cast<int64_t>(i) + 1);
      EXPECT_TRUE(std::isfinite(progress[i].second)) << progress[i].second;
      EXPECT_GT(progress[i].second, 0);
    }
  }
  EXPECT_EQ(Load(resumed_dir + "/step-3.safetensors").step, 3);
  const checkpoint::TrainingCheckpoint six = Load(resumed_dir + "/step-6.safetensors");
  EXPECT_EQ(six.step, 6);
  EXPECT_THAT(six.spec, HasSubstr("trainer-process-test"));
  EXPECT_FALSE(six.encoder.empty());
  EXPECT_FALSE(six.optimizer.state.empty());

  {
    auto resumed = Trainer("resumed", resumed_dir, {"--resume", "--steps=8"});
    ASSERT_EQ(resumed->Wait(absl::Seconds(120)), 0) << resumed->Log();
    EXPECT_THAT(resumed->Log(), HasSubstr("at step 6"));
    const auto progress = Progress(resumed->Log());
    ASSERT_EQ(progress.size(), 2u) << resumed->Log();
    EXPECT_EQ(progress[0].first, 7);
    EXPECT_EQ(progress[1].first, 8);
  }
  const checkpoint::TrainingCheckpoint resumed = Load(resumed_dir + "/step-8.safetensors");
  EXPECT_EQ(resumed.step, 8);

  // One uninterrupted run of 8 steps on the same batches ends with the same parameters.
  const std::string straight_dir = dir_.File("ckpt-straight");
  {
    auto straight = Trainer("straight", straight_dir, {"--log_every=4"});
    ASSERT_EQ(straight->Wait(absl::Seconds(120)), 0) << straight->Log();
    EXPECT_EQ(Progress(straight->Log()).size(), 2u) << straight->Log();
  }
  EXPECT_TRUE(std::filesystem::exists(straight_dir + "/step-6.safetensors"));
  const checkpoint::TrainingCheckpoint straight = Load(straight_dir + "/step-8.safetensors");
  EXPECT_EQ(straight.step, 8);
  ExpectSameModels(resumed, straight);

  // Fetching and staging one step ahead (what a GPU trainer does) trains on the same batches in
  // the same order: the same parameters again.
  const std::string ahead_dir = dir_.File("ckpt-ahead");
  {
    auto ahead = Trainer("ahead", ahead_dir, {"--stage_ahead", "--log_every=4"});
    ASSERT_EQ(ahead->Wait(absl::Seconds(120)), 0) << ahead->Log();
    EXPECT_THAT(ahead->Log(), HasSubstr("staged one step ahead"));
    EXPECT_EQ(Progress(ahead->Log()).size(), 2u) << ahead->Log();
  }
  const checkpoint::TrainingCheckpoint ahead = Load(ahead_dir + "/step-8.safetensors");
  EXPECT_EQ(ahead.step, 8);
  ExpectSameModels(ahead, straight);
}

TEST_F(TrainerProcessTest, SigtermStopsAfterAStepWithACheckpoint) {
  const std::string ckpt_dir = dir_.File("ckpt");
  auto trainer = Trainer("sigterm", ckpt_dir, {"--steps=1000"});
  ASSERT_TRUE(
      testing::WaitFor([&] { return Progress(trainer->Log()).size() >= 2 || !trainer->Running(); },
                       absl::Seconds(60)))
      << trainer->Log();
  trainer->Signal(SIGTERM);
  ASSERT_EQ(trainer->Wait(absl::Seconds(60)), 0) << trainer->Log();
  const auto progress = Progress(trainer->Log());
  ASSERT_GE(progress.size(), 2u);
  const int64_t last = progress.back().first;
  EXPECT_LT(last, 1000);
  EXPECT_THAT(trainer->Log(), HasSubstr(absl::StrCat("stopped at step ", last)));
  EXPECT_EQ(Load(absl::StrCat(ckpt_dir, "/step-", last, ".safetensors")).step, last);
}

TEST_F(TrainerProcessTest, ReadsFromADataworkerOverTls) {
  testing::ScratchDir tls_dir;
  ASSERT_TRUE(testing::MakeTestCertificates(tls_dir.path())) << "openssl failed";
  testing::ScratchDir data;
  std::unique_ptr<testing::Process> worker;
  ASSERT_OK_AND_ASSIGN(const std::string address,
                       StartTestDataworker(data, kSpec, "job-t",
                                           {"--tls_cert=" + tls_dir.File("server.pem"),
                                            "--tls_key=" + tls_dir.File("server.key")},
                                           &worker));
  const std::string port = address.substr(address.rfind(':') + 1);
  auto run = [&](const std::string& name, std::vector<std::string> extra) {
    std::vector<std::string> argv = {testing::BinDir() + "/vjepa-trainer",
                                     "--job_spec=" + data.File("spec.yaml"),
                                     "--job_id=job-t",
                                     "--dataworkers=localhost:" + port,
                                     "--token_file=" + data.File("worker.token"),
                                     "--torch_threads=1",
                                     "--steps=2",
                                     "--data_deadline=5s"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto p = std::make_unique<testing::Process>(argv, dir_.File(name + ".log"));
    const int rc = p->Wait(absl::Seconds(120));
    return std::make_pair(rc, p->Log());
  };
  auto [rc, log] = run("tls", {"--dataworker_tls_ca=" + tls_dir.File("ca.pem")});
  EXPECT_EQ(rc, 0) << log;
  EXPECT_EQ(Progress(log).size(), 2u) << log;
  // Without the CA the handshake fails and the trainer says why.
  auto [plain_rc, plain_log] = run("plain", {});
  EXPECT_EQ(plain_rc, 1) << plain_log;
  EXPECT_THAT(plain_log, HasSubstr("data"));
}

TEST_F(TrainerProcessTest, FailsWithTheCauseWhenNoDataworkerAnswers) {
  // A port nothing listens on: the dataworker of the fixture stops first and frees its port.
  const std::string dead = address_;
  worker_->Signal(SIGTERM);
  ASSERT_EQ(worker_->Wait(absl::Seconds(30)), 0) << worker_->Log();
  std::vector<std::string> argv = {testing::BinDir() + "/vjepa-trainer",
                                   "--job_spec=" + dir_.File("spec.yaml"),
                                   "--job_id=job-t",
                                   "--dataworkers=" + dead,
                                   "--token_file=" + dir_.File("worker.token"),
                                   "--data_deadline=2s"};
  testing::Process trainer(argv, dir_.File("dead.log"));
  ASSERT_EQ(trainer.Wait(absl::Seconds(60)), 1) << trainer.Log();
  EXPECT_THAT(trainer.Log(), HasSubstr("vjepa-trainer: data for step 1: "));
  EXPECT_THAT(trainer.Log(), HasSubstr(dead));
}

}  // namespace
}  // namespace vjepa::trainer
