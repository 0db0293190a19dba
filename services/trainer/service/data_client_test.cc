// The data client against in-process dataworkers in standalone mode on 127.0.0.1, serving
// synthetic batches: order, duplicates, failover, header checks, giving up, stop.
#include "services/trainer/service/data_client.h"

#include <torch/torch.h>

#include <algorithm>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/masking/pack.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/dataworker/dataworker_server.h"
#include "services/dataworker/synthetic_producer.h"
#include "services/dataworker/test_util.h"
#include "tests/test_cluster.h"

namespace vjepa::trainer {
namespace {

using ::testing::_;
using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

constexpr char kJob[] = "job-a";

// Sorts each row of a packed index list (the synthetic producer's rows wrap around N).
std::string SortedRows(const std::string& packed, int element_bytes, int batch, int64_t n) {
  std::vector<int32_t> v = *masking::UnpackIndices(packed, element_bytes, n);
  const size_t row = v.size() / static_cast<size_t>(batch);
  for (int b = 0; b < batch; ++b) {
    std::sort(v.begin() + static_cast<std::ptrdiff_t>(b * row),
              v.begin() + static_cast<std::ptrdiff_t>((b + 1) * row));
  }
  return *masking::PackIndices(v, element_bytes);
}

// The synthetic batches with ascending mask rows, as a real producer sends them.
class SortedMaskProducer : public dataworker::BatchProducer {
 public:
  SortedMaskProducer(dataworker::SyntheticOptions o, std::shared_ptr<absl::Notification> gate)
      : inner_(std::move(o)), gate_(std::move(gate)) {}
  int64_t batches_per_epoch() const override { return inner_.batches_per_epoch(); }
  dataworker::DatasetIdentity identity() const override { return inner_.identity(); }
  absl::StatusOr<dataworker::ProducedBatch> Produce(int64_t epoch, int64_t batch_index) override {
    if (gate_) gate_->WaitForNotification();
    absl::StatusOr<dataworker::ProducedBatch> b = inner_.Produce(epoch, batch_index);
    if (b.ok()) Sort(b->header);
    return b;
  }
  void SetQuarantineListener(QuarantineListener listener) override {}
  static void Sort(v1::BatchHeader& h) {
    for (v1::MaskIndices& m : *h.mutable_masks()) {
      m.set_context_idx(
          SortedRows(m.context_idx(), m.element_bytes(), h.batch_size(), h.num_tokens()));
      m.set_target_idx(
          SortedRows(m.target_idx(), m.element_bytes(), h.batch_size(), h.num_tokens()));
    }
  }

 private:
  dataworker::SyntheticProducer inner_;
  std::shared_ptr<absl::Notification> gate_;  // set: production waits for it
};

class SortedMaskFactory : public dataworker::ProducerFactory {
 public:
  SortedMaskFactory(dataworker::SyntheticOptions o, std::shared_ptr<absl::Notification> gate)
      : options_(std::move(o)), gate_(std::move(gate)) {}
  absl::StatusOr<std::shared_ptr<dataworker::BatchProducer>> Create(
      const std::string& job_id, const spec::JobSpec& spec) override {
    return std::make_shared<SortedMaskProducer>(options_, gate_);
  }

 private:
  dataworker::SyntheticOptions options_;
  std::shared_ptr<absl::Notification> gate_;
};

dataworker::SyntheticOptions Synthetic() {
  dataworker::SyntheticOptions o;
  o.batch_size = 2;
  o.num_tokens = 8;
  o.token_bytes = 48;
  o.mask_configs = 2;
  o.batches_per_epoch = 5;  // g wraps into later data epochs
  return o;
}

class DataClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    dir_.Write("tokens", testing::TestTokenFile());
  }
  void TearDown() override {
    if (!gate_->HasBeenNotified()) gate_->Notify();
    if (client_) client_->Stop();
    for (auto& s : servers_) s->Stop();
  }

