// The stream logic with the synthetic producer: flow control, the standalone g sequence,
// generations, leases and their failures, quarantine reports. No sockets.
#include "services/dataworker/data_service.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "common/status/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/dataworker/synthetic_producer.h"
#include "services/dataworker/test_util.h"

namespace vjepa::dataworker {
namespace {

using ::testing::_;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;
using ::vjepa::testing::StatusIs;

constexpr char kSpec[] = "name: t\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\n";
constexpr char kProbeSpec[] =
    "name: p\nkind: probe\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\n"
    "probe: {checkpoint: x, num_classes: 3, val_manifest: val.csv}\n";

// A probe job's producer: the synthetic batches, and an identity that names a validation
// manifest of 7 videos.
class ProbeProducer : public SyntheticProducer {
 public:
  using SyntheticProducer::SyntheticProducer;
  DatasetIdentity identity() const override {
    DatasetIdentity id = SyntheticProducer::identity();
    id.val_size = 7;
    id.val_manifest_sha256 = std::string(64, 'c');
    return id;
  }
};

class ProbeFactory : public ProducerFactory {
 public:
  explicit ProbeFactory(SyntheticOptions options) : options_(std::move(options)) {}
  absl::StatusOr<std::shared_ptr<BatchProducer>> Create(const std::string& job_id,
                                                        const spec::JobSpec& spec) override {
    return std::shared_ptr<BatchProducer>(std::make_shared<ProbeProducer>(options_));
  }

 private:
  const SyntheticOptions options_;
};

class RecordingSink : public ReportSink {
 public:
  void Report(v1::ReportProgressRequest report) override {
    absl::MutexLock lock(&mu_);
    reports_.push_back(std::move(report));
  }
  std::vector<v1::ReportProgressRequest> reports() const {
    absl::MutexLock lock(&mu_);
    return reports_;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<v1::ReportProgressRequest> reports_ ABSL_GUARDED_BY(mu_);
};

class DataServiceTest : public ::testing::Test {
 protected:
  void Make(DataServiceOptions options, SyntheticOptions synthetic = {}) {
    factory_ = std::make_shared<SyntheticFactory>(synthetic);
    MakeWith(std::move(options), factory_);
  }
  void MakeWith(DataServiceOptions options, std::shared_ptr<ProducerFactory> factory) {
    service_ = std::make_unique<DataService>(std::move(options), std::move(factory), &metrics_);
    service_->SetReportSink(&sink_);
    ASSERT_OK(service_->Start());
  }
  static DataServiceOptions Standalone(int world_size, int k = 2, int threads = 2) {
    DataServiceOptions o;
    o.threads = threads;
    o.stream_buffer_batches = k;
    o.standalone = StandaloneJob{"job-a", spec::JobSpec{}, world_size};
    return o;
  }
  static v1::StreamBatchesRequest Request(const std::string& job, int64_t generation, int rank,
                                          int64_t from) {
    v1::StreamBatchesRequest r;
    r.set_job_id(job);
    r.set_generation(generation);
    r.set_rank(rank);
    r.set_from_global_index(from);
    return r;
  }
  static v1::BatchLease Lease(const std::string& id, int64_t g, int64_t nb, int rank = 0,
                              int64_t generation = 0) {
    v1::BatchLease l;
    l.set_lease_id(id);
    l.set_job_id("job-l");
    l.set_generation(generation);
    l.set_global_index(g);
    l.set_epoch(g / nb);
    l.set_batch_index(g % nb);
    l.set_rank(rank);
    return l;
  }

