// The checkpoint store through the real binaries: an admin uploads to vjepa-coordinator (a worker
// only for a job it is assigned to; tests/pretrain_process_test.cc has trainers upload), vjepactl
// lists, pulls (byte-identical, digest verified), resumes a partial pull, filters --only
// target_encoder, and deletes the job; users see only their own jobs' checkpoints.
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/rpc/client.h"
#include "common/status/grpc_status.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/trainer/checkpoint/safetensors_header.h"
#include "services/trainer/checkpoint/sha256.h"
#include "tests/test_cluster.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa {
namespace {

namespace fs = std::filesystem;
using testing::CoordinatorProcess;
using ::testing::HasSubstr;
using testing::ReadFile;
using testing::RunResult;
using testing::WriteFile;

// A small training-checkpoint-like safetensors file: a 3 MiB encoder tensor (so that a pull
// takes several chunks), two target_encoder tensors and a predictor tensor.
std::string SyntheticCheckpoint() {
  struct T {
    std::string name;
    checkpoint::DType dtype;
    std::vector<int64_t> shape;
  };
  const std::vector<T> specs = {{"encoder.big", checkpoint::DType::kU8, {3 << 20}},
                                {"target_encoder.blocks.0.w", checkpoint::DType::kF32, {2, 2}},
                                {"predictor.x", checkpoint::DType::kU8, {3}},
                                {"target_encoder.norm.b", checkpoint::DType::kF32, {2}}};
  std::vector<checkpoint::TensorInfo> tensors;
  std::string data;
  for (const T& t : specs) {
    checkpoint::TensorInfo info;
    info.name = t.name;
    info.dtype = t.dtype;
    info.shape = t.shape;
    info.begin = data.size();
    const uint64_t size = *checkpoint::TensorByteSize(t.dtype, t.shape);
    for (uint64_t i = 0; i < size; ++i) data.push_back(static_cast<char>((i * 13 + size) & 0xff));
    info.end = data.size();
    tensors.push_back(info);
  }
  std::string header = *checkpoint::SerializeSafetensorsHeader(
      tensors, {{checkpoint::kTensorSha256Key, checkpoint::Sha256Hex(data)}});
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) file[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return file + header + data;
}

class CheckpointProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { dir_.Write("tokens", testing::TestTokenFile()); }

