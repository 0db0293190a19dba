#include "services/trainer/checkpoint/checkpoint.h"

#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/trainer/checkpoint/test_util.h"

namespace vjepa::checkpoint {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ScratchDir;

// A tiny V-JEPA state with the reference's names: D = 8, tubelet 2, patch 4, 6 tokens, one block;
// predictor width 4.
std::vector<NamedTensor> TinyEncoder() {
  return {{"patch_embed.proj.weight", torch::randn({8, 3, 2, 4, 4})},
          {"patch_embed.proj.bias", torch::randn({8})},
          {"pos_embed", torch::randn({1, 6, 8})},
          {"blocks.0.norm1.weight", torch::randn({8})},
          {"blocks.0.attn.qkv.weight", torch::randn({24, 8})},
          {"blocks.0.attn.proj.weight", torch::randn({8, 8})},
          {"blocks.0.mlp.fc1.weight", torch::randn({32, 8}).to(torch::kBFloat16)},
          {"norm.weight", torch::randn({8})}};
}

std::vector<NamedTensor> TinyPredictor() {
  return {{"predictor_embed.weight", torch::randn({4, 8})},
          {"mask_tokens.0", torch::randn({1, 1, 4})},
          {"mask_tokens.1", torch::randn({1, 1, 4})},
          {"predictor_pos_embed", torch::randn({1, 6, 4})},
          {"predictor_blocks.0.attn.qkv.weight", torch::randn({12, 4})},
          {"predictor_norm.weight", torch::randn({4})},
          {"predictor_proj.weight", torch::randn({8, 4})}};
}

TrainingCheckpoint TinyCheckpoint() {
  TrainingCheckpoint c;
  c.encoder = TinyEncoder();
  c.predictor = TinyPredictor();
  for (const NamedTensor& t : c.encoder) c.target_encoder.push_back({t.name, t.tensor + 1});
  for (const auto& [prefix, model] :
       {std::pair{"encoder.", &c.encoder}, std::pair{"predictor.", &c.predictor}}) {
    for (const NamedTensor& t : *model) {
      const std::string param = prefix + t.name;
      c.optimizer.state.push_back({"exp_avg." + param, torch::randn_like(t.tensor)});
      c.optimizer.state.push_back({"exp_avg_sq." + param, torch::rand_like(t.tensor)});
      c.optimizer.state.push_back({"step." + param, torch::tensor(int64_t{300})});
    }
  }
  c.optimizer.param_groups = {
      {{"encoder.blocks.0.attn.qkv.weight", "predictor.predictor_proj.weight"},
       {{"lr", 2.000354e-4},
        {"weight_decay", 0.04},
        {"beta1", 0.9},
        {"beta2", 0.999},
        {"eps", 1e-8}}},
      {{"encoder.norm.weight"}, {{"lr", 2.000354e-4}, {"weight_decay", 0.0}, {"WD_exclude", 1}}}};
  c.step = 300;
  c.generation = 2;
  c.iterations_per_epoch = 128;
  c.spec = "model:\n  name: vit_tiny\n";
  c.dataset = {1000, std::string(64, 'a'), "recipe-3"};
  c.extra = {{"note", "first"}};
  return c;
}

std::string Bytes(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  return std::string(static_cast<const char*>(c.data_ptr()), c.numel() * c.element_size());
}

bool SameBytes(const torch::Tensor& a, const torch::Tensor& b) {
  return a.scalar_type() == b.scalar_type() && a.sizes() == b.sizes() && Bytes(a) == Bytes(b);
}

void ExpectSameTensors(const std::vector<NamedTensor>& expected,
                       const std::vector<NamedTensor>& actual) {
  ASSERT_EQ(expected.size(), actual.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(actual[i].name, expected[i].name);
    EXPECT_TRUE(SameBytes(actual[i].tensor, expected[i].tensor)) << expected[i].name;
  }
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    torch::manual_seed(5);
  }
  ScratchDir dir_;
};