  metrics::Registry registry_;
  DataworkerMetrics metrics_{registry_};
  RecordingSink sink_;
  std::shared_ptr<SyntheticFactory> factory_;
  std::unique_ptr<DataService> service_;
};

TEST_F(DataServiceTest, BufferBoundHoldsWhenTheConsumerStopsReading) {
  constexpr int kK = 2;
  Make(Standalone(1, kK, /*threads=*/3));
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-a", 0, 0, 0)));
  int consumed = 0;
  for (; consumed < 5; ++consumed) ASSERT_NE(TakeBatch(*stream), nullptr);
  auto producer = factory_->producer("job-a");
  ASSERT_NE(producer, nullptr);
  // With nobody reading, production fills the buffer to K and stops there.
  EXPECT_TRUE(WaitUntil([&] { return service_->buffered_batches() == kK; }));
  for (int i = 0; i < 50; ++i) {
    EXPECT_LE(producer->produced(), consumed + kK);
    EXPECT_LE(service_->buffered_batches(), kK);
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(producer->produced(), consumed + kK);
  EXPECT_EQ(MetricValue(registry_, "vjepa_dataworker_stream_buffer_batches"), kK);
  // Reading again resumes production.
  ASSERT_NE(TakeBatch(*stream), nullptr);
  EXPECT_TRUE(WaitUntil([&] { return producer->produced() == consumed + 1 + kK; }));
}

TEST_F(DataServiceTest, StandaloneStreamsProduceEveryMthBatchFromTheirStart) {
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 5;
  Make(Standalone(/*world_size=*/2), synthetic);
  ASSERT_OK_AND_ASSIGN(auto rank0, service_->OpenStream(Request("job-a", 0, 0, 0)));
  ASSERT_OK_AND_ASSIGN(auto rank1, service_->OpenStream(Request("job-a", 0, 1, 7)));
  std::vector<int64_t> g0, g1;
  for (int i = 0; i < 5; ++i) {
    auto b = TakeBatch(*rank0);
    ASSERT_NE(b, nullptr);
    g0.push_back(b->header.global_index());
    EXPECT_EQ(b->header.epoch(), b->header.global_index() / 5);
    EXPECT_EQ(b->header.batch_index(), b->header.global_index() % 5);
    EXPECT_EQ(b->header.job_id(), "job-a");
    EXPECT_EQ(b->header.generation(), 0);
    // The bytes are the producer's for (epoch, batch).
    ASSERT_EQ(b->clips.size(), 2u);
    EXPECT_EQ(*b->clips[1],
              SyntheticClip(synthetic, b->header.epoch(), b->header.batch_index(), 1));
  }
  for (int i = 0; i < 3; ++i) {
    auto b = TakeBatch(*rank1);
    ASSERT_NE(b, nullptr);
    g1.push_back(b->header.global_index());
  }
  EXPECT_THAT(g0, ElementsAre(0, 2, 4, 6, 8));
  EXPECT_THAT(g1, ElementsAre(7, 9, 11));
}

TEST_F(DataServiceTest, StandaloneRefusesOtherJobsAndRanksOutsideTheWorld) {
  Make(Standalone(2));
  EXPECT_THAT(service_->OpenStream(Request("job-b", 0, 0, 0)).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("job-b")));
  EXPECT_THAT(service_->OpenStream(Request("job-a", 0, 2, 0)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rank 2")));
  EXPECT_THAT(service_->OpenStream(Request("", 0, 0, 0)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, _));
  EXPECT_THAT(service_->OpenStream(Request("job-a", 0, 0, -1)).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, _));
}

TEST_F(DataServiceTest, StaleGenerationsAreRefusedAndNewerOnesEndOlderStreams) {
  Make(Standalone(1));
  ASSERT_OK_AND_ASSIGN(auto gen2, service_->OpenStream(Request("job-a", 2, 0, 0)));
  ASSERT_NE(TakeBatch(*gen2), nullptr);
  EXPECT_THAT(service_->OpenStream(Request("job-a", 1, 0, 0)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stale")));
  ASSERT_OK_AND_ASSIGN(auto gen3, service_->OpenStream(Request("job-a", 3, 0, 0)));
  absl::Status end;
  EXPECT_EQ(TakeBatch(*gen2, &end), nullptr);
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr("generation 2 of job job-a is stale")));
  auto b = TakeBatch(*gen3);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->header.generation(), 3);
}

TEST_F(DataServiceTest, ANewerCallForTheSameStreamEndsTheOlderOne) {
  Make(Standalone(1));
  ASSERT_OK_AND_ASSIGN(auto first, service_->OpenStream(Request("job-a", 0, 0, 0)));
  ASSERT_NE(TakeBatch(*first), nullptr);
  ASSERT_OK_AND_ASSIGN(auto second, service_->OpenStream(Request("job-a", 0, 0, 4)));
  absl::Status end;
  EXPECT_EQ(TakeBatch(*first, &end), nullptr);
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kAborted, HasSubstr("replaced")));
  auto b = TakeBatch(*second);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->header.global_index(), 4);
  first.reset();  // closing the old call leaves the new one alone
  b = TakeBatch(*second);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->header.global_index(), 5);
}

TEST_F(DataServiceTest, CancelWakesAWaitingCall) {
  SyntheticOptions synthetic;
  auto gate = std::make_shared<absl::Notification>();
  synthetic.fail = [gate](int64_t, int64_t) {
    gate->WaitForNotification();  // production stalls until the end of the test
    return absl::OkStatus();
  };
  Make(Standalone(1), synthetic);
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-a", 0, 0, 0)));
  auto woke = std::make_shared<absl::Notification>();
  std::unique_ptr<ProducedBatch> batch;
  absl::Status end;
  ASSERT_EQ(stream->TakeNext(&batch, &end, [woke] { woke->Notify(); }),
            StreamHandle::NextResult::kWaiting);
  stream->Cancel();
  EXPECT_TRUE(woke->HasBeenNotified());
  EXPECT_EQ(stream->TakeNext(&batch, &end, [] {}), StreamHandle::NextResult::kEnded);
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kCancelled, _));
  gate->Notify();
}