  RunResult Ctl(const CoordinatorProcess& c, std::vector<std::string> args,
                const char* token = testing::kAliceToken) {
    std::vector<std::string> argv = {testing::BinDir() + "/vjepactl"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::Run(argv, absl::Seconds(60),
                        {"VJEPA_COORDINATOR=" + c.address(), std::string("VJEPA_TOKEN=") + token});
  }

  absl::StatusOr<v1::UploadCheckpointResponse> Upload(const CoordinatorProcess& c,
                                                      const std::string& job, int64_t step,
                                                      const std::string& data,
                                                      const std::string& sha256,
                                                      const char* token = testing::kAdminToken) {
    auto channel = rpc::MakeChannel({c.address()});
    if (!channel.ok()) return channel.status();
    auto stub = v1::WorkerService::NewStub(*channel);
    auto ctx = rpc::MakeContext(token, absl::Seconds(30));
    v1::UploadCheckpointResponse resp;
    auto writer = stub->UploadCheckpoint(ctx.get(), &resp);
    v1::UploadCheckpointRequest header;
    header.mutable_header()->set_worker_id("w-test");
    header.mutable_header()->set_job_id(job);
    header.mutable_header()->set_step(step);
    header.mutable_header()->set_size_bytes(static_cast<int64_t>(data.size()));
    header.mutable_header()->set_sha256(sha256);
    writer->Write(header);
    constexpr size_t kChunk = 1 << 20;
    for (size_t off = 0; off < data.size(); off += kChunk) {
      v1::UploadCheckpointRequest chunk;
      chunk.set_chunk(data.substr(off, kChunk));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    absl::Status s = FromGrpcStatus(writer->Finish());
    if (!s.ok()) return s;
    return resp;
  }

  testing::ScratchDir dir_;
};

TEST_F(CheckpointProcessTest, UploadListPullResumeOnlyAndDelete) {
  CoordinatorProcess c(dir_.File("data"), dir_.File("tokens"));
  ASSERT_TRUE(c.ok()) << c.process().Log();
  const std::string micro = testing::SourceDir() + "/examples/jobs/micro.yaml";
  RunResult submitted = Ctl(c, {"submit", "-f", micro, "-o", "json"});
  ASSERT_EQ(submitted.exit_code, 0) << submitted.err;
  const std::string id = nlohmann::json::parse(submitted.out)["id"];

  const std::string data = SyntheticCheckpoint();
  const std::string sha = checkpoint::Sha256Hex(data);
  // A worker uploads only for a job it is assigned to.
  EXPECT_THAT(Upload(c, id, 10, data, sha, testing::kWorkerToken).status(),
              testing::StatusIs(absl::StatusCode::kNotFound, HasSubstr("not assigned")));
  // A tampered upload is refused and leaves nothing behind.
  std::string tampered = data;
  tampered[100] ^= 0x5a;
  EXPECT_THAT(Upload(c, id, 10, tampered, sha).status(),
              testing::StatusIs(absl::StatusCode::kDataLoss, HasSubstr("nothing was kept")));
  ASSERT_OK_AND_ASSIGN(auto up, Upload(c, id, 10, data, sha));
  EXPECT_EQ(up.checkpoint_id(), id + "/10");
  ASSERT_OK_AND_ASSIGN(auto again, Upload(c, id, 10, data, sha));
  EXPECT_TRUE(again.deduplicated());

  RunResult list = Ctl(c, {"checkpoints", "list", id, "-o", "json"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  auto listed = nlohmann::json::parse(list.out);
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["step"], 10);
  EXPECT_EQ(listed[0]["sha256"], sha);
  EXPECT_EQ(listed[0]["size_bytes"], data.size());
  RunResult table = Ctl(c, {"checkpoints", "list", id});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_THAT(table.out, HasSubstr("STEP"));

  // Another user: the job does not exist for them.
  RunResult bobs = Ctl(c, {"checkpoints", "list", id}, testing::kBobToken);
  EXPECT_EQ(bobs.exit_code, 1);
  EXPECT_THAT(bobs.err, HasSubstr("NOT_FOUND"));
  RunResult bob_pull =
      Ctl(c, {"checkpoints", "pull", id, "-o", dir_.File("bob.st")}, testing::kBobToken);
  EXPECT_EQ(bob_pull.exit_code, 1);
  EXPECT_FALSE(fs::exists(dir_.File("bob.st")));

  // A whole pull: byte-identical, no partial file left, a progress bar on stderr.
  const std::string out = dir_.File("latest.safetensors");
  RunResult pull = Ctl(c, {"checkpoints", "pull", id, "--latest", "-o", out});
  ASSERT_EQ(pull.exit_code, 0) << pull.err;
  EXPECT_EQ(ReadFile(out), data);
  EXPECT_FALSE(fs::exists(out + ".partial"));
  EXPECT_THAT(pull.err, HasSubstr("100%"));

  // An interrupted pull (its first 1.5 MiB on disk) resumes from there.
  const std::string resumed = dir_.File("resumed.safetensors");
  WriteFile(resumed + ".partial", data.substr(0, 3 << 19));
  RunResult resume = Ctl(c, {"checkpoints", "pull", id, "--step", "10", "-o", resumed});
  ASSERT_EQ(resume.exit_code, 0) << resume.err;
  EXPECT_EQ(ReadFile(resumed), data);
  EXPECT_FALSE(fs::exists(resumed + ".partial"));

  // A partial file that is not a prefix of the checkpoint fails the digest and is deleted.
  const std::string bad = dir_.File("bad.safetensors");
  std::string wrong = data.substr(0, 4096);
  wrong[10] ^= 1;
  WriteFile(bad + ".partial", wrong);
  RunResult mismatch = Ctl(c, {"checkpoints", "pull", id, "-o", bad});
  EXPECT_EQ(mismatch.exit_code, 1);
  EXPECT_THAT(mismatch.err, HasSubstr("DATA_LOSS"));
  EXPECT_FALSE(fs::exists(bad));
  EXPECT_FALSE(fs::exists(bad + ".partial"));

  // --only target_encoder: only those tensors, the prefix stripped, the same bytes.
  const std::string enc = dir_.File("target_encoder.safetensors");
  RunResult only = Ctl(c, {"checkpoints", "pull", id, "--only", "target_encoder", "-o", enc});
  ASSERT_EQ(only.exit_code, 0) << only.err;
  auto header = checkpoint::ReadSafetensorsHeader(enc);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  std::set<std::string> names;
  for (const auto& t : header->tensors) names.insert(t.name);
  EXPECT_EQ(names, (std::set<std::string>{"blocks.0.w", "norm.b"}));
  EXPECT_TRUE(checkpoint::VerifySafetensorsFile(enc).ok());
  auto original = checkpoint::ReadSafetensorsHeader(out);
  ASSERT_TRUE(original.ok());
  const std::string enc_bytes = ReadFile(enc);
  for (const auto& t : header->tensors) {
    for (const auto& o : original->tensors) {
      if (o.name != "target_encoder." + t.name) continue;
      EXPECT_EQ(enc_bytes.substr(header->data_start + t.begin, t.end - t.begin),
                data.substr(original->data_start + o.begin, o.end - o.begin))
          << t.name;
    }
  }

  // Delete: only a finished job; then the job and its checkpoints are gone.
  RunResult early = Ctl(c, {"delete", "job", id});
  EXPECT_EQ(early.exit_code, 1);
  EXPECT_THAT(early.err, HasSubstr("FAILED_PRECONDITION"));
  ASSERT_EQ(Ctl(c, {"cancel", id}).exit_code, 0);
  RunResult bob_delete = Ctl(c, {"delete", "job", id}, testing::kBobToken);
  EXPECT_EQ(bob_delete.exit_code, 1);
  EXPECT_THAT(bob_delete.err, HasSubstr("NOT_FOUND"));
  RunResult deleted = Ctl(c, {"delete", "job", id});
  ASSERT_EQ(deleted.exit_code, 0) << deleted.err;
  EXPECT_THAT(deleted.out, HasSubstr("1 checkpoint"));
  EXPECT_FALSE(fs::exists(dir_.File("data/checkpoints/" + id)));
  RunResult after = Ctl(c, {"checkpoints", "list", id});
  EXPECT_EQ(after.exit_code, 1);
  EXPECT_THAT(after.err, HasSubstr("NOT_FOUND"));
  RunResult get = Ctl(c, {"describe", "job", id});
  EXPECT_EQ(get.exit_code, 1);
}

}  // namespace
}  // namespace vjepa
