// Pretraining through the services, as real processes on 127.0.0.1 started by
// deploy/local/cluster (a coordinator, dataworkers and trainers in coordinator mode) on a
// generated dataset: a job runs to SUCCEEDED with every batch of every data epoch consumed and
// committed exactly once; `--set` overrides apply; a SIGKILLed dataworker, trainer or coordinator
// does not change which batches the job consumes; a resumed job ends with the parameters of an
// uninterrupted one; the final checkpoint pulls with its digest and resumes a partial pull.
#include <signal.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/rpc/client.h"
#include "common/spec/job_spec.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/dataworker/test_util.h"
#include "services/trainer/checkpoint/safetensors_header.h"
#include "tests/process.h"
#include "vjepa/v1/checkpoint.grpc.pb.h"
#include "vjepa/v1/job.grpc.pb.h"

namespace vjepa {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::RunResult;
using testing::WriteFile;

constexpr int kVideos = 8;

// The job every test runs, with the steps and checkpoint period set per test.
std::string Spec(const std::string& name, int trainers, int64_t steps, int64_t every,
                 const std::string& manifest) {
  return absl::StrCat("name: ", name,
                      "\nseed: 5\nmodel: {preset: nano}\n"
                      "dataset: {manifest: ",
                      manifest, "}\noptim: {batch_size: 2, steps: ", steps,
                      "}\ncheckpoint: {every_steps: ", every, "}\nresources: {trainers: ", trainers,
                      ", dataworkers: 2}\n");
}

// One line of a trainer's --batch_log.
struct Consumed {
  std::string job_id;
  int64_t generation = 0;
  int64_t rank = 0;
  int64_t step = 0;
  int64_t g = 0;
  int64_t epoch = 0;
  int64_t batch_index = 0;
  auto key() const { return std::make_tuple(step, rank, g, epoch, batch_index); }
};

class PretrainProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.File("data"));
    std::string manifest;
    for (int i = 0; i < kVideos; ++i) {
      const std::string name = absl::StrCat("v", i, ".mp4");
      ASSERT_TRUE(dataworker::MakeTestVideo(dir_.File("data/" + name), 64, 48, 40));
      absl::StrAppend(&manifest, name, " ", i % 3, "\n");
    }
    // One file that is not a video: quarantined and replaced inside its batch.
    dir_.Write("data/bad.mp4", std::string(4096, 'x'));
    absl::StrAppend(&manifest, "bad.mp4 1\n");
    dir_.Write("data/manifest.txt", manifest);
    manifest_ = dir_.File("data/manifest.txt");
  }

  void TearDown() override {
    if (!cluster_.empty()) {
      RunResult down =
          testing::Run({"/bin/bash", Launcher(), "down", "--dir", cluster_}, absl::Seconds(60));
      EXPECT_EQ(down.exit_code, 0) << down.err;
      std::error_code ec;
      if (HasFailure() && fs::is_directory(cluster_ + "/logs", ec)) {
        for (const auto& entry : fs::directory_iterator(cluster_ + "/logs", ec)) {
          std::string log = ReadFile(entry.path().string());
          if (log.size() > 6000) log = log.substr(log.size() - 6000);
          std::cerr << "==== " << entry.path().filename().string() << "\n" << log << "\n";
        }
      }
    }
  }

  static std::string Launcher() { return testing::SourceDir() + "/deploy/local/cluster"; }

  // Starts the cluster; fast heartbeats so that losses are seen within seconds.
  void Up(int dataworkers, int trainers) {
    cluster_ = dir_.File("cluster");
    RunResult up =
        testing::Run({"/bin/bash", Launcher(), "up", "--dir", cluster_, "--dataworkers",
                      std::to_string(dataworkers), "--trainers", std::to_string(trainers),
                      "--data_root", dir_.File("data"), "--bin", testing::BinDir(),
                      "--coordinator_flag=--heartbeat_interval=200ms",
                      "--coordinator_flag=--worker_lost_after=3s",
                      "--coordinator_flag=--lease_duration=20s", "--dataworker_flag=--threads=1",
                      "--trainer_flag=--torch_threads=1", "--trainer_flag=--c10d_timeout=10s"},
                     absl::Seconds(240));
    ASSERT_EQ(up.exit_code, 0) << up.out << up.err;
    for (absl::string_view line : absl::StrSplit(up.out, '\n', absl::SkipEmpty())) {
      if (absl::ConsumePrefix(&line, "VJEPA_COORDINATOR=")) address_ = std::string(line);
      if (absl::ConsumePrefix(&line, "VJEPA_TOKEN=")) token_ = std::string(line);
    }
    ASSERT_FALSE(address_.empty()) << up.out;
    ASSERT_FALSE(token_.empty()) << up.out;
    auto channel = rpc::MakeChannel({address_});
    ASSERT_OK(channel.status());
    jobs_ = v1::JobService::NewStub(*channel);
    checkpoints_ = v1::CheckpointService::NewStub(*channel);
  }

  RunResult Ctl(std::vector<std::string> args) {
    std::vector<std::string> argv = {testing::BinDir() + "/vjepactl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, absl::Seconds(120),
                        {"VJEPA_COORDINATOR=" + address_, "VJEPA_TOKEN=" + token_});
  }

  // Submits with vjepactl (and its --set overrides); returns the job id.
  std::string Submit(const std::string& spec, const std::vector<std::string>& sets = {}) {
    const std::string path = dir_.File(absl::StrCat("spec-", ++specs_, ".yaml"));
    WriteFile(path, spec);
    std::vector<std::string> args = {"submit", "-f", path, "-o", "json"};
    for (const std::string& s : sets) {
      args.push_back("--set");
      args.push_back(s);
    }
    RunResult r = Ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out, nullptr, false);
    if (j.is_discarded()) return "";
    if (j.contains("job")) j = j["job"];
    return j.value("id", "");
  }

  v1::Job Get(const std::string& id) {
    auto ctx = rpc::MakeContext(token_, absl::Seconds(10));
    v1::GetJobRequest req;
    req.set_id(id);
    v1::GetJobResponse resp;
    grpc::Status s = jobs_->GetJob(ctx.get(), req, &resp);
    if (!s.ok()) return v1::Job();
    return resp.job();
  }

  // Waits for a terminal state; returns the job.
  v1::Job AwaitEnd(const std::string& id, absl::Duration timeout) {
    v1::Job job;
    testing::WaitFor(
        [&] {
          job = Get(id);
          return job.state() == v1::SUCCEEDED || job.state() == v1::FAILED ||
                 job.state() == v1::CANCELLED;
        },
        timeout);
    return job;
  }

  // The job's event log (it has ended).
  std::vector<v1::JobEvent> Events(const std::string& id) {
    auto ctx = rpc::MakeContext(token_, absl::Seconds(10));
    v1::WatchJobRequest req;
    req.set_id(id);
    auto reader = jobs_->WatchJob(ctx.get(), req);
    std::vector<v1::JobEvent> events;
    v1::JobEvent e;
    while (reader->Read(&e)) events.push_back(e);
    (void)reader->Finish();
    return events;
  }

  // Every batch-log line of `job_id` from all trainers.
  std::vector<Consumed> BatchLog(const std::string& job_id, int trainers) {
    std::vector<Consumed> out;
    for (int i = 0; i < trainers; ++i) {
      std::ifstream in(absl::StrCat(cluster_, "/trainer-", i, ".batches.jsonl"));
      std::string line;
      while (std::getline(in, line)) {
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (j.is_discarded() || j.value("job_id", "") != job_id) continue;
        Consumed c;
        c.job_id = job_id;
        c.generation = j.value("generation", int64_t{0});
        c.rank = j.value("rank", int64_t{0});
        c.step = j.value("step", int64_t{0});
        c.g = j.value("g", int64_t{-1});
        c.epoch = j.value("epoch", int64_t{-1});
        c.batch_index = j.value("batch_index", int64_t{-1});
        out.push_back(c);
      }
    }
    return out;
  }

  int64_t Lines(const std::string& job_id, int trainers) {
    return static_cast<int64_t>(BatchLog(job_id, trainers).size());
  }

  pid_t Pid(const std::string& role, int i) {
    int64_t pid = 0;
    std::string text = ReadFile(absl::StrCat(cluster_, "/", role, "-", i, ".pid"));
    return absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) ? static_cast<pid_t>(pid) : 0;
  }

  // Every g of the job consumed once in generation `generation`, at the step, rank, epoch and
  // batch index the arithmetic gives (nb = 4 batches per epoch).
  static void ExpectExactlyOnce(const std::vector<Consumed>& log, int64_t total, int world,
                                int64_t generation) {
    std::map<int64_t, int> seen;
    std::set<std::pair<int64_t, int64_t>> positions;
    for (const Consumed& c : log) {
      if (c.generation != generation) continue;
      ++seen[c.g];
      EXPECT_EQ(c.step, c.g / world) << "g " << c.g;
      EXPECT_EQ(c.rank, c.g % world) << "g " << c.g;
      EXPECT_EQ(c.epoch, c.g / 4) << "g " << c.g;
      EXPECT_EQ(c.batch_index, c.g % 4) << "g " << c.g;
      positions.emplace(c.epoch, c.batch_index);
    }
    ASSERT_EQ(static_cast<int64_t>(seen.size()), total);
    for (const auto& [g, n] : seen) {
      EXPECT_GE(g, 0);
      EXPECT_LT(g, total);
      EXPECT_EQ(n, 1) << "g " << g << " consumed " << n << " times";
    }
    EXPECT_EQ(static_cast<int64_t>(positions.size()), total);  // each batch of each epoch once
  }

  void ExpectLedgerComplete(const v1::Job& job, int64_t total) {
    EXPECT_EQ(job.runtime().batches_total(), total);
    EXPECT_EQ(job.runtime().batches_committed(), total);
    EXPECT_EQ(job.runtime().batches_pending(), 0);
    EXPECT_EQ(job.runtime().batches_leased(), 0);
    EXPECT_EQ(job.runtime().batches_delivered(), 0);
    EXPECT_EQ(job.runtime().dataset_size(), kVideos + 1);  // nb = 9 / 2 = 4
    EXPECT_EQ(job.runtime().batches_per_epoch(), 4);
  }

  // Pulls the job's final checkpoint with vjepactl; returns the file's bytes.
  std::string PullLatest(const std::string& job_id, const std::string& out) {
    RunResult r = Ctl({"checkpoints", "pull", job_id, "--latest", "-o", out});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return ReadFile(out);
  }

  // The model tensors (encoder., predictor., target_encoder.) of a safetensors file, as floats.
  static std::map<std::string, std::vector<float>> ModelTensors(const std::string& file) {
    std::map<std::string, std::vector<float>> out;
    if (file.size() < 8) return out;
    uint64_t n = 0;
    std::memcpy(&n, file.data(), 8);
    auto header = checkpoint::ParseSafetensorsHeader(std::string_view(file).substr(8, n),
                                                     file.size() - 8 - n, "checkpoint");
    if (!header.ok()) return out;
    for (const checkpoint::TensorInfo& t : header->tensors) {
      if (t.dtype != checkpoint::DType::kF32) continue;
      if (!absl::StartsWith(t.name, "encoder.") && !absl::StartsWith(t.name, "predictor.") &&
          !absl::StartsWith(t.name, "target_encoder.")) {
        continue;
      }
      std::vector<float>& v = out[t.name];
      v.resize((t.end - t.begin) / sizeof(float));
      std::memcpy(v.data(), file.data() + header->data_start + t.begin, t.end - t.begin);
    }
    return out;
  }

  testing::ScratchDir dir_;
  std::string manifest_;
  std::string cluster_;
  std::string address_;
  std::string token_;
  int specs_ = 0;
  std::unique_ptr<v1::JobService::Stub> jobs_;
  std::unique_ptr<v1::CheckpointService::Stub> checkpoints_;
};