TEST_F(DataServiceTest, StandaloneProductionFailureEndsTheStreamAtThatBatch) {
  SyntheticOptions synthetic;
  synthetic.fail = [](int64_t, int64_t batch) {
    return batch == 2 ? absl::DeadlineExceededError("decode took too long") : absl::OkStatus();
  };
  Make(Standalone(1, 2, 1), synthetic);
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-a", 0, 0, 0)));
  EXPECT_NE(TakeBatch(*stream), nullptr);
  EXPECT_NE(TakeBatch(*stream), nullptr);
  absl::Status end;
  EXPECT_EQ(TakeBatch(*stream, &end), nullptr);
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("batch g 2")));
}

// ---- Leases.

TEST_F(DataServiceTest, LeasesAreProducedForTheirStreamAndFailedLeasesHandedBack) {
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 10;
  synthetic.fail = [](int64_t, int64_t batch) {
    return batch == 1 ? absl::DeadlineExceededError("decode past its deadline") : absl::OkStatus();
  };
  DataServiceOptions options;
  options.max_leases = 8;
  Make(options, synthetic);
  EXPECT_EQ(service_->FreeLeaseCapacity(), 8);
  v1::LeaseBatchesResponse resp;
  resp.set_spec_yaml(kSpec);
  *resp.add_leases() = Lease("l0", 0, 10);
  *resp.add_leases() = Lease("l1", 1, 10);
  *resp.add_leases() = Lease("l2", 2, 10);
  service_->AddLeases(resp);
  EXPECT_LE(service_->FreeLeaseCapacity(), 6);
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-l", 0, 0, 0)));
  auto b0 = TakeBatch(*stream);
  auto b2 = TakeBatch(*stream);
  ASSERT_NE(b0, nullptr);
  ASSERT_NE(b2, nullptr);
  EXPECT_EQ(b0->header.lease_id(), "l0");
  EXPECT_EQ(b0->header.global_index(), 0);
  EXPECT_EQ(b2->header.lease_id(), "l2");
  EXPECT_EQ(b2->header.global_index(), 2);
  EXPECT_THAT(service_->TakeReturnedLeases(), ElementsAre("l1"));
  EXPECT_EQ(
      MetricValue(registry_, "vjepa_dataworker_leases_failed_total{reason=\"deadline_exceeded\"}"),
      1);
  EXPECT_EQ(MetricValue(registry_, "vjepa_dataworker_leases_received_total"), 3);
  // The identity of the job's dataset went to the coordinator once.
  auto reports = sink_.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].job_id(), "job-l");
  EXPECT_EQ(reports[0].dataset_size(), 20);
  EXPECT_EQ(reports[0].manifest_sha256(), std::string(64, 'a'));
}

TEST_F(DataServiceTest, LeasesOfAnotherDatasetOrAStaleGenerationAreNotProduced) {
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 10;
  Make(DataServiceOptions{}, synthetic);
  v1::LeaseBatchesResponse resp;
  resp.set_spec_yaml(kSpec);
  *resp.add_leases() = Lease("gen1", 0, 10, 0, /*generation=*/1);
  v1::BatchLease other = Lease("other", 1, 10, 0, 1);
  other.set_dataset_size(20);
  other.set_manifest_sha256(std::string(64, 'b'));
  *resp.add_leases() = other;
  *resp.add_leases() = Lease("gen0", 2, 10, 0, /*generation=*/0);
  service_->AddLeases(resp);
  EXPECT_THAT(service_->TakeReturnedLeases(), ElementsAre("other"));
  EXPECT_EQ(MetricValue(registry_, "vjepa_dataworker_leases_failed_total{reason=\"identity\"}"), 1);
  EXPECT_EQ(MetricValue(registry_, "vjepa_dataworker_leases_dropped_total{reason=\"stale\"}"), 1);
  EXPECT_THAT(service_->OpenStream(Request("job-l", 0, 0, 0)).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, _));
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-l", 1, 0, 0)));
  auto b = TakeBatch(*stream);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->header.lease_id(), "gen1");
}