TEST_F(CheckpointTest, SaveAndLoadRoundTripBitExactly) {
  const TrainingCheckpoint saved = TinyCheckpoint();
  const std::string path = dir_.File("step300.safetensors");
  ASSERT_TRUE(SaveCheckpoint(path, saved).ok());
  auto loaded = LoadCheckpoint(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  ExpectSameTensors(saved.encoder, loaded->encoder);
  ExpectSameTensors(saved.predictor, loaded->predictor);
  ExpectSameTensors(saved.target_encoder, loaded->target_encoder);
  ExpectSameTensors(saved.optimizer.state, loaded->optimizer.state);
  ASSERT_EQ(loaded->optimizer.param_groups.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(loaded->optimizer.param_groups[i].params, saved.optimizer.param_groups[i].params);
    EXPECT_EQ(loaded->optimizer.param_groups[i].options, saved.optimizer.param_groups[i].options);
  }
  EXPECT_EQ(loaded->step, 300);
  EXPECT_EQ(loaded->generation, 2);
  EXPECT_EQ(loaded->iterations_per_epoch, 128);
  EXPECT_EQ(loaded->spec, saved.spec);
  EXPECT_EQ(loaded->dataset.size, 1000);
  EXPECT_EQ(loaded->dataset.manifest_sha256, saved.dataset.manifest_sha256);
  EXPECT_EQ(loaded->dataset.recipe_version, "recipe-3");
  EXPECT_EQ(loaded->extra, saved.extra);
}

TEST_F(CheckpointTest, StoresReferenceNamesUnderModelPrefixes) {
  const std::string path = dir_.File("c");
  ASSERT_TRUE(SaveCheckpoint(path, TinyCheckpoint()).ok());
  auto header = ReadSafetensorsHeader(path);
  ASSERT_TRUE(header.ok());
  std::vector<std::string> names;
  for (const TensorInfo& t : header->tensors) names.push_back(t.name);
  EXPECT_EQ(names[0], "encoder.patch_embed.proj.weight");
  EXPECT_EQ(header->tensors[0].shape, (std::vector<int64_t>{8, 3, 2, 4, 4}));
  EXPECT_EQ(names[8], "predictor.predictor_embed.weight");
  EXPECT_EQ(names[9], "predictor.mask_tokens.0");
  EXPECT_EQ(header->tensors[9].shape, (std::vector<int64_t>{1, 1, 4}));
  EXPECT_EQ(names[15], "target_encoder.patch_embed.proj.weight");
  EXPECT_EQ(names[23], "optim.exp_avg.encoder.patch_embed.proj.weight");
  EXPECT_EQ(header->metadata.at("format"), "vjepa-checkpoint");
  EXPECT_EQ(header->metadata.at("format_version"), "1");
  EXPECT_EQ(header->metadata.at("step"), "300");
  EXPECT_EQ(header->metadata.at("dataset.recipe_version"), "recipe-3");
  EXPECT_EQ(header->metadata.at("x.note"), "first");
  EXPECT_EQ(header->metadata.at("optim.param_groups").substr(0, 56),
            "[{\"params\":[\"encoder.blocks.0.attn.qkv.weight\",\"predicto");
}

TEST_F(CheckpointTest, LoadsWithoutOptimizerState) {
  const std::string path = dir_.File("c");
  ASSERT_TRUE(SaveCheckpoint(path, TinyCheckpoint()).ok());
  LoadOptions options;
  options.optimizer_state = false;
  auto loaded = LoadCheckpoint(path, options);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE(loaded->optimizer.state.empty());
  EXPECT_EQ(loaded->optimizer.param_groups.size(), 2u);
  EXPECT_EQ(loaded->encoder.size(), 8u);
}

TEST_F(CheckpointTest, RefusesFilesThatAreNotCheckpoints) {
  auto file = ToTensorFile(TinyCheckpoint());
  ASSERT_TRUE(file.ok());
  const struct {
    std::string key;
    std::string value;  // empty: remove the key
    core::Code code;
    std::string reason;
  } cases[] = {
      {"format", "", core::Code::kInvalidArgument,
       "not a V-JEPA checkpoint: metadata format is missing"},
      {"format", "other", core::Code::kInvalidArgument, "format is \"other\""},
      {"format_version", "2", core::Code::kFailedPrecondition, "version 2 is newer"},
      {"step", "-1", core::Code::kInvalidArgument, "step = \"-1\" is not a non-negative integer"},
      {"step", "12x", core::Code::kInvalidArgument, "step = \"12x\""},
      {"generation", "", core::Code::kInvalidArgument, "metadata lacks generation"},
      {"optim.param_groups", "{}", core::Code::kInvalidArgument,
       "optim.param_groups: not an array"},
      {"optim.param_groups", "[{\"lr\":\"x\"}]", core::Code::kInvalidArgument,
       "option lr is not a finite number"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.reason);
    TensorFile changed = *file;
    if (c.value.empty()) {
      changed.metadata.erase(c.key);
    } else {
      changed.metadata[c.key] = c.value;
    }
    auto checkpoint = FromTensorFile(changed);
    ASSERT_FALSE(checkpoint.ok());
    EXPECT_EQ(checkpoint.status().code(), c.code);
    EXPECT_THAT(checkpoint.status().message(), HasSubstr(c.reason));
  }
  TensorFile stray = *file;
  stray.tensors.push_back({"scaler.scale", torch::ones({1})});
  EXPECT_THAT(FromTensorFile(stray).status().message(),
              HasSubstr("tensor \"scaler.scale\" is not under encoder."));

  // A plain safetensors file names the path in the error.
  ASSERT_TRUE(WriteSafetensors(dir_.File("plain"), TensorFile{{{"x", torch::ones({1})}}, {}}).ok());
  auto plain = LoadCheckpoint(dir_.File("plain"));
  EXPECT_EQ(plain.status().code(), core::Code::kInvalidArgument);
  EXPECT_THAT(plain.status().message(), HasSubstr(dir_.File("plain") + ": not a V-JEPA"));
}

TEST_F(CheckpointTest, RefusesInvalidCheckpointsToSave) {
  TrainingCheckpoint negative = TinyCheckpoint();
  negative.step = -1;
  EXPECT_EQ(SaveCheckpoint(dir_.File("c"), negative).code(), core::Code::kInvalidArgument);
  TrainingCheckpoint nan = TinyCheckpoint();
  nan.optimizer.param_groups[0].options["lr"] = std::nan("");
  EXPECT_THAT(SaveCheckpoint(dir_.File("c"), nan).message(), HasSubstr("option lr"));
  TrainingCheckpoint dup = TinyCheckpoint();
  dup.encoder.push_back(dup.encoder[0]);
  EXPECT_THAT(SaveCheckpoint(dir_.File("c"), dup).message(),
              HasSubstr("duplicate tensor name \"encoder.patch_embed.proj.weight\""));
  EXPECT_TRUE(dir_.List().empty());
}

TEST(PrefixTest, SelectsAndAddsPrefixes) {
  const std::vector<NamedTensor> all = {{"encoder.a", torch::ones({1})},
                                        {"target_encoder.a", torch::ones({2})},
                                        {"encoder.b.c", torch::ones({3})}};
  std::vector<std::string> names;
  for (const NamedTensor& t : SelectByPrefix(all, "encoder.")) names.push_back(t.name);
  EXPECT_THAT(names, ElementsAre("a", "b.c"));
  const auto back = AddPrefix(SelectByPrefix(all, "target_encoder."), "module.backbone.");
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].name, "module.backbone.a");
  EXPECT_TRUE(back[0].tensor.is_same(all[1].tensor));
}

