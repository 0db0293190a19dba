// The vjepa-dataworker binary as a process on 127.0.0.1: standalone mode on a generated dataset
// (tiny H.264 clips, a manifest, a nano spec) serves a test client; two processes give the same
// bytes for the same batch; SIGTERM ends it promptly with exit code 0; the check subcommand.
#include <signal.h>

#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/dataworker/stream_client.h"
#include "services/dataworker/test_util.h"
#include "tests/process.h"
#include "tests/test_cluster.h"

namespace vjepa::dataworker {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

constexpr char kSpec[] =
    "name: process-test\n"
    "model: {preset: nano}\n"
    "dataset: {manifest: manifest.txt}\n"
    "optim: {batch_size: 2}\n";

// A worker process in standalone mode, serving job "job-p" to `world_size` trainers.
class WorkerProcess {
 public:
  WorkerProcess(const testing::ScratchDir& dir, const std::string& name, int world_size) {
    port_file_ = dir.File(name + ".port");
    std::vector<std::string> argv = {testing::BinDir() + "/vjepa-dataworker",
                                     "--listen=127.0.0.1:0",
                                     "--port_file=" + port_file_,
                                     "--auth_tokens=" + dir.File("tokens"),
                                     "--data_root=" + dir.File("data"),
                                     "--job_spec=" + dir.File("spec.yaml"),
                                     "--job_id=job-p",
                                     absl::StrCat("--world_size=", world_size),
                                     "--threads=1",
                                     "--stream_buffer_batches=2"};
    process_ = std::make_unique<testing::Process>(argv, dir.File(name + ".log"));
    testing::WaitFor([&] { return testing::ReadPortFile(port_file_) > 0 || !process_->Running(); },
                     absl::Seconds(60));
    port_ = testing::ReadPortFile(port_file_);
  }
  bool ok() const { return port_ > 0; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  testing::Process& process() { return *process_; }

 private:
  std::string port_file_;
  std::unique_ptr<testing::Process> process_;
  int port_ = 0;
};

class DataworkerProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.File("data"));
    for (const char* name : {"a", "b", "c", "d"}) {
      ASSERT_TRUE(MakeTestVideo(dir_.File(absl::StrCat("data/", name, ".mp4")), 64, 48, 40));
    }
    dir_.Write("data/manifest.txt", "a.mp4 0\nb.mp4 1\nc.mp4 2\nd.mp4 3\n");
    dir_.Write("spec.yaml", kSpec);
    dir_.Write("tokens", testing::TestTokenFile());
  }
  static v1::StreamBatchesRequest Request(int rank, int64_t from) {
    v1::StreamBatchesRequest r;
    r.set_job_id("job-p");
    r.set_rank(rank);
    r.set_from_global_index(from);
    return r;
  }

  testing::ScratchDir dir_;
};

TEST_F(DataworkerProcessTest, ServesAStreamAndStopsOnSigterm) {
  WorkerProcess worker(dir_, "w1", /*world_size=*/2);
  ASSERT_TRUE(worker.ok()) << worker.process().Log();
  ASSERT_OK_AND_ASSIGN(auto channel, DataChannel(worker.address()));
  BatchStreamReader reader(channel, testing::kWorkerToken, Request(/*rank=*/1, /*from=*/1));
  // nb = 4 videos / 2 = 2: g = 1, 3, 5 are batch 1 of epochs 0, 1, 2.
  for (int64_t g : {1, 3, 5}) {
    ASSERT_OK_AND_ASSIGN(ReceivedBatch batch, reader.Next());
    const v1::BatchHeader& h = batch.header;
    EXPECT_EQ(h.job_id(), "job-p");
    EXPECT_EQ(h.global_index(), g);
    EXPECT_EQ(h.epoch(), g / 2);
    EXPECT_EQ(h.batch_index(), 1);
    EXPECT_EQ(h.batch_size(), 2);
    EXPECT_EQ(h.num_tokens(), 8);      // (4/2)·(32/16)²
    EXPECT_EQ(h.token_bytes(), 1536);  // 2·16·16·3
    EXPECT_EQ(h.masks_size(), 2);      // the nano preset's two mask configs
    ASSERT_EQ(h.sample_ids_size(), 2);
    for (int64_t s : h.sample_ids()) {
      EXPECT_GE(s, 0);
      EXPECT_LT(s, 4);
    }
    ASSERT_EQ(batch.clips.size(), 2u);
    for (const std::string& clip : batch.clips) EXPECT_EQ(clip.size(), 8u * 1536u);
  }
  // The rank outside the world and a user token are refused.
  BatchStreamReader bad_rank(channel, testing::kWorkerToken, Request(2, 0));
  EXPECT_THAT(bad_rank.Next().status(), StatusIs(absl::StatusCode::kInvalidArgument, _));
  BatchStreamReader user(channel, testing::kAliceToken, Request(0, 0));
  EXPECT_THAT(user.Next().status(), StatusIs(absl::StatusCode::kPermissionDenied, _));

  // SIGTERM while the trainer reads: the stream ends (after whole batches only) and the
  // process exits promptly with 0.
  absl::Status end;
  int64_t more = 0;
  std::thread trainer([&] {
    absl::StatusOr<ReceivedBatch> next = reader.Next();
    for (; next.ok(); next = reader.Next()) ++more;
    end = next.status();
  });
  worker.process().Signal(SIGTERM);
  EXPECT_EQ(worker.process().Wait(absl::Seconds(20)), 0) << worker.process().Log();
  trainer.join();
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kUnavailable, _)) << more << " more batches";
  EXPECT_THAT(worker.process().Log(), HasSubstr("stopped"));
}

