// Probe jobs in coordinator mode, in process: a CoordinatorSession against the fake coordinator
// (FakeTrainerCoordinator) and a fake DataService serving synthetic labelled probe batches whose
// classes are separable; the encoder comes from a nano checkpoint made here. Also
// checkpoint.initial: the step-0 checkpoint of a TrainingRun holds the untrained weights.
#include <torch/torch.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/spec/job_spec.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/service/coordinator_session.h"
#include "services/trainer/service/fake_trainer_coordinator.h"
#include "services/trainer/service/trainer_config.h"
#include "services/trainer/service/trainer_metrics.h"
#include "services/trainer/service/training_run.h"
#include "services/trainer/vjepa/checkpointing.h"
#include "services/trainer/vjepa/trainer.h"
#include "vjepa/v1/data.grpc.pb.h"

namespace vjepa::trainer {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kJob[] = "probe-job";
constexpr int64_t kSegments = 2;
constexpr int64_t kViews = 2;
constexpr int64_t kBatch = 4;
constexpr int64_t kTrainSamples = 10;  // batches of 4, 4, 2
constexpr int64_t kValSamples = 6;     // batches of 4, 2

// Serves the given messages of batch g = from_global_index .. end, then holds the stream open
// until the client cancels it (a dataworker waiting for its next lease).
class FakeDataService final : public v1::DataService::Service {
 public:
  explicit FakeDataService(std::vector<std::vector<v1::BatchMessage>> batches)
      : batches_(std::move(batches)) {}

  grpc::Status StreamBatches(grpc::ServerContext* context, const v1::StreamBatchesRequest* request,
                             grpc::ServerWriter<v1::BatchMessage>* writer) override {
    for (int64_t g = std::max<int64_t>(0, request->from_global_index());
         g < static_cast<int64_t>(batches_.size()); ++g) {
      for (const v1::BatchMessage& m : batches_[static_cast<size_t>(g)]) {
        if (!writer->Write(m)) return grpc::Status::CANCELLED;
      }
    }
    while (!context->IsCancelled()) absl::SleepFor(absl::Milliseconds(10));
    return grpc::Status::CANCELLED;
  }

 private:
  const std::vector<std::vector<v1::BatchMessage>> batches_;
};

class FakeDataworker {
 public:
  explicit FakeDataworker(std::vector<std::vector<v1::BatchMessage>> batches)
      : service_(std::move(batches)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }
  ~FakeDataworker() { server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2))); }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }

 private:
  FakeDataService service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

// A probe batch of `labels` (split "train" or "val"): every clip of a class-0 sample is dark,
// of a class-1 sample bright, with a little noise.
std::vector<v1::BatchMessage> ProbeBatch(int64_t g, int64_t total, const std::string& split,
                                         const std::vector<int64_t>& labels, int64_t num_tokens,
                                         int64_t token_bytes) {
  std::vector<v1::BatchMessage> out(1);
  v1::BatchHeader& h = *out[0].mutable_header();
  h.set_job_id(kJob);
  h.set_generation(1);
  h.set_global_index(g);
  h.set_batch_index(g);
  h.set_batch_size(static_cast<int>(labels.size()));
  h.set_num_tokens(static_cast<int>(num_tokens));
  h.set_token_bytes(static_cast<int>(token_bytes));
  h.set_segments(kSegments);
  h.set_views(kViews);
  h.set_split(split);
  h.set_total_batches(total);
  for (const int64_t label : labels) h.add_labels(label);
  int clip = 0;
  for (const int64_t label : labels) {
    for (int64_t c = 0; c < kSegments * kViews; ++c) {
      const torch::Tensor noise = torch::randint(0, 30, {num_tokens * token_bytes}, torch::kUInt8) +
                                  static_cast<uint8_t>(label == 0 ? 20 : 200);
      v1::BatchMessage m;
      m.mutable_clip()->set_sample(clip++);
      m.mutable_clip()->set_tokens(
          std::string(reinterpret_cast<const char*>(noise.data_ptr<uint8_t>()),
                      static_cast<size_t>(noise.numel())));
      out.push_back(std::move(m));
    }
  }
  return out;
}

// The batches of a probe job: the train split then the val split in batches of kBatch.
std::vector<std::vector<v1::BatchMessage>> ProbeBatches(int64_t num_tokens, int64_t token_bytes) {
  torch::manual_seed(3);
  const int64_t train_batches = (kTrainSamples + kBatch - 1) / kBatch;
  const int64_t total = train_batches + (kValSamples + kBatch - 1) / kBatch;
  std::vector<std::vector<v1::BatchMessage>> out;
  for (const auto& [split, samples] : std::vector<std::pair<std::string, int64_t>>{
           {"train", kTrainSamples}, {"val", kValSamples}}) {
    for (int64_t start = 0; start < samples; start += kBatch) {
      std::vector<int64_t> labels;
      for (int64_t i = start; i < std::min(samples, start + kBatch); ++i) labels.push_back(i % 2);
      out.push_back(ProbeBatch(static_cast<int64_t>(out.size()), total, split, labels, num_tokens,
                               token_bytes));
    }
  }
  return out;
}