TEST_F(PretrainProcessTest, TwoTrainersTwoDataworkersSucceedWithEveryBatchCommittedOnce) {
  ASSERT_NO_FATAL_FAILURE(Up(2, 2));
  // Four overrides: 2 trainers × 4 steps = 8 global batches = two data epochs of 4.
  const std::string id =
      Submit(Spec("two-by-two", 1, 100, 50, manifest_),
             {"optim.steps=4", "checkpoint.every_steps=2", "resources.trainers=2", "seed=11"});
  ASSERT_FALSE(id.empty());
  v1::Job job = AwaitEnd(id, absl::Seconds(240));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.message();
  absl::StatusOr<spec::JobSpec> spec = spec::ParseJobSpec(job.spec_yaml());
  ASSERT_OK(spec.status());
  EXPECT_EQ(spec->optim.steps, 4);
  EXPECT_EQ(spec->checkpoint.every_steps, 2);
  EXPECT_EQ(spec->resources.trainers, 2);
  EXPECT_EQ(spec->seed, 11);
  EXPECT_EQ(job.generation(), 1);
  ExpectLedgerComplete(job, 8);
  ExpectExactlyOnce(BatchLog(id, 2), 8, 2, 1);

  // Checkpoints at the period and at the end; the latest pulls with its digest.
  auto ctx = rpc::MakeContext(token_, absl::Seconds(10));
  v1::ListCheckpointsRequest list;
  list.set_job_id(id);
  v1::ListCheckpointsResponse listed;
  ASSERT_TRUE(checkpoints_->ListCheckpoints(ctx.get(), list, &listed).ok());
  ASSERT_EQ(listed.checkpoints_size(), 2);
  EXPECT_EQ(listed.checkpoints(0).step(), 2);
  EXPECT_EQ(listed.checkpoints(1).step(), 4);
  EXPECT_TRUE(listed.checkpoints(1).final());
  const std::string out = dir_.File("final.safetensors");
  const std::string pulled = PullLatest(id, out);
  EXPECT_EQ(static_cast<int64_t>(pulled.size()), listed.checkpoints(1).size_bytes());
  EXPECT_FALSE(ModelTensors(pulled).empty());
  // An interrupted pull resumes from its partial file.
  const std::string resumed = dir_.File("resumed.safetensors");
  WriteFile(resumed + ".partial", pulled.substr(0, pulled.size() / 2));
  RunResult again = Ctl({"checkpoints", "pull", id, "--step", "4", "-o", resumed});
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(ReadFile(resumed), pulled);
  EXPECT_FALSE(fs::exists(resumed + ".partial"));

  // The file that is not a video was drawn, quarantined for this dataset and listed (the
  // dataworker reports it in the background: it may land just after the job ended).
  testing::WaitFor(
      [&] {
        job = Get(id);
        return job.runtime().quarantined_size() > 0;
      },
      absl::Seconds(20));
  ASSERT_EQ(job.runtime().quarantined_size(), 1);
  EXPECT_EQ(job.runtime().quarantined(0).path(), "bad.mp4");
  EXPECT_EQ(job.runtime().quarantined(0).sample(), kVideos);
  RunResult described = Ctl({"describe", "job", id});
  EXPECT_THAT(described.out, HasSubstr("8 committed"));
  EXPECT_THAT(described.out, HasSubstr("bad.mp4"));
}