TEST_F(DataServiceTest, ALeaseWithoutASpecOrWithABadSpecFails) {
  Make(DataServiceOptions{});
  v1::LeaseBatchesResponse resp;
  *resp.add_leases() = Lease("nospec", 0, 10);
  service_->AddLeases(resp);
  EXPECT_THAT(service_->TakeReturnedLeases(), ElementsAre("nospec"));
  resp.set_spec_yaml("name: t\nmodel: {preset: nonsense}\n");
  service_->AddLeases(resp);
  EXPECT_THAT(service_->TakeReturnedLeases(), ElementsAre("nospec"));
  EXPECT_EQ(MetricValue(registry_, "vjepa_dataworker_leases_failed_total{reason=\"job\"}"), 2);
  // A spec it cannot serve fails the job (deterministic), reported with the reason.
  auto reports = sink_.reports();
  ASSERT_FALSE(reports.empty());
  EXPECT_THAT(reports.back().failure(), HasSubstr("model.preset"));
}

TEST_F(DataServiceTest, ConsumedLeasesAreSkippedAndShutdownReturnsTheRest) {
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 10;
  DataServiceOptions options;
  options.stream_buffer_batches = 1;
  options.threads = 1;
  Make(options, synthetic);
  v1::LeaseBatchesResponse resp;
  resp.set_spec_yaml(kSpec);
  for (int g = 0; g < 6; ++g) *resp.add_leases() = Lease(absl::StrCat("l", g), g, 10);
  service_->AddLeases(resp);
  // The trainer already has g < 3.
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-l", 0, 0, 3)));
  auto b = TakeBatch(*stream);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->header.global_index(), 3);
  stream->Delivered(b->bytes());
  std::vector<std::string> back = service_->Shutdown();
  EXPECT_THAT(back, UnorderedElementsAre("l4", "l5"));
  EXPECT_EQ(service_->FreeLeaseCapacity(), 0);
  absl::Status end;
  EXPECT_EQ(TakeBatch(*stream, &end), nullptr);
  EXPECT_THAT(end, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("shutting down")));
}

TEST_F(DataServiceTest, AnAbandonedBatchIsProducedAgain) {
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 10;
  Make(DataServiceOptions{}, synthetic);
  v1::LeaseBatchesResponse resp;
  resp.set_spec_yaml(kSpec);
  *resp.add_leases() = Lease("l0", 0, 10);
  service_->AddLeases(resp);
  {
    ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-l", 0, 0, 0)));
    ASSERT_NE(TakeBatch(*stream), nullptr);
    stream->Abandoned();  // the write broke off
  }
  ASSERT_OK_AND_ASSIGN(auto again, service_->OpenStream(Request("job-l", 0, 0, 0)));
  auto b = TakeBatch(*again);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->header.lease_id(), "l0");
  EXPECT_EQ(factory_->producer("job-l")->produced(), 2);
}

// ---- Probe jobs.

TEST_F(DataServiceTest, StandaloneProbeStreamSendsEveryBatchOnceThenEndsOk) {
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 3;  // the probe plan's total
  ASSERT_OK_AND_ASSIGN(spec::JobSpec probe, spec::ParseJobSpec(kProbeSpec));
  DataServiceOptions options = Standalone(1);
  options.standalone->spec = probe;
  Make(options, synthetic);
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-a", 0, 0, 0)));
  std::vector<int64_t> gs;
  for (int i = 0; i < 3; ++i) {
    auto b = TakeBatch(*stream);
    ASSERT_NE(b, nullptr);
    gs.push_back(b->header.global_index());
    EXPECT_EQ(b->header.epoch(), 0);
    EXPECT_EQ(b->header.batch_index(), b->header.global_index());
  }
  EXPECT_THAT(gs, ElementsAre(0, 1, 2));
  absl::Status end = absl::UnknownError("not ended");
  EXPECT_EQ(TakeBatch(*stream, &end), nullptr);
  EXPECT_OK(end);
  EXPECT_EQ(factory_->producer("job-a")->produced(), 3);
  // A stream that starts past the end ends at once.
  ASSERT_OK_AND_ASSIGN(auto late, service_->OpenStream(Request("job-a", 0, 0, 3)));
  end = absl::UnknownError("not ended");
  EXPECT_EQ(TakeBatch(*late, &end), nullptr);
  EXPECT_OK(end);
}