// A nano pretrain spec's freshly initialised model as a checkpoint.
std::string MakeCheckpoint(const std::string& model_yaml, int64_t seed) {
  const std::string yaml = absl::StrCat("name: pre\nmodel: ", model_yaml,
                                        "\ndataset: {manifest: m.txt}\nseed: ", seed, "\n");
  spec::JobSpec spec = *spec::ParseJobSpec(yaml);
  jepa::TrainerConfig config = *TrainerConfigFromSpec(spec);
  torch::manual_seed(static_cast<uint64_t>(seed));
  std::unique_ptr<jepa::Trainer> trainer = std::move(jepa::Trainer::Create(config)).value();
  jepa::CheckpointInfo info;
  info.spec = yaml;
  testing::ScratchDir dir;
  const std::string path = dir.File("ckpt.safetensors");
  EXPECT_TRUE(checkpoint::SaveCheckpoint(path, jepa::MakeCheckpoint(*trainer, info)).ok());
  return testing::ReadFile(path);
}

std::string ProbeSpec(const std::string& pooling) {
  return absl::StrCat(
      "name: probe-test\n"
      "kind: probe\n"
      "seed: 5\n"
      "model: {preset: nano}\n"
      "dataset: {manifest: train.txt}\n"
      "resources: {trainers: 1}\n"
      "probe: {checkpoint: pre, num_classes: 2, pooling: ",
      pooling, ", epochs: 15, lr: 0.003, batch_size: ", kBatch, ", segments: ", kSegments,
      ", views: ", kViews, ", val_manifest: val.txt}\n");
}

class ProbeRunTest : public ::testing::Test {
 protected:
  void SetUp() override { torch::set_num_threads(1); }
  void TearDown() override {
    if (session_ != nullptr) session_->Stop();
    if (thread_.joinable()) thread_.join();
  }