TEST_F(PretrainProcessTest, SigkilledDataworkerDoesNotChangeWhatIsConsumed) {
  ASSERT_NO_FATAL_FAILURE(Up(2, 1));
  const std::string id = Submit(Spec("dw-kill", 1, 40, 10, manifest_));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(testing::WaitFor([&] { return Lines(id, 1) >= 6; }, absl::Seconds(180)))
      << Get(id).message();
  const pid_t pid = Pid("dataworker", 0);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  v1::Job job = AwaitEnd(id, absl::Seconds(300));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.message();
  EXPECT_EQ(job.generation(), 1);  // a dataworker never restarts a job
  ExpectLedgerComplete(job, 40);
  ExpectExactlyOnce(BatchLog(id, 1), 40, 1, 1);
}

TEST_F(PretrainProcessTest, SigkilledTrainerRestartsFromItsCheckpointAndEndsLikeAnUnbrokenRun) {
  ASSERT_NO_FATAL_FAILURE(Up(2, 2));
  const std::string spec = Spec("trainer-kill", 2, 24, 4, manifest_);
  const std::string reference = Submit(spec);
  ASSERT_FALSE(reference.empty());
  v1::Job ref = AwaitEnd(reference, absl::Seconds(240));
  ASSERT_EQ(ref.state(), v1::SUCCEEDED) << ref.message();

  const std::string id = Submit(spec);
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(testing::WaitFor([&] { return Lines(id, 2) >= 20; }, absl::Seconds(180)));
  const pid_t pid = Pid("trainer", 1);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  v1::Job job = AwaitEnd(id, absl::Seconds(300));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.message();
  EXPECT_GE(job.generation(), 2);
  bool restarting = false;
  for (const v1::JobEvent& e : Events(id)) restarting |= e.state() == v1::RESTARTING;
  EXPECT_TRUE(restarting);
  ExpectLedgerComplete(job, 48);

  // The last generation resumed at a checkpoint and consumed exactly what the unbroken run did.
  const std::vector<Consumed> log = BatchLog(id, 2);
  std::set<std::tuple<int64_t, int64_t, int64_t, int64_t, int64_t>> resumed, unbroken;
  int64_t resume_step = 1 << 30;
  for (const Consumed& c : log) {
    if (c.generation != job.generation()) continue;
    resumed.insert(c.key());
    resume_step = std::min(resume_step, c.step);
  }
  EXPECT_EQ(resume_step % 4, 0) << "resumed at step " << resume_step;
  EXPECT_GT(resume_step, 0);
  for (const Consumed& c : BatchLog(reference, 2)) {
    if (c.step >= resume_step) unbroken.insert(c.key());
  }
  EXPECT_EQ(resumed, unbroken);
  EXPECT_EQ(static_cast<int64_t>(resumed.size()), (24 - resume_step) * 2);
  if (HasFailure()) {
    for (const Consumed& c : log) {
      std::cerr << "consumed: generation " << c.generation << " step " << c.step << " rank "
                << c.rank << " g " << c.g << "\n";
    }
  }

  const auto a = ModelTensors(PullLatest(reference, dir_.File("ref.safetensors")));
  const auto b = ModelTensors(PullLatest(id, dir_.File("resumed.safetensors")));
  ASSERT_FALSE(a.empty());
  ASSERT_EQ(a.size(), b.size());
  for (const auto& [name, va] : a) {
    auto it = b.find(name);
    ASSERT_NE(it, b.end()) << name;
    ASSERT_EQ(va.size(), it->second.size()) << name;
    for (size_t i = 0; i < va.size(); ++i) {
      ASSERT_NEAR(va[i], it->second[i], 1e-5f + 1e-4f * std::fabs(va[i]))
          << name << "[" << i << "]";
    }
  }
}

TEST_F(PretrainProcessTest, SigkilledCoordinatorRestartsOnItsDataAndTheJobCompletes) {
  ASSERT_NO_FATAL_FAILURE(Up(2, 2));
  const std::string id = Submit(Spec("coord-kill", 2, 24, 4, manifest_));
  ASSERT_FALSE(id.empty());
  ASSERT_TRUE(testing::WaitFor([&] { return Lines(id, 2) >= 12; }, absl::Seconds(180)));
  const pid_t pid = Pid("coordinator", 0);
  ASSERT_GT(pid, 0);
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  v1::Job job = AwaitEnd(id, absl::Seconds(300));
  ASSERT_EQ(job.state(), v1::SUCCEEDED) << job.message();
  EXPECT_EQ(job.generation(), 1);  // a coordinator restart alone never restarts a job
  ExpectLedgerComplete(job, 48);
  ExpectExactlyOnce(BatchLog(id, 2), 48, 2, 1);
}

}  // namespace
}  // namespace vjepa