TEST_F(DataworkerProcessTest, TwoWorkersProduceTheSameBytesForABatch) {
  WorkerProcess first(dir_, "w1", 1);
  WorkerProcess second(dir_, "w2", 1);
  ASSERT_TRUE(first.ok()) << first.process().Log();
  ASSERT_TRUE(second.ok()) << second.process().Log();
  std::vector<ReceivedBatch> got;
  for (WorkerProcess* w : {&first, &second}) {
    ASSERT_OK_AND_ASSIGN(auto channel, DataChannel(w->address()));
    BatchStreamReader reader(channel, testing::kWorkerToken, Request(0, /*from=*/3));
    ASSERT_OK_AND_ASSIGN(ReceivedBatch batch, reader.Next());
    got.push_back(std::move(batch));
  }
  EXPECT_EQ(got[0].header.global_index(), 3);
  EXPECT_EQ(got[0].header.SerializeAsString(), got[1].header.SerializeAsString());
  ASSERT_EQ(got[0].clips.size(), got[1].clips.size());
  for (size_t c = 0; c < got[0].clips.size(); ++c) {
    EXPECT_TRUE(got[0].clips[c] == got[1].clips[c]) << "clip " << c;
  }
}

TEST_F(DataworkerProcessTest, CheckSubcommandReportsAndSetsTheExitCode) {
  const std::string bin = testing::BinDir() + "/vjepa-dataworker";
  testing::RunResult ok = testing::Run(
      {bin, "check", "--manifest=manifest.txt", "--data_root=" + dir_.File("data"), "--json"});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  std::vector<std::string> lines = absl::StrSplit(ok.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 5u) << ok.out;
  nlohmann::json summary = nlohmann::json::parse(lines.back());
  EXPECT_EQ(summary["ok"], 4);

  dir_.Write("data/with-bad.txt", "a.mp4 0\nnot-there.mp4 1\n");
  testing::RunResult bad =
      testing::Run({bin, "check", "--manifest", "with-bad.txt", "--data_root", dir_.File("data")});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_THAT(bad.out, HasSubstr("bad  not-there.mp4: missing"));
  EXPECT_THAT(bad.out, HasSubstr("2 files: 1 ok, 1 bad (missing 1)"));

  EXPECT_EQ(testing::Run({bin, "check", "--data_root", dir_.File("data")}).exit_code, 2);
  EXPECT_EQ(
      testing::Run({bin, "check", "--manifest", "x", "--data_root", dir_.File("nope")}).exit_code,
      2);
  testing::RunResult help = testing::Run({bin, "--help"});
  EXPECT_THAT(help.out + help.err, HasSubstr("--stream_buffer_batches"));
  // Neither a coordinator nor a job spec: nothing to serve.
  testing::RunResult nothing = testing::Run(
      {bin, "--auth_tokens=" + dir_.File("tokens"), "--data_root=" + dir_.File("data")});
  EXPECT_EQ(nothing.exit_code, 2);
  EXPECT_THAT(nothing.err, HasSubstr("--coordinator"));
}

}  // namespace
}  // namespace vjepa::dataworker