  // Runs a CoordinatorSession with `assignment` until `done` holds for the coordinator's reports
  // (120 s at most).
  void RunUntil(const v1::TrainerAssignment& assignment,
                const std::function<bool(const std::vector<v1::ReportProgressRequest>&)>& done) {
    coordinator_.SetAssignment(assignment);
    CoordinatorSessionOptions o;
    o.address = coordinator_.address();
    o.token = "worker-token";
    o.name = "trainer-0";
    o.advertise_address = "127.0.0.1";
    o.work_dir = dir_.File("work");
    o.torch_threads = 1;
    o.data_deadline = absl::Seconds(20);
    o.incarnation_clock = [] { return int64_t{1}; };
    session_ = std::make_unique<CoordinatorSession>(o, &metrics_);
    thread_ = std::thread([this] { EXPECT_OK(session_->Run()); });
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    while (!done(coordinator_.reports()) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    session_->Stop();
    thread_.join();
  }

  v1::TrainerAssignment Assignment(const std::string& spec, const std::string& dataworker) {
    v1::TrainerAssignment a;
    a.set_job_id(kJob);
    a.set_generation(1);
    a.set_rank(0);
    a.set_world_size(1);
    a.set_spec_yaml(spec);
    a.add_dataworkers(dataworker);
    a.set_probe_checkpoint_id("pre/0");
    return a;
  }

  testing::ScratchDir dir_;
  metrics::Registry registry_;
  TrainerMetrics metrics_{registry_};
  FakeTrainerCoordinator coordinator_;
  std::unique_ptr<CoordinatorSession> session_;
  std::thread thread_;
};

bool HasResults(const std::vector<v1::ReportProgressRequest>& reports) {
  return std::any_of(reports.begin(), reports.end(),
                     [](const v1::ReportProgressRequest& r) { return r.probe_results_size() > 0; });
}

bool HasFailureReport(const std::vector<v1::ReportProgressRequest>& reports) {
  return std::any_of(reports.begin(), reports.end(),
                     [](const v1::ReportProgressRequest& r) { return !r.failure().empty(); });
}

// The run ended: results or a failure.
bool Ended(const std::vector<v1::ReportProgressRequest>& reports) {
  return HasResults(reports) || HasFailureReport(reports);
}

TEST_F(ProbeRunTest, BothPoolingsLearnASeparableSet) {
  ASSERT_OK(spec::ParseJobSpec(ProbeSpec("both")).status());
  coordinator_.AddCheckpoint("pre", 0, MakeCheckpoint("{preset: nano}", 11));
  // nano: 2·2·2 tokens of 2·16·16·3 values.
  FakeDataworker data(ProbeBatches(8, 1536));
  RunUntil(Assignment(ProbeSpec("both"), data.address()), Ended);

  const std::vector<v1::ReportProgressRequest> reports = coordinator_.reports();
  ASSERT_TRUE(HasResults(reports));
  EXPECT_FALSE(HasFailureReport(reports));
  ASSERT_EQ(coordinator_.pulls().size(), 1u);
  EXPECT_EQ(coordinator_.pulls()[0].job_id(), "pre");
  std::vector<int64_t> delivered;
  std::set<std::string> phases;
  for (const v1::ReportProgressRequest& r : reports) {
    delivered.insert(delivered.end(), r.delivered().begin(), r.delivered().end());
    phases.insert(r.phase());
    if (r.phase() == "features") {
      EXPECT_GT(r.step(), 0);
    }
  }
  EXPECT_THAT(delivered, ElementsAre(0, 1, 2, 3, 4));
  EXPECT_TRUE(phases.count("features") && phases.count("probe")) << phases.size();
  const v1::ReportProgressRequest& last = reports.back();
  ASSERT_EQ(last.probe_results_size(), 2);
  EXPECT_EQ(last.step(), 5);
  EXPECT_EQ(last.probe_results(0).pooling(), "attentive");
  EXPECT_EQ(last.probe_results(1).pooling(), "average");
  for (const v1::ProbeResult& r : last.probe_results()) {
    SCOPED_TRACE(r.pooling());
    EXPECT_EQ(r.evaluated_on(), "val");
    EXPECT_EQ(r.samples(), kValSamples);
    EXPECT_GE(r.top1(), 0.8);
    EXPECT_GE(r.train_top1(), 0.8);
    ASSERT_EQ(r.per_class_samples_size(), 2);
    ASSERT_EQ(r.per_class_top1_size(), 2);
    EXPECT_EQ(r.per_class_samples(0) + r.per_class_samples(1), kValSamples);
    EXPECT_EQ(r.per_class_samples(0), kValSamples / 2);
    // 15 epochs of 3 updates (10 samples in batches of 4).
    EXPECT_EQ(r.steps(), 45);
    EXPECT_GE(r.final_loss(), 0.0);
    EXPECT_LT(r.final_loss(), 0.5);
  }
  EXPECT_THAT(metrics::Render(registry_),
              HasSubstr("vjepa_trainer_probe_top1{pooling=\"average\"}"));
}

TEST_F(ProbeRunTest, RefusesACheckpointOfAnotherModelShape) {
  // 8 frames where the probe's spec (nano) says 4.
  coordinator_.AddCheckpoint("pre", 0, MakeCheckpoint("{preset: nano, frames: 8}", 11));
  FakeDataworker data({});
  RunUntil(Assignment(ProbeSpec("average"), data.address()), Ended);

  const std::vector<v1::ReportProgressRequest> reports = coordinator_.reports();
  ASSERT_TRUE(HasFailureReport(reports));
  EXPECT_FALSE(HasResults(reports));
  std::string failure;
  for (const v1::ReportProgressRequest& r : reports) {
    if (!r.failure().empty()) failure = r.failure();
  }
  EXPECT_THAT(failure, HasSubstr("frames 8 (the spec's model.frames: 4)"));
}

TEST(InitialCheckpoint, HoldsTheFreshWeightsOfTheSeed) {
  torch::set_num_threads(1);
  testing::ScratchDir dir;
  const std::string yaml =
      "name: initial\nmodel: {preset: nano}\ndataset: {manifest: m.txt}\nseed: 9\n"
      "optim: {batch_size: 2, steps: 4}\ncheckpoint: {initial: true}\n";
  FakeDataworker data({});  // no batch: the step-0 checkpoint comes before the first one
  TrainingRunOptions o;
  o.spec = *spec::ParseJobSpec(yaml);
  o.spec_text = yaml;
  o.job_id = "initial";
  o.dataworkers = {data.address()};
  o.checkpoint_dir = dir.File("ckpt");
  std::vector<std::pair<std::string, int64_t>> written;
  TrainingRun* self = nullptr;
  o.on_checkpoint = [&](const std::string& path, int64_t step, bool final) {
    written.emplace_back(path, step);
    EXPECT_FALSE(final);
    self->RequestStop();
    return absl::OkStatus();
  };
  metrics::Registry registry;
  TrainerMetrics metrics(registry);
  TrainingRun run(o, &metrics);
  self = &run;
  ASSERT_OK_AND_ASSIGN(TrainingResult result, run.Run());
  EXPECT_TRUE(result.stopped);
  EXPECT_EQ(result.end_step, 0);
  ASSERT_EQ(written.size(), 1u);
  EXPECT_EQ(written[0].second, 0);
  EXPECT_EQ(written[0].first, CheckpointPath(dir.File("ckpt"), 0));

  core::StatusOr<checkpoint::TrainingCheckpoint> ckpt =
      checkpoint::LoadCheckpoint(written[0].first);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status().ToString();
  EXPECT_EQ(ckpt->step, 0);
  torch::manual_seed(9);
  std::unique_ptr<jepa::Trainer> fresh =
      std::move(jepa::Trainer::Create(*TrainerConfigFromSpec(o.spec))).value();
  std::map<std::string, torch::Tensor> saved;
  for (const auto& t : ckpt->encoder) saved[t.name] = t.tensor;
  ASSERT_FALSE(saved.empty());
  for (const auto& item : fresh->encoder()->named_parameters()) {
    ASSERT_TRUE(saved.count(item.key())) << item.key();
    EXPECT_TRUE(torch::equal(saved[item.key()], item.value())) << item.key();
  }
}

}  // namespace
}  // namespace vjepa::trainer
