#include "services/trainer/checkpoint/reference_export.h"

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/test_util.h"

namespace vjepa::checkpoint {
namespace {

using ::testing::HasSubstr;
using testing::ReadBytes;
using testing::ScratchDir;

TrainingCheckpoint SmallCheckpoint() {
  TrainingCheckpoint c;
  c.encoder = {{"patch_embed.proj.weight", torch::randn({8, 3, 2, 4, 4})},
               {"pos_embed", torch::randn({1, 6, 8})},
               {"blocks.0.attn.qkv.weight", torch::randn({24, 8})},
               {"norm.bias", torch::randn({8}).to(torch::kBFloat16)}};
  c.predictor = {{"mask_tokens.0", torch::randn({1, 1, 4})},
                 {"mask_tokens.1", torch::randn({1, 1, 4})},
                 {"predictor_pos_embed", torch::randn({1, 6, 4})},
                 {"predictor_proj.weight", torch::randn({8, 4})}};
  for (const NamedTensor& t : c.encoder) c.target_encoder.push_back({t.name, t.tensor * 2});
  c.optimizer.state = {{"exp_avg.encoder.pos_embed", torch::randn({1, 6, 8})}};
  c.step = 1000;
  c.iterations_per_epoch = 300;
  return c;
}

// The dict of one model as name → tensor.
std::map<std::string, torch::Tensor> ModelEntries(const c10::IValue& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& entry : model.toGenericDict()) {
    out[entry.key().toStringRef()] = entry.value().toTensor();
  }
  return out;
}

void ExpectModel(const c10::impl::GenericDict& dict, const std::string& key,
                 const std::vector<NamedTensor>& expected) {
  SCOPED_TRACE(key);
  ASSERT_TRUE(dict.contains(key));
  const auto entries = ModelEntries(dict.at(key));
  ASSERT_EQ(entries.size(), expected.size());
  for (const NamedTensor& t : expected) {
    const auto it = entries.find("module.backbone." + t.name);
    ASSERT_NE(it, entries.end()) << t.name;
    EXPECT_EQ(it->second.scalar_type(), t.tensor.scalar_type()) << t.name;
    EXPECT_EQ(it->second.sizes(), t.tensor.sizes()) << t.name;
    EXPECT_TRUE(torch::equal(it->second, t.tensor)) << t.name;
  }
}

class ReferenceExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    torch::manual_seed(9);
  }
  ScratchDir dir_;
};

TEST_F(ReferenceExportTest, WritesTheReferenceLayoutThatPickleLoadReads) {
  const TrainingCheckpoint c = SmallCheckpoint();
  const std::string out = dir_.File("latest.pth.tar");
  auto summary = ExportReferencePth(c, out);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->epoch, 3);  // 1000 updates / 300 per epoch, completed epochs
  EXPECT_EQ(summary->encoder_tensors, 4u);
  EXPECT_EQ(summary->predictor_tensors, 4u);
  EXPECT_EQ(summary->target_encoder_tensors, 4u);

  const std::string bytes = ReadBytes(out);
  EXPECT_EQ(summary->bytes, bytes.size());
  const c10::IValue loaded = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  ASSERT_TRUE(loaded.isGenericDict());
  const auto dict = loaded.toGenericDict();
  EXPECT_EQ(dict.size(), 4u);
  ExpectModel(dict, "encoder", c.encoder);
  ExpectModel(dict, "predictor", c.predictor);
  ExpectModel(dict, "target_encoder", c.target_encoder);
  ASSERT_TRUE(dict.contains("epoch"));
  EXPECT_EQ(dict.at("epoch").toInt(), 3);

  // No TorchScript type tags (torch.load(weights_only=True) refuses them) and no optimizer state.
  EXPECT_EQ(bytes.find("restore_type_tag"), std::string::npos);
  EXPECT_EQ(bytes.find("exp_avg"), std::string::npos);
  EXPECT_EQ(dir_.List(), (std::set<std::string>{"latest.pth.tar"}));
}

TEST_F(ReferenceExportTest, EpochIsTheStepWhenIterationsPerEpochAreUnknown) {
  TrainingCheckpoint c = SmallCheckpoint();
  c.iterations_per_epoch = 0;
  EXPECT_EQ(ReferenceEpoch(c), 1000);
  c.iterations_per_epoch = 1000;
  EXPECT_EQ(ReferenceEpoch(c), 1);
  c.step = 999;
  EXPECT_EQ(ReferenceEpoch(c), 0);
}

TEST_F(ReferenceExportTest, ExportsViewsByTheirValues) {
  TrainingCheckpoint c = SmallCheckpoint();
  const torch::Tensor big = torch::arange(64, torch::kFloat32).reshape({8, 8});
  c.encoder[2].tensor = big.slice(0, 2, 5).t();  // a strided view into a larger storage
  auto dict = ToReferenceDict(c);
  ASSERT_TRUE(dict.ok());
  const std::string out = dir_.File("v.pth.tar");
  ASSERT_TRUE(ExportReferencePth(c, out).ok());
  const std::string bytes = ReadBytes(out);
  const auto loaded = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  const auto encoder = ModelEntries(loaded.toGenericDict().at("encoder"));
  const torch::Tensor qkv = encoder.at("module.backbone.blocks.0.attn.qkv.weight");
  EXPECT_EQ(qkv.sizes(), (std::vector<int64_t>{8, 3}));
  EXPECT_TRUE(torch::equal(qkv, big.slice(0, 2, 5).t()));
}

TEST_F(ReferenceExportTest, RefusesCheckpointsTheReferenceCannotLoad) {
  TrainingCheckpoint no_predictor = SmallCheckpoint();
  no_predictor.predictor.clear();
  auto status = ExportReferencePth(no_predictor, dir_.File("x.pth.tar")).status();
  EXPECT_EQ(status.code(), core::Code::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("checkpoint has no predictor tensors"));

  TrainingCheckpoint linear = SmallCheckpoint();
  linear.encoder[0].tensor = torch::randn({8, 96});
  status = ExportReferencePth(linear, dir_.File("x.pth.tar")).status();
  EXPECT_EQ(status.code(), core::Code::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("patch_embed.proj.weight has 2 dims"));

  EXPECT_EQ(ExportReferencePth(SmallCheckpoint(), dir_.File("no/dir/x")).status().code(),
            core::Code::kNotFound);
  EXPECT_TRUE(dir_.List().empty());
}

}  // namespace
}  // namespace vjepa::checkpoint
