#include "services/coordinator/checkpoint_store.h"

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/sha256.h"

namespace vjepa::coordinator {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

const rpc::Principal kAlice{"alice", rpc::Role::kUser};
const rpc::Principal kBob{"bob", rpc::Role::kUser};
const rpc::Principal kAdmin{"root", rpc::Role::kAdmin};
const rpc::Principal kWorker{"trainer", rpc::Role::kWorker};

std::string Bytes(int64_t step, size_t size) {
  std::string s(size, '\0');
  for (size_t i = 0; i < size; ++i) s[i] = static_cast<char>((i * 31 + step * 7) & 0xff);
  return s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

MATCHER_P(HoldsValue, value, "is OK and holds the expected bytes") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  return *arg == value;
}

struct UploadArgs {
  std::string job;
  int64_t step = 0;
  int64_t generation = 0;
  std::string data;
  bool final = false;
  std::string sha256;         // empty: the right one
  int64_t size_bytes = -1;    // -1: the right one
  size_t chunk = 300 * 1000;  // bytes per chunk message
};

class CheckpointStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    checkpoints_.reset();
    jobs_.reset();
    store_.reset();
    registry_ = std::make_unique<metrics::Registry>();
    ASSERT_OK_AND_ASSIGN(store_, Store::Open(dir_.File("c.db")));
    jobs_ = std::make_unique<JobManager>(store_.get(), *registry_);
    ASSERT_OK(jobs_->Init());
    CheckpointStoreOptions options;
    options.root = root();
    options.max_bytes = 8 << 20;
    checkpoints_ =
        std::make_unique<CheckpointStore>(store_.get(), jobs_.get(), *registry_, options);
    checkpoints_->SetOnCheckpointCommitted(
        [this](StoreTxn& txn, const std::string& job, int64_t gen, int64_t step, bool final) {
          EXPECT_NE(txn.db, nullptr);
          committed_.push_back(job + "/" + std::to_string(gen) + "/" + std::to_string(step) +
                               (final ? "/final" : ""));
          return absl::OkStatus();
        });
    ASSERT_OK(checkpoints_->Init());
  }

  std::string root() const { return dir_.File("checkpoints"); }

  v1::Job Submit(const rpc::Principal& p, int keep_last = 3, int keep_every = 0) {
    v1::SubmitJobRequest req;
    req.set_spec_yaml(
        "name: j\nmodel:\n  preset: nano\ndataset:\n  manifest: data/m.csv\n"
        "optim:\n  steps: 1000\ncheckpoint:\n  every_steps: 50\n  keep_last: " +
        std::to_string(keep_last) + "\n  keep_every: " + std::to_string(keep_every) + "\n");
    v1::SubmitJobResponse resp;
    EXPECT_OK(jobs_->SubmitJob(p, req, &resp));
    return resp.job();
  }

  absl::StatusOr<v1::UploadCheckpointResponse> Upload(const UploadArgs& a,
                                                      const rpc::Principal& p = kWorker) {
    std::vector<v1::UploadCheckpointRequest> msgs(1);
    auto* h = msgs[0].mutable_header();
    h->set_worker_id("w-1");
    h->set_job_id(a.job);
    h->set_step(a.step);
    h->set_generation(a.generation);
    h->set_size_bytes(a.size_bytes >= 0 ? a.size_bytes : static_cast<int64_t>(a.data.size()));
    h->set_sha256(a.sha256.empty() ? checkpoint::Sha256Hex(a.data) : a.sha256);
    h->set_final(a.final);
    for (size_t off = 0; off < a.data.size(); off += a.chunk) {
      msgs.emplace_back().set_chunk(a.data.substr(off, a.chunk));
    }
    size_t i = 0;
    v1::UploadCheckpointResponse resp;
    absl::Status s = checkpoints_->UploadCheckpoint(
        p,
        [&](v1::UploadCheckpointRequest* m) {
          if (i >= msgs.size()) return false;
          *m = msgs[i++];
          return true;
        },
        &resp);
    if (!s.ok()) return s;
    return resp;
  }

  std::vector<int64_t> Steps(const std::string& job, const rpc::Principal& p = kAdmin) {
    v1::ListCheckpointsRequest req;
    req.set_job_id(job);
    v1::ListCheckpointsResponse resp;
    EXPECT_OK(checkpoints_->ListCheckpoints(p, req, &resp));
    std::vector<int64_t> steps;
    for (const auto& c : resp.checkpoints()) steps.push_back(c.step());
    return steps;
  }

  absl::StatusOr<std::string> Pull(const rpc::Principal& p, const std::string& job, int64_t step,
                                   int64_t offset = 0,
                                   const std::function<void()>& after_first = {}) {
    v1::PullCheckpointRequest req;
    req.set_job_id(job);
    req.set_step(step);
    req.set_offset(offset);
    req.set_chunk_bytes(100 * 1000);
    std::string out;
    bool first = true;
    absl::Status s = checkpoints_->PullCheckpoint(
        p, req,
        [&](const v1::PullCheckpointResponse& m) {
          EXPECT_EQ(m.offset(), offset + static_cast<int64_t>(out.size()));
          EXPECT_EQ(m.checkpoint().job_id(), job);
          EXPECT_EQ(m.checkpoint().sha256().size(), 64u);
          out += m.data();
          if (first && after_first) after_first();
          first = false;
          return true;
        },
        [] { return false; });
    if (!s.ok()) return s;
    return out;
  }

  double Metric(const std::string& name, const std::string& label = "") {
    for (const auto& family : registry_->Collect()) {
      if (family.name != name) continue;
      for (const auto& m : family.metric) {
        if (!label.empty() && (m.label.empty() || m.label[0].value != label)) continue;
        return family.type == prometheus::MetricType::Counter ? m.counter.value : m.gauge.value;
      }
    }
    return -1;
  }

  void Run(const std::string& job) {
    ASSERT_OK(jobs_->Transition(job, v1::SCHEDULED, "state", "").status());
    ASSERT_OK(jobs_->Transition(job, v1::RUNNING, "state", "").status());
  }

  testing::ScratchDir dir_;
  std::unique_ptr<metrics::Registry> registry_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<JobManager> jobs_;
  std::unique_ptr<CheckpointStore> checkpoints_;
  std::vector<std::string> committed_;
};

