// Checkpoint upload and pull against the in-process fake coordinator: digests, chunk sizes,
// fencing, a pull that continues a partial file, a corrupt partial file, retries that give up or
// are cancelled.
#include "services/trainer/service/checkpoint_transfer.h"

#include <filesystem>
#include <random>
#include <string>

#include "common/rpc/client.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/sha256.h"
#include "services/trainer/service/fake_trainer_coordinator.h"

namespace vjepa::trainer {
namespace {

using ::testing::HasSubstr;
using ::vjepa::testing::ReadFile;
using ::vjepa::testing::StatusIs;

std::string RandomBytes(size_t n) {
  std::mt19937 rng(7);
  std::string out(n, '\0');
  for (char& c : out) c = static_cast<char>(rng());
  return out;
}

class CheckpointTransferTest : public ::testing::Test {
 protected:
  void SetUp() override {
    rpc::ClientOptions o;
    o.address = coordinator_.address();
    auto channel = rpc::MakeChannel(o);
    ASSERT_TRUE(channel.ok()) << channel.status();
    workers_ = v1::WorkerService::NewStub(*channel);
    checkpoints_ = v1::CheckpointService::NewStub(*channel);
    options_.retry_budget = absl::Seconds(2);
    options_.max_backoff = absl::Milliseconds(200);
  }

  v1::UploadCheckpointRequest::Header Header(int64_t generation, int64_t step) const {
    v1::UploadCheckpointRequest::Header h;
    h.set_worker_id("w-trainer-0-1");
    h.set_job_id("j");
    h.set_generation(generation);
    h.set_step(step);
    return h;
  }

  testing::ScratchDir dir_;
  FakeTrainerCoordinator coordinator_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
  std::unique_ptr<v1::CheckpointService::Stub> checkpoints_;
  TransferOptions options_;
};

TEST_F(CheckpointTransferTest, UploadSendsTheSizeAndDigestInChunksOfAtMostOneMebibyte) {
  v1::TrainerAssignment a;
  a.set_job_id("j");
  a.set_generation(3);
  coordinator_.SetAssignment(a);
  const std::string data = RandomBytes((5 << 19) + 17);  // 2.5 MiB and a bit
  const std::string path = dir_.File("ckpt");
  dir_.Write("ckpt", data);
  v1::UploadCheckpointRequest::Header h = Header(3, 7);
  h.set_final(true);
  ASSERT_OK_AND_ASSIGN(v1::UploadCheckpointResponse r,
                       UploadCheckpoint(workers_.get(), h, path, options_));
  EXPECT_EQ(r.checkpoint_id(), "j/7");
  const auto uploads = coordinator_.uploads();
  ASSERT_EQ(uploads.size(), 1u);
  EXPECT_TRUE(uploads[0].accepted);
  EXPECT_EQ(uploads[0].data, data);
  EXPECT_EQ(uploads[0].header.sha256(), checkpoint::Sha256Hex(data));
  EXPECT_EQ(uploads[0].header.size_bytes(), static_cast<int64_t>(data.size()));
  EXPECT_TRUE(uploads[0].header.final());
}

TEST_F(CheckpointTransferTest, AStaleGenerationIsFailedPrecondition) {
  v1::TrainerAssignment a;
  a.set_job_id("j");
  a.set_generation(4);
  coordinator_.SetAssignment(a);
  dir_.Write("ckpt", "bytes");
  EXPECT_THAT(UploadCheckpoint(workers_.get(), Header(3, 1), dir_.File("ckpt"), options_).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")));
}

TEST_F(CheckpointTransferTest, PullContinuesAPartialFileAndChecksTheDigest) {
  const std::string data = RandomBytes(700 << 10);
  coordinator_.AddCheckpoint("j", 5, data);
  const std::string path = dir_.File("pulled");
  dir_.Write("pulled", data.substr(0, 300 << 10));
  ASSERT_OK_AND_ASSIGN(v1::Checkpoint c,
                       PullCheckpoint(checkpoints_.get(), "j", 5, path, options_));
  EXPECT_EQ(c.sha256(), checkpoint::Sha256Hex(data));
  EXPECT_EQ(ReadFile(path), data);
  const auto pulls = coordinator_.pulls();
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].offset(), 300 << 10);
  // A complete file: one more pull from its end.
  ASSERT_OK_AND_ASSIGN(c, PullCheckpoint(checkpoints_.get(), "j", 5, path, options_));
  EXPECT_EQ(ReadFile(path), data);
}

TEST_F(CheckpointTransferTest, ACorruptPartialFileIsDataLossAndRemoved) {
  const std::string data = RandomBytes(100 << 10);
  coordinator_.AddCheckpoint("j", 5, data);
  const std::string path = dir_.File("pulled");
  dir_.Write("pulled", std::string(1000, 'x'));
  EXPECT_THAT(PullCheckpoint(checkpoints_.get(), "j", 5, path, options_).status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("SHA-256")));
  EXPECT_FALSE(std::filesystem::exists(path));
  // The next pull starts over.
  ASSERT_OK_AND_ASSIGN(v1::Checkpoint c,
                       PullCheckpoint(checkpoints_.get(), "j", 5, path, options_));
  EXPECT_EQ(ReadFile(path), data);
}

TEST_F(CheckpointTransferTest, AMissingCheckpointIsNotFound) {
  EXPECT_THAT(PullCheckpoint(checkpoints_.get(), "j", 9, dir_.File("x"), options_).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no such checkpoint")));
}

TEST_F(CheckpointTransferTest, RetriesGiveUpAfterTheBudgetOrWhenCancelled) {
  int calls = 0;
  options_.retry_budget = absl::Milliseconds(500);
  options_.initial_backoff = absl::Milliseconds(20);
  absl::Status s = RetryTransient("op", options_, [&] {
    ++calls;
    return absl::UnavailableError("down");
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("op: gave up after")));
  EXPECT_GE(calls, 2);

  calls = 0;
  options_.retry_budget = absl::Minutes(5);
  options_.cancelled = [&] { return calls >= 3; };
  s = RetryTransient("op", options_, [&] {
    ++calls;
    return absl::UnavailableError("down");
  });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kCancelled, HasSubstr("op: cancelled")));
  EXPECT_EQ(calls, 3);

  options_.cancelled = nullptr;
  s = RetryTransient("op", options_, [] { return absl::DataLossError("bad digest"); });
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kDataLoss, HasSubstr("bad digest")));
}

}  // namespace
}  // namespace vjepa::trainer
