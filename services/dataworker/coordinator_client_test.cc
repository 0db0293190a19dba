// The dataworker against a fake coordinator (an in-process WorkerService that records calls):
// registration, heartbeats, re-registration, leases streamed to a trainer, quarantine reports,
// UNIMPLEMENTED leasing, and leases handed back on Stop.
#include "services/dataworker/coordinator_client.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/dataworker/dataworker_server.h"
#include "services/dataworker/fake_coordinator.h"
#include "services/dataworker/stream_client.h"
#include "services/dataworker/synthetic_producer.h"
#include "services/dataworker/test_util.h"
#include "tests/test_cluster.h"

namespace vjepa::dataworker {
namespace {

using ::testing::Contains;
using ::testing::Each;
using ::testing::IsSupersetOf;
using ::testing::Not;

constexpr char kSpec[] = "name: t\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\n";

v1::BatchLease Lease(int64_t g, int64_t nb = 10) {
  v1::BatchLease l;
  l.set_lease_id(absl::StrCat("l", g));
  l.set_job_id("job-l");
  l.set_generation(0);
  l.set_global_index(g);
  l.set_epoch(g / nb);
  l.set_batch_index(g % nb);
  l.set_rank(0);
  return l;
}

class CoordinatorClientTest : public ::testing::Test {
 protected:
  void StartWorker(int k = 2, int threads = 2, int max_leases = 0,
                   SyntheticOptions synthetic = Synthetic()) {
    dir_.Write("tokens", testing::TestTokenFile());
    factory_ = std::make_shared<SyntheticFactory>(synthetic);
    DataworkerConfig config;
    config.auth_tokens = dir_.File("tokens");
    config.service.threads = threads;
    config.service.stream_buffer_batches = k;
    config.service.max_leases = max_leases;
    config.coordinator.address = coordinator_.address();
    config.coordinator.token = testing::kWorkerToken;
    config.coordinator.name = "dw-test";
    config.coordinator.lease_poll = absl::Milliseconds(20);
    config.coordinator.unimplemented_poll = absl::Milliseconds(50);
    config.coordinator.rpc_timeout = absl::Seconds(10);
    config.coordinator.incarnation_clock = [] { return int64_t{1000}; };
    config.stop_grace = absl::Seconds(1);
    ASSERT_OK_AND_ASSIGN(worker_, DataworkerServer::Create(config, factory_));
    ASSERT_OK(worker_->Start());
    ASSERT_OK_AND_ASSIGN(channel_, DataChannel(absl::StrCat("127.0.0.1:", worker_->BoundPort())));
  }
  void TearDown() override {
    if (worker_) worker_->Stop();
  }
  static SyntheticOptions Synthetic() {
    SyntheticOptions synthetic;
    synthetic.batches_per_epoch = 10;
    return synthetic;
  }
  static v1::StreamBatchesRequest Request(int64_t from = 0) {
    v1::StreamBatchesRequest r;
    r.set_job_id("job-l");
    r.set_from_global_index(from);
    return r;
  }