TEST_F(CheckpointStoreTest, UploadIsStoredIndexedAndPulledByteForByte) {
  v1::Job job = Submit(kAlice);
  const std::string data = Bytes(100, 1'234'567);
  ASSERT_OK_AND_ASSIGN(auto resp, Upload({.job = job.id(), .step = 100, .data = data}));
  EXPECT_EQ(resp.checkpoint_id(), job.id() + "/100");
  EXPECT_FALSE(resp.deduplicated());
  EXPECT_THAT(committed_, ElementsAre(job.id() + "/0/100"));
  const std::string blob = root() + "/" + job.id() + "/100-0.safetensors";
  EXPECT_EQ(ReadFile(blob), data);
  // No temp file stays behind.
  int files = 0;
  for (const auto& f : fs::directory_iterator(root() + "/" + job.id())) (void)f, ++files;
  EXPECT_EQ(files, 1);

  v1::ListCheckpointsRequest lreq;
  lreq.set_job_id(job.id());
  v1::ListCheckpointsResponse list;
  ASSERT_OK(checkpoints_->ListCheckpoints(kAlice, lreq, &list));
  ASSERT_EQ(list.checkpoints_size(), 1);
  EXPECT_EQ(list.checkpoints(0).sha256(), checkpoint::Sha256Hex(data));
  EXPECT_EQ(list.checkpoints(0).size_bytes(), static_cast<int64_t>(data.size()));

  EXPECT_THAT(Pull(kAlice, job.id(), -1), HoldsValue(data));
  EXPECT_THAT(Pull(kWorker, job.id(), 100, 1'000'000), HoldsValue(data.substr(1'000'000)));
  EXPECT_THAT(Pull(kAlice, job.id(), 100, static_cast<int64_t>(data.size())),
              HoldsValue(std::string()));
  EXPECT_THAT(Pull(kAlice, job.id(), 100, static_cast<int64_t>(data.size()) + 1).status(),
              StatusIs(absl::StatusCode::kOutOfRange, ::testing::_));
  EXPECT_THAT(Pull(kAlice, job.id(), 7).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no checkpoint at step 7")));
  // Another user: as if the job did not exist.
  EXPECT_THAT(Pull(kBob, job.id(), -1).status(),
              StatusIs(absl::StatusCode::kNotFound, "job " + job.id() + " not found"));
  v1::ListCheckpointsResponse bobs;
  EXPECT_THAT(checkpoints_->ListCheckpoints(kBob, lreq, &bobs),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_EQ(Metric("vjepa_coordinator_checkpoint_uploads_total", "ok"), 1);
  EXPECT_EQ(Metric("vjepa_coordinator_checkpoint_received_bytes_total"), data.size());
  EXPECT_EQ(Metric("vjepa_coordinator_checkpoints_stored"), 1);
}

TEST_F(CheckpointStoreTest, SecondIdenticalUploadIsDeduplicated) {
  v1::Job job = Submit(kAlice);
  const std::string data = Bytes(5, 1000);
  ASSERT_OK(Upload({.job = job.id(), .step = 5, .data = data}).status());
  ASSERT_OK_AND_ASSIGN(auto again, Upload({.job = job.id(), .step = 5, .data = data}));
  EXPECT_TRUE(again.deduplicated());
  EXPECT_EQ(again.checkpoint_id(), job.id() + "/5");
  EXPECT_THAT(Steps(job.id()), ElementsAre(5));
  EXPECT_EQ(committed_.size(), 1u);
  EXPECT_EQ(Metric("vjepa_coordinator_checkpoint_uploads_total", "deduplicated"), 1);
}

TEST_F(CheckpointStoreTest, TamperedOrMisSizedUploadsAreRefusedAndNothingIsKept) {
  v1::Job job = Submit(kAlice);
  const std::string data = Bytes(1, 5000);
  std::string tampered = data;
  tampered[4000] ^= 1;
  EXPECT_THAT(Upload({.job = job.id(),
                      .step = 1,
                      .data = tampered,
                      .sha256 = checkpoint::Sha256Hex(data),
                      .chunk = 1000})
                  .status(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("nothing was kept")));
  EXPECT_THAT(Upload({.job = job.id(), .step = 1, .data = data, .size_bytes = 4999}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("more than size_bytes")));
  EXPECT_THAT(Upload({.job = job.id(), .step = 1, .data = data, .size_bytes = 5001}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("5000 bytes")));
  EXPECT_THAT(Upload({.job = job.id(), .step = 1, .data = Bytes(1, 9 << 20)}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("size_bytes")));
  EXPECT_THAT(
      Upload({.job = job.id(), .step = 1, .data = Bytes(1, 3 << 20), .chunk = 2 << 20}).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("chunk")));
  EXPECT_THAT(Upload({.job = job.id(), .step = 1, .data = data, .sha256 = "abc"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sha256")));
  EXPECT_THAT(Steps(job.id()), ElementsAre());
  EXPECT_TRUE(committed_.empty());
  // Not even a temp file.
  EXPECT_TRUE(fs::is_empty(root() + "/" + job.id()));
  EXPECT_EQ(Metric("vjepa_coordinator_checkpoint_uploads_total", "digest_mismatch"), 1);
  EXPECT_EQ(Metric("vjepa_coordinator_checkpoint_uploads_total", "refused"), 5);
}

TEST_F(CheckpointStoreTest, UploadNeedsALiveJobOfTheCurrentGeneration) {
  v1::Job job = Submit(kAlice);
  const std::string data = Bytes(1, 100);
  EXPECT_THAT(Upload({.job = "j-nosuchjob", .step = 1, .data = data}).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(Upload({.job = "../etc", .step = 1, .data = data}).status(),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_THAT(Upload({.job = job.id(), .step = 1, .generation = 3, .data = data}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("generation 3")));
  ASSERT_OK(jobs_->Transition(job.id(), v1::CANCELLED, "cancel", "").status());
  EXPECT_THAT(Upload({.job = job.id(), .step = 1, .data = data}).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("CANCELLED")));
  EXPECT_THAT(Steps(job.id()), ElementsAre());
}

TEST_F(CheckpointStoreTest, FinalUploadMakesTheJobSucceeded) {
  v1::Job job = Submit(kAlice);
  Run(job.id());
  ASSERT_OK(Upload({.job = job.id(), .step = 1000, .data = Bytes(2, 10), .final = true}).status());
  ASSERT_OK_AND_ASSIGN(auto stored, store_->GetJob(job.id()));
  EXPECT_EQ(stored->state(), v1::SUCCEEDED);
  EXPECT_THAT(committed_, ElementsAre(job.id() + "/0/1000/final"));
  // A retry of the same final upload is deduplicated and changes nothing.
  ASSERT_OK_AND_ASSIGN(
      auto again, Upload({.job = job.id(), .step = 1000, .data = Bytes(2, 10), .final = true}));
  EXPECT_TRUE(again.deduplicated());
}

TEST_F(CheckpointStoreTest, RetentionKeepsLastKEveryNthAndThoseBeingPulled) {
  v1::Job job = Submit(kAlice, /*keep_last=*/2, /*keep_every=*/100);
  for (int64_t step : {50, 100}) {
    ASSERT_OK(Upload({.job = job.id(), .step = step, .data = Bytes(step, 10)}).status());
  }
  // 50 is pinned by a pull while 150, 200 and 250 arrive; it survives until a later commit.
  ASSERT_OK_AND_ASSIGN(
      std::string pulled, Pull(kAlice, job.id(), 50, 0, [&] {
        for (int64_t step : {150, 200, 250}) {
          ASSERT_OK(Upload({.job = job.id(), .step = step, .data = Bytes(step, 10)}).status());
        }
        EXPECT_THAT(Steps(job.id()), ElementsAre(50, 100, 200, 250));
      }));
  EXPECT_EQ(pulled, Bytes(50, 10));
  ASSERT_OK(Upload({.job = job.id(), .step = 300, .data = Bytes(300, 10)}).status());
  EXPECT_THAT(Steps(job.id()), ElementsAre(100, 200, 250, 300));
  EXPECT_FALSE(fs::exists(root() + "/" + job.id() + "/50-0.safetensors"));
  EXPECT_FALSE(fs::exists(root() + "/" + job.id() + "/150-0.safetensors"));
  EXPECT_TRUE(fs::exists(root() + "/" + job.id() + "/100-0.safetensors"));
  EXPECT_EQ(Metric("vjepa_coordinator_checkpoint_retention_deletions_total"), 2);
  EXPECT_EQ(Metric("vjepa_coordinator_checkpoints_stored"), 4);
}

TEST_F(CheckpointStoreTest, StartRemovesOrphanBlobsAndRowsWithoutBlobs) {
  v1::Job job = Submit(kAlice);
  for (int64_t step : {1, 2}) {
    ASSERT_OK(Upload({.job = job.id(), .step = step, .data = Bytes(step, 10)}).status());
  }
  const std::string dir = root() + "/" + job.id();
  {
    std::ofstream(dir + "/3-0.safetensors") << "orphan";
    std::ofstream(dir + "/.4-0.safetensors.tmp-1-0") << "temp";
    fs::create_directories(root() + "/j-gone");
    std::ofstream(root() + "/j-gone/1-0.safetensors") << "orphan";
  }
  fs::remove(dir + "/1-0.safetensors");
  Open();
  EXPECT_THAT(Steps(job.id()), ElementsAre(2));
  EXPECT_FALSE(fs::exists(dir + "/3-0.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/.4-0.safetensors.tmp-1-0"));
  EXPECT_FALSE(fs::exists(root() + "/j-gone"));
  EXPECT_TRUE(fs::exists(dir + "/2-0.safetensors"));
  EXPECT_THAT(Pull(kAlice, job.id(), -1), HoldsValue(Bytes(2, 10)));
}

TEST_F(CheckpointStoreTest, DeleteJobRemovesAFinishedJobWithItsCheckpoints) {
  v1::Job job = Submit(kAlice);
  ASSERT_OK(Upload({.job = job.id(), .step = 1, .data = Bytes(1, 10)}).status());
  v1::DeleteJobRequest req;
  req.set_id(job.id());
  v1::DeleteJobResponse resp;
  EXPECT_THAT(checkpoints_->DeleteJob(kAlice, req, &resp),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("cancel it first")));
  ASSERT_OK(jobs_->Transition(job.id(), v1::CANCELLED, "cancel", "").status());
  EXPECT_THAT(checkpoints_->DeleteJob(kBob, req, &resp),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  ASSERT_OK(checkpoints_->DeleteJob(kAlice, req, &resp));
  EXPECT_EQ(resp.checkpoints_deleted(), 1);
  ASSERT_OK_AND_ASSIGN(auto gone, store_->GetJob(job.id()));
  EXPECT_FALSE(gone.has_value());
  ASSERT_OK_AND_ASSIGN(auto events, store_->ListEvents(job.id(), 0));
  EXPECT_TRUE(events.empty());
  ASSERT_OK_AND_ASSIGN(auto rows, store_->ListCheckpoints(""));
  EXPECT_TRUE(rows.empty());
  EXPECT_FALSE(fs::exists(root() + "/" + job.id()));
  EXPECT_THAT(checkpoints_->DeleteJob(kAlice, req, &resp),
              StatusIs(absl::StatusCode::kNotFound, ::testing::_));
}

}  // namespace
}  // namespace vjepa::coordinator
