// The real producer of a probe job over generated clips: the batch plan across the train and
// validation manifests, the job's identity, and quarantine reports of validation rows.
#include "services/dataworker/builder_producer.h"

#include <filesystem>
#include <string>
#include <vector>

#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/dataworker/test_util.h"

namespace vjepa::dataworker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vjepa::testing::StatusIs;

constexpr char kTrain[] = "good.mp4 0\ngood.mp4 1\ngood.mp4 2\n";
constexpr char kVal[] = "good.mp4 1\nmissing.mp4 2\n";

spec::JobSpec ProbeSpec() {
  absl::StatusOr<spec::JobSpec> s = spec::ParseJobSpec(
      "name: p\nkind: probe\nmodel: {preset: nano}\ndataset: {manifest: train.txt}\n"
      "data: {frame_step: 2}\n"
      "probe: {checkpoint: x, num_classes: 3, batch_size: 2, segments: 1, views: 1, "
      "val_manifest: val.txt}\n");
  EXPECT_OK(s.status());
  return *s;
}

class BuilderProducerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.File("data"));
    ASSERT_TRUE(MakeTestVideo(dir_.File("data/good.mp4"), 64, 48, 40, 25, 10));
    dir_.Write("data/train.txt", kTrain);
    dir_.Write("data/val.txt", kVal);
    BuilderFactoryOptions options;
    options.data_roots = {dir_.File("data")};
    ASSERT_OK_AND_ASSIGN(factory_, BuilderProducerFactory::Create(options));
  }

  testing::ScratchDir dir_;
  std::shared_ptr<BuilderProducerFactory> factory_;
};

TEST_F(BuilderProducerTest, ProbeJobServesTrainThenValAndReportsValRowsAfterTheTrainRows) {
  ASSERT_OK_AND_ASSIGN(auto producer, factory_->Create("probe", ProbeSpec()));
  const DatasetIdentity id = producer->identity();
  EXPECT_EQ(id.size, 3);
  EXPECT_EQ(id.manifest_sha256, Sha256Hex(kTrain));
  EXPECT_EQ(id.val_size, 2);
  EXPECT_EQ(id.val_manifest_sha256, Sha256Hex(kVal));
  // B = 2: train rows {0, 1}, {2}; val rows {0, 1}.
  EXPECT_EQ(producer->batches_per_epoch(), 3);
  std::vector<QuarantinedVideo> reported;
  producer->SetQuarantineListener([&](const QuarantinedVideo& v) { reported.push_back(v); });

  ASSERT_OK_AND_ASSIGN(ProducedBatch last_train, producer->Produce(0, 1));
  EXPECT_EQ(last_train.header.split(), "train");
  EXPECT_EQ(last_train.header.batch_size(), 1);
  EXPECT_THAT(last_train.header.sample_ids(), ElementsAre(2));
  EXPECT_THAT(last_train.header.labels(), ElementsAre(2));
  EXPECT_EQ(last_train.clips.size(), 1u);
  EXPECT_EQ(last_train.header.manifest_sha256(), Sha256Hex(kTrain));

  // Val row 1 is missing: replaced by the next usable row of the val manifest (wrapping to 0),
  // reported as sample N_train + 1.
  ASSERT_OK_AND_ASSIGN(ProducedBatch val, producer->Produce(0, 2));
  EXPECT_EQ(val.header.split(), "val");
  EXPECT_EQ(val.header.total_batches(), 3);
  EXPECT_EQ(val.header.batch_size(), 2);
  EXPECT_THAT(val.header.sample_ids(), ElementsAre(0, 0));
  EXPECT_THAT(val.header.labels(), ElementsAre(1, 1));
  EXPECT_EQ(val.header.replaced_samples(), 1);
  EXPECT_EQ(val.header.manifest_sha256(), Sha256Hex(kVal));
  EXPECT_EQ(*val.clips[0], *val.clips[1]);
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].sample, 3 + 1);
  EXPECT_EQ(reported[0].path, "missing.mp4");
  EXPECT_EQ(reported[0].reason, BadVideoReason::kMissing);
}

TEST_F(BuilderProducerTest, ProbeValManifestErrorsNameIt) {
  spec::JobSpec spec = ProbeSpec();
  dir_.Write("data/val.txt", "good.mp4 1\ngood.mp4 3\n");
  EXPECT_THAT(factory_->Create("probe", spec).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("probe.val_manifest val.txt row 1 (good.mp4): label 3")));
  spec.probe.val_manifest = "absent.txt";
  EXPECT_THAT(factory_->Create("probe", spec).status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("probe.val_manifest: ")));
}

}  // namespace
}  // namespace vjepa::dataworker