  // A standalone dataworker serving kJob to `world_size` trainers; returns its address.
  // With `gated`, it produces nothing until gate_ is notified.
  std::string StartDataworker(int world_size, bool gated = false) {
    dataworker::DataworkerConfig config;
    config.auth_tokens = dir_.File("tokens");
    config.service.threads = 1;
    config.service.stream_buffer_batches = 2;
    config.service.standalone = dataworker::StandaloneJob{kJob, spec::JobSpec{}, world_size};
    config.stop_grace = absl::Seconds(2);
    auto server = dataworker::DataworkerServer::Create(
        config, std::make_shared<SortedMaskFactory>(Synthetic(), gated ? gate_ : nullptr));
    EXPECT_TRUE(server.ok()) << server.status();
    EXPECT_OK((*server)->Start());
    servers_.push_back(*std::move(server));
    return absl::StrCat("127.0.0.1:", servers_.back()->BoundPort());
  }

  DataClientOptions Options(std::vector<std::string> addresses, int rank, int world_size) {
    const dataworker::SyntheticOptions s = Synthetic();
    DataClientOptions o;
    o.job_id = kJob;
    o.rank = rank;
    o.world_size = world_size;
    o.addresses = std::move(addresses);
    o.token = testing::kWorkerToken;
    o.reorder_batches = 3;
    o.batch_size = s.batch_size;
    o.num_tokens = s.num_tokens;
    o.token_bytes = s.token_bytes;
    o.mask_configs = s.mask_configs;
    o.initial_backoff = absl::Milliseconds(10);
    o.max_backoff = absl::Milliseconds(100);
    o.reconnect_deadline = absl::Seconds(20);
    return o;
  }

  void StartClient(DataClientOptions o) {
    ASSERT_OK_AND_ASSIGN(client_, DataClient::Create(std::move(o)));
    ASSERT_OK(client_->Start());
  }

  // The batch of `step` is g = step·M + r, with the synthetic producer's bytes and masks.
  static void ExpectBatch(const StepBatch& got, int64_t step, int rank, int world_size) {
    const dataworker::SyntheticOptions s = Synthetic();
    const int64_t g = step * world_size + rank;
    EXPECT_EQ(got.step, step);
    ASSERT_EQ(got.global_index, g);
    EXPECT_EQ(got.header.global_index(), g);
    EXPECT_EQ(got.header.job_id(), kJob);
    const int64_t epoch = g / s.batches_per_epoch, index = g % s.batches_per_epoch;
    EXPECT_EQ(got.header.epoch(), epoch);
    EXPECT_EQ(got.header.batch_index(), index);
    const torch::Tensor& t = got.batch.tokens;
    ASSERT_EQ(t.scalar_type(), torch::kUInt8);
    ASSERT_EQ(t.sizes(), (std::vector<int64_t>{s.batch_size, s.num_tokens, s.token_bytes}));
    for (int c = 0; c < s.batch_size; ++c) {
      const std::string want = dataworker::SyntheticClip(s, epoch, index, c);
      const torch::Tensor row = t[c].contiguous();
      EXPECT_EQ(std::string(reinterpret_cast<const char*>(row.data_ptr<uint8_t>()),
                            static_cast<size_t>(row.numel())),
                want)
          << "clip " << c << " of g " << g;
    }
    absl::StatusOr<dataworker::ProducedBatch> ref =
        dataworker::SyntheticProducer(s).Produce(epoch, index);
    ASSERT_OK(ref.status());
    SortedMaskProducer::Sort(ref->header);
    ASSERT_EQ(got.batch.masks.size(), static_cast<size_t>(s.mask_configs));
    for (int m = 0; m < s.mask_configs; ++m) {
      const v1::MaskIndices& p = ref->header.masks(m);
      for (bool context : {true, false}) {
        const torch::Tensor& idx = context ? got.batch.masks[m].context : got.batch.masks[m].target;
        const int len = context ? p.context_length() : p.target_length();
        ASSERT_EQ(idx.scalar_type(), torch::kInt64);
        ASSERT_EQ(idx.sizes(), (std::vector<int64_t>{s.batch_size, len}));
        std::vector<int32_t> want = *masking::UnpackIndices(
            context ? p.context_idx() : p.target_idx(), p.element_bytes(), s.num_tokens);
        const torch::Tensor flat = idx.reshape({-1}).to(torch::kInt32).contiguous();
        EXPECT_EQ(
            std::vector<int32_t>(flat.data_ptr<int32_t>(), flat.data_ptr<int32_t>() + flat.numel()),
            want)
            << (context ? "context" : "target") << " of mask " << m << ", g " << g;
      }
    }
  }