  testing::ScratchDir dir_;
  FakeCoordinator coordinator_;
  std::shared_ptr<SyntheticFactory> factory_;
  std::unique_ptr<DataworkerServer> worker_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(CoordinatorClientTest, RegistersHeartbeatsAndRegistersAgainWhenDeclaredLost) {
  coordinator_.SetLeasesUnimplemented(true);
  StartWorker();
  auto regs = coordinator_.registrations();
  ASSERT_EQ(regs.size(), 1u);
  EXPECT_EQ(regs[0].name(), "dw-test");
  EXPECT_EQ(regs[0].kind(), v1::DATAWORKER);
  EXPECT_EQ(regs[0].incarnation(), 1000);
  EXPECT_EQ(regs[0].advertise_address(), absl::StrCat("127.0.0.1:", worker_->BoundPort()));
  EXPECT_EQ(regs[0].cpus(), 2);
  EXPECT_TRUE(WaitUntil([&] { return coordinator_.heartbeats() >= 2; }));

  coordinator_.FailNextHeartbeat();
  EXPECT_TRUE(WaitUntil([&] { return coordinator_.registrations().size() == 2; }));
  regs = coordinator_.registrations();
  EXPECT_EQ(regs[1].name(), "dw-test");
  EXPECT_EQ(regs[1].incarnation(), 1001);  // higher than the lost one
  const int before = coordinator_.heartbeats();
  EXPECT_TRUE(WaitUntil([&] { return coordinator_.heartbeats() >= before + 2; }));
  EXPECT_EQ(worker_->coordinator()->worker_id(), "w-2");
  // Every call carried the worker token.
  EXPECT_THAT(coordinator_.tokens(), Each(std::string("Bearer ") + testing::kWorkerToken));
}

TEST_F(CoordinatorClientTest, UnimplementedLeasingIsNoLeasesYet) {
  coordinator_.SetLeasesUnimplemented(true);
  StartWorker();
  EXPECT_TRUE(WaitUntil([&] { return coordinator_.lease_calls().size() >= 3; }));
  EXPECT_TRUE(WaitUntil([&] { return coordinator_.heartbeats() >= 3; }));
  EXPECT_EQ(worker_->service().held_leases(), 0);
  // Once the ledger answers, leases flow.
  coordinator_.AddLeases({Lease(0)}, kSpec);
  coordinator_.SetLeasesUnimplemented(false);
  BatchStreamReader reader(channel_, testing::kWorkerToken, Request());
  ASSERT_OK_AND_ASSIGN(ReceivedBatch batch, reader.Next());
  EXPECT_EQ(batch.header.lease_id(), "l0");
}

TEST_F(CoordinatorClientTest, LeasedBatchesAreStreamedAndBadVideosReported) {
  coordinator_.AddLeases({Lease(0), Lease(1), Lease(2), Lease(3)}, kSpec);
  StartWorker();
  BatchStreamReader reader(channel_, testing::kWorkerToken, Request());
  for (int64_t g = 0; g < 4; ++g) {
    ASSERT_OK_AND_ASSIGN(ReceivedBatch batch, reader.Next());
    EXPECT_EQ(batch.header.global_index(), g);
    EXPECT_EQ(batch.header.lease_id(), absl::StrCat("l", g));
    EXPECT_EQ(batch.header.epoch(), 0);
    EXPECT_EQ(batch.header.batch_index(), g);
  }
  // Asked with its free capacity, never more.
  for (const auto& call : coordinator_.lease_calls()) {
    EXPECT_EQ(call.worker_id(), "w-1");
    EXPECT_GE(call.max_batches(), 0);
    EXPECT_LE(call.max_batches(), 2 * 2 * 2);
  }

  auto producer = factory_->producer("job-l");
  ASSERT_NE(producer, nullptr);
  producer->EmitQuarantine({5, "clips/bad.mp4", BadVideoReason::kDecodeError, "packet 12"});
  ASSERT_TRUE(WaitUntil([&] {
    for (const auto& r : coordinator_.reports()) {
      if (r.quarantined_size() > 0) return true;
    }
    return false;
  }));
  bool identity = false;
  for (const auto& r : coordinator_.reports()) {
    EXPECT_EQ(r.worker_id(), "w-1");
    EXPECT_EQ(r.job_id(), "job-l");
    if (r.dataset_size() > 0) {
      identity = true;
      EXPECT_EQ(r.dataset_size(), 20);
      EXPECT_EQ(r.recipe_version(), "synthetic-1");
    }
    if (r.quarantined_size() > 0) {
      EXPECT_EQ(r.quarantined(0).sample(), 5);
      EXPECT_EQ(r.quarantined(0).path(), "clips/bad.mp4");
      EXPECT_EQ(r.quarantined(0).reason(), "decode_error");
      EXPECT_EQ(r.quarantined(0).detail(), "packet 12");
    }
  }
  EXPECT_TRUE(identity);
  EXPECT_EQ(MetricValue(worker_->registry(),
                        "vjepa_dataworker_bad_videos_total{reason=\"decode_error\"}"),
            1);
}

TEST_F(CoordinatorClientTest, StopHandsUndeliveredLeasesBack) {
  constexpr int kLeases = 12;
  std::vector<v1::BatchLease> leases;
  for (int64_t g = 0; g < kLeases; ++g) leases.push_back(Lease(g, 20));
  coordinator_.AddLeases(leases, kSpec);
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 20;
  synthetic.batch_size = 4;
  synthetic.num_tokens = 1024;
  synthetic.token_bytes = 1024;  // 4 MiB batches: the transport cannot take them all
  StartWorker(/*k=*/1, /*threads=*/1, /*max_leases=*/16, synthetic);
  BatchStreamReader reader(channel_, testing::kWorkerToken, Request());
  ASSERT_OK_AND_ASSIGN(ReceivedBatch first, reader.Next());
  EXPECT_EQ(first.header.lease_id(), "l0");
  worker_->Stop();  // the trainer still holds its stream open, reading nothing more
  std::vector<v1::LeaseBatchesRequest> calls = coordinator_.lease_calls();
  ASSERT_FALSE(calls.empty());
  const v1::LeaseBatchesRequest& last = calls.back();
  EXPECT_EQ(last.max_batches(), 0);
  std::vector<std::string> returned(last.returned_lease_ids().begin(),
                                    last.returned_lease_ids().end());
  // Every lease was either written completely to the stream or handed back, never both.
  const double sent = MetricValue(worker_->registry(), "vjepa_dataworker_batches_sent_total");
  EXPECT_EQ(sent + static_cast<double>(returned.size()), kLeases)
      << sent << " sent, " << returned.size() << " returned";
  EXPECT_THAT(returned, Not(Contains("l0")));
  // The buffer holds one batch and the transport a few MiB: the last leases were never sent.
  EXPECT_THAT(returned, IsSupersetOf({"l9", "l10", "l11"}));
  EXPECT_EQ(MetricValue(worker_->registry(), "vjepa_dataworker_leases_returned_total"),
            static_cast<double>(returned.size()));
}

}  // namespace
}  // namespace vjepa::dataworker