TEST_F(DataServiceTest, ProbeIdentityReportNamesTheValidationManifest) {
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 10;
  MakeWith(DataServiceOptions{}, std::make_shared<ProbeFactory>(synthetic));
  v1::LeaseBatchesResponse resp;
  resp.set_spec_yaml(kProbeSpec);
  v1::BatchLease first = Lease("l0", 0, 10);
  first.set_epoch(0);
  first.set_batch_index(0);
  *resp.add_leases() = first;
  service_->AddLeases(resp);
  auto reports = sink_.reports();
  ASSERT_EQ(reports.size(), 1u);
  EXPECT_EQ(reports[0].job_id(), "job-l");
  EXPECT_EQ(reports[0].dataset_size(), 20);
  EXPECT_EQ(reports[0].manifest_sha256(), std::string(64, 'a'));
  EXPECT_EQ(reports[0].val_dataset_size(), 7);
  EXPECT_EQ(reports[0].val_manifest_sha256(), std::string(64, 'c'));
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-l", 0, 0, 0)));
  auto b = TakeBatch(*stream);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->header.lease_id(), "l0");
}

TEST_F(DataServiceTest, AProbeLeaseWithAnotherValidationManifestIsRefused) {
  SyntheticOptions synthetic;
  synthetic.batches_per_epoch = 10;
  MakeWith(DataServiceOptions{}, std::make_shared<ProbeFactory>(synthetic));
  // Probe leases: g, epoch 0, batch g, with the identity of both manifests.
  auto lease = [](const std::string& id, int64_t g, int64_t val_size, const std::string& val_sha) {
    v1::BatchLease l = Lease(id, g, 10);
    l.set_epoch(0);
    l.set_batch_index(g);
    l.set_dataset_size(20);
    l.set_manifest_sha256(std::string(64, 'a'));
    l.set_val_dataset_size(val_size);
    l.set_val_manifest_sha256(val_sha);
    return l;
  };
  v1::LeaseBatchesResponse resp;
  resp.set_spec_yaml(kProbeSpec);
  *resp.add_leases() = lease("good", 1, 7, std::string(64, 'c'));
  *resp.add_leases() = lease("other_sha", 2, 7, std::string(64, 'd'));
  *resp.add_leases() = lease("other_size", 3, 8, std::string(64, 'c'));
  *resp.add_leases() = lease("no_val", 4, 0, "");
  service_->AddLeases(resp);
  EXPECT_THAT(service_->TakeReturnedLeases(),
              UnorderedElementsAre("other_sha", "other_size", "no_val"));
  EXPECT_EQ(MetricValue(registry_, "vjepa_dataworker_leases_failed_total{reason=\"identity\"}"), 3);
  ASSERT_OK_AND_ASSIGN(auto stream, service_->OpenStream(Request("job-l", 0, 0, 0)));
  auto b = TakeBatch(*stream);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->header.lease_id(), "good");
  EXPECT_EQ(b->header.global_index(), 1);
  EXPECT_EQ(b->header.batch_index(), 1);
  EXPECT_EQ(b->header.epoch(), 0);
}

// ---- Quarantine.

TEST_F(DataServiceTest, QuarantinedVideosAreCountedOnceAndReported) {
  Make(Standalone(1));
  const std::string metrics = metrics::Render(registry_);
  for (BadVideoReason reason : AllBadVideoReasons()) {
    EXPECT_THAT(metrics, HasSubstr(absl::StrCat("vjepa_dataworker_bad_videos_total{reason=\"",
                                                std::string(BadVideoReasonName(reason)), "\"} 0")));
  }
  auto producer = factory_->producer("job-a");
  ASSERT_NE(producer, nullptr);
  QuarantinedVideo video{7, "videos/broken.mp4", BadVideoReason::kTruncated, "ends at 1 KiB"};
  producer->EmitQuarantine(video);
  producer->EmitQuarantine(video);  // once per video
  EXPECT_EQ(MetricValue(registry_, "vjepa_dataworker_bad_videos_total{reason=\"truncated\"}"), 1);
  std::vector<v1::ReportProgressRequest> reports = sink_.reports();
  ASSERT_EQ(reports.size(), 2u);  // the dataset identity, then the video
  ASSERT_EQ(reports[1].quarantined_size(), 1);
  EXPECT_EQ(reports[1].job_id(), "job-a");
  // The dataset is named, so the report counts even when it lands after the job ended.
  EXPECT_EQ(reports[1].manifest_sha256(), reports[0].manifest_sha256());
  EXPECT_FALSE(reports[1].manifest_sha256().empty());
  EXPECT_EQ(reports[1].quarantined(0).sample(), 7);
  EXPECT_EQ(reports[1].quarantined(0).path(), "videos/broken.mp4");
  EXPECT_EQ(reports[1].quarantined(0).reason(), "truncated");
  EXPECT_EQ(reports[1].quarantined(0).detail(), "ends at 1 KiB");
}

}  // namespace
}  // namespace vjepa::dataworker