  testing::ScratchDir dir_;
  std::shared_ptr<absl::Notification> gate_ = std::make_shared<absl::Notification>();
  std::vector<std::unique_ptr<dataworker::DataworkerServer>> servers_;
  std::unique_ptr<DataClient> client_;
};

TEST_F(DataClientTest, RankOneOfTwoGetsItsBatchesInOrder) {
  const std::string a = StartDataworker(/*world_size=*/2);
  DataClientOptions o = Options({a}, /*rank=*/1, /*world_size=*/2);
  o.start_step = 2;
  StartClient(o);
  for (int64_t step = 2; step < 10; ++step) {
    ASSERT_EQ(client_->next_step(), step);
    ASSERT_OK_AND_ASSIGN(StepBatch b, client_->Next());
    ExpectBatch(b, step, 1, 2);
    EXPECT_EQ(b.source, a);
  }
  const DataClientStats stats = client_->stats();
  EXPECT_EQ(stats.batches, 8);
  EXPECT_EQ(stats.duplicates, 0);
  EXPECT_GE(stats.bytes, 8 * 2 * 8 * 48);
}

TEST_F(DataClientTest, TwoStreamsCarryingTheSameBatchesAreDeduplicated) {
  // Both dataworkers produce every g of the rank: each g arrives twice. Production starts once
  // both streams are open, so both start at g = 0.
  const std::string a = StartDataworker(2, /*gated=*/true), b = StartDataworker(2, true);
  StartClient(Options({a, b}, /*rank=*/0, /*world_size=*/2));
  ASSERT_TRUE(dataworker::WaitUntil([&] {
    return servers_[0]->service().active_streams() == 1 &&
           servers_[1]->service().active_streams() == 1;
  }));
  gate_->Notify();
  for (int64_t step = 0; step < 8; ++step) {
    ASSERT_OK_AND_ASSIGN(StepBatch got, client_->Next());
    ExpectBatch(got, step, 0, 2);
  }
  // Every consumed g came from both streams, so at least 8 copies are dropped in the end.
  EXPECT_TRUE(dataworker::WaitUntil([&] { return client_->stats().duplicates >= 8; }))
      << client_->stats().duplicates;
  ASSERT_OK_AND_ASSIGN(StepBatch got, client_->Next());
  ExpectBatch(got, 8, 0, 2);
}

TEST_F(DataClientTest, ABrokenStreamContinuesOnTheNextDataworker) {
  const std::string a = StartDataworker(2), b = StartDataworker(2);
  DataClientOptions o = Options({a, b}, /*rank=*/1, /*world_size=*/2);
  o.streams = 1;  // failover: one stream at a time
  StartClient(o);
  int64_t step = 0;
  for (; step < 3; ++step) {
    ASSERT_OK_AND_ASSIGN(StepBatch got, client_->Next());
    ExpectBatch(got, step, 1, 2);
    EXPECT_EQ(got.source, a);
  }
  servers_[0]->Stop();
  // What the first dataworker sent before it stopped (in transport buffers, within flow-control
  // windows) comes first, then the second one's stream continues from the next needed g.
  std::string source;
  for (; step < 5000 && source != b; ++step) {
    ASSERT_OK_AND_ASSIGN(StepBatch got, client_->Next());
    ExpectBatch(got, step, 1, 2);
    source = got.source;
  }
  EXPECT_EQ(source, b);
  for (const int64_t stop = step + 3; step < stop; ++step) {
    ASSERT_OK_AND_ASSIGN(StepBatch got, client_->Next());
    ExpectBatch(got, step, 1, 2);
    EXPECT_EQ(got.source, b);
  }
  EXPECT_GE(client_->stats().reconnects, 1);
}