TEST(CopyStateIntoTest, LoadsAModuleStrictly) {
  torch::manual_seed(3);
  torch::nn::Linear source(4, 3), target(4, 3);
  const auto saved = ToNamedTensors(source->named_parameters());
  ASSERT_TRUE(CopyStateInto(saved, ToNamedTensors(target->named_parameters()), "linear").ok());
  EXPECT_TRUE(torch::equal(target->weight, source->weight));
  EXPECT_TRUE(torch::equal(target->bias, source->bias));
}

TEST(CopyStateIntoTest, NamesEveryDifferenceAndCopiesNothing) {
  torch::manual_seed(3);
  torch::nn::Linear target(4, 3);
  const torch::Tensor weight_before = target->weight.detach().clone();
  const std::vector<NamedTensor> saved = {
      {"weight", torch::ones({3, 4})}, {"bias", torch::ones({5})}, {"extra", torch::ones({1})}};
  const core::Status status =
      CopyStateInto(saved, ToNamedTensors(target->named_parameters()), "encoder");
  EXPECT_EQ(status.code(), core::Code::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("cannot load encoder: unexpected keys [extra]; "
                                          "mismatched [bias (saved Float[5], model Float[3])]"));
  EXPECT_TRUE(torch::equal(target->weight, weight_before));

  const core::Status missing = CopyStateInto({{"weight", torch::ones({3, 4})}},
                                             ToNamedTensors(target->named_parameters()), "m");
  EXPECT_THAT(missing.message(), HasSubstr("missing keys [bias]"));
  const core::Status dtype =
      CopyStateInto({{"weight", torch::ones({3, 4}, torch::kFloat64)}, {"bias", torch::ones({3})}},
                    ToNamedTensors(target->named_parameters()), "m");
  EXPECT_THAT(dtype.message(), HasSubstr("weight (saved Double[3, 4], model Float[3, 4])"));
}

}  // namespace
}  // namespace vjepa::checkpoint