TEST_F(DataClientTest, AnAddedDataworkerGetsAStreamOfItsOwn) {
  const std::string a = StartDataworker(2);
  StartClient(Options({a}, /*rank=*/0, /*world_size=*/2));
  int64_t step = 0;
  for (; step < 2; ++step) {
    ASSERT_OK_AND_ASSIGN(StepBatch got, client_->Next());
    ExpectBatch(got, step, 0, 2);
    EXPECT_EQ(got.source, a);
  }
  servers_[0]->Stop();
  const std::string b = StartDataworker(2);
  client_->AddAddress(a);  // already read: ignored
  client_->AddAddress(b);
  // What the first dataworker sent before it stopped comes first, then the new stream's.
  std::string source;
  for (; step < 5000 && source != b; ++step) {
    ASSERT_OK_AND_ASSIGN(StepBatch got, client_->Next());
    ExpectBatch(got, step, 0, 2);
    source = got.source;
  }
  EXPECT_EQ(source, b);
  for (const int64_t stop = step + 3; step < stop; ++step) {
    ASSERT_OK_AND_ASSIGN(StepBatch got, client_->Next());
    ExpectBatch(got, step, 0, 2);
  }
}

TEST_F(DataClientTest, AHeaderThatDoesNotMatchTheModelIsAClearError) {
  const std::string a = StartDataworker(1);
  DataClientOptions o = Options({a}, 0, 1);
  o.num_tokens = 16;
  StartClient(o);
  EXPECT_THAT(client_->Next(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("num_tokens 8, the model takes 16")));
  // The error stays: no later batch is returned.
  EXPECT_THAT(client_->Next(), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

TEST_F(DataClientTest, ABatchOfAnotherRankIsAnError) {
  // The dataworker serves rank 1 of M = 2 (g = 1, 3, 5, ...) to a client that is rank 1 of 3:
  // g = 1 is its step 0, g = 3 belongs to rank 0 of 3.
  const std::string a = StartDataworker(2);
  StartClient(Options({a}, /*rank=*/1, /*world_size=*/3));
  ASSERT_OK_AND_ASSIGN(StepBatch first, client_->Next());
  EXPECT_EQ(first.global_index, 1);
  EXPECT_THAT(client_->Next(), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("batch g 3: not a batch of rank 1 of 3")));
}

TEST_F(DataClientTest, AnotherJobIsRefusedWithoutRetrying) {
  const std::string a = StartDataworker(1);
  DataClientOptions o = Options({a}, 0, 1);
  o.job_id = "job-b";
  StartClient(o);
  EXPECT_THAT(client_->Next(), StatusIs(absl::StatusCode::kNotFound, HasSubstr(a)));
}

TEST_F(DataClientTest, GivesUpWhenNoDataworkerAnswers) {
  // A port that was free a moment ago: nothing listens there.
  const std::string a = StartDataworker(1);
  servers_[0]->Stop();
  DataClientOptions o = Options({a}, 0, 1);
  o.reconnect_deadline = absl::Milliseconds(200);
  StartClient(o);
  EXPECT_THAT(client_->Next(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no dataworker delivered")));
}

TEST_F(DataClientTest, StopEndsAWaitingNext) {
  const std::string a = StartDataworker(1);
  servers_[0]->Stop();
  StartClient(Options({a}, 0, 1));
  absl::Status waited;
  std::thread consumer([&] { waited = client_->Next().status(); });
  client_->Stop();
  consumer.join();
  EXPECT_THAT(waited, StatusIs(absl::StatusCode::kCancelled, _));
}

TEST(DataClientOptionsTest, RejectsOptionsThatCannotWork) {
  DataClientOptions o;
  o.job_id = "j";
  o.addresses = {"127.0.0.1:1"};
  o.batch_size = 1;
  o.num_tokens = 8;
  o.token_bytes = 3;
  o.mask_configs = 1;
  EXPECT_OK(DataClient::Create(o).status());
  DataClientOptions bad = o;
  bad.rank = 2;
  bad.world_size = 2;
  EXPECT_THAT(DataClient::Create(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rank 2 outside [0, 2)")));
  bad = o;
  bad.reorder_batches = 0;
  EXPECT_THAT(DataClient::Create(bad), StatusIs(absl::StatusCode::kInvalidArgument, _));
  bad = o;
  bad.addresses.clear();
  EXPECT_THAT(DataClient::Create(bad), StatusIs(absl::StatusCode::kInvalidArgument, _));
}

}  // namespace
}  // namespace vjepa::trainer
