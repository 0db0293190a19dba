#include "services/trainer/vjepa/checkpointing.h"

#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gtest/gtest.h"
#include "services/trainer/checkpoint/safetensors.h"

namespace vjepa::jepa {
namespace {

TrainerConfig Nano() {
  TrainerConfig c;
  c.vit = *model::VitPreset("nano");
  c.predictor.width = 32;
  c.predictor.depth = 1;
  c.predictor.heads = 4;
  c.schedule.warmup_steps = 2;
  c.schedule.length = 50;
  return c;
}

Batch RandomBatch(const TrainerConfig& c, int64_t seed) {
  torch::manual_seed(seed);
  Batch b;
  b.tokens = torch::randint(0, 256, {2, c.vit.num_tokens(), c.vit.token_values()}, torch::kUInt8);
  for (int64_t k : {3, 5}) {
    torch::Tensor perm = torch::stack({torch::randperm(8), torch::randperm(8)});
    b.masks.push_back(
        {std::get<0>(perm.narrow(1, 0, k).sort(1)), std::get<0>(perm.narrow(1, k, 8 - k).sort(1))});
  }
  return b;
}

class CheckpointingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    dir_ = std::filesystem::temp_directory_path() /
           ("vjepa-ckpt-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& n) { return (dir_ / n).string(); }
  std::filesystem::path dir_;
};

TEST_F(CheckpointingTest, ResumingFromAFileContinuesTheSameTrajectoryBitForBit) {
  const TrainerConfig c = Nano();
  torch::manual_seed(5);
  auto straight = std::move(Trainer::Create(c)).value();
  std::vector<double> expected;
  for (int s = 0; s < 6; ++s) expected.push_back(straight->Step(RandomBatch(c, s))->loss);

  torch::manual_seed(5);
  auto first = std::move(Trainer::Create(c)).value();
  std::vector<double> got;
  for (int s = 0; s < 3; ++s) got.push_back(first->Step(RandomBatch(c, s))->loss);
  CheckpointInfo info;
  info.generation = 2;
  info.spec = "name: t\n";
  ASSERT_TRUE(checkpoint::SaveCheckpoint(Path("c.safetensors"), MakeCheckpoint(*first, info)).ok());

  auto loaded = checkpoint::LoadCheckpoint(Path("c.safetensors"));
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->step, 3);
  EXPECT_EQ(loaded->generation, 2);
  model::VitConfig vit;
  model::PredictorConfig pred;
  ASSERT_TRUE(ModelConfigOf(*loaded, &vit, &pred).ok());
  EXPECT_EQ(vit.embed_dim, 64);
  EXPECT_EQ(pred.width, 32);
  // Every tensor round-trips bit for bit.
  std::map<std::string, torch::Tensor> saved;
  for (const auto& [n, t] : first->State()) saved[n] = t;
  torch::manual_seed(77);
  auto resumed = std::move(Trainer::Create(c)).value();
  ASSERT_TRUE(RestoreCheckpoint(*loaded, resumed.get()).ok());
  for (const auto& [n, t] : resumed->State()) {
    ASSERT_TRUE(saved.count(n)) << n;
    EXPECT_TRUE(torch::equal(t, saved[n])) << n;
  }
  for (int s = 3; s < 6; ++s) got.push_back(resumed->Step(RandomBatch(c, s))->loss);
  EXPECT_EQ(got, expected);
}

TEST_F(CheckpointingTest, RefusesACheckpointOfAnotherModelAndACorruptFile) {
  const TrainerConfig c = Nano();
  auto t = std::move(Trainer::Create(c)).value();
  ASSERT_TRUE(t->Step(RandomBatch(c, 0)).ok());
  ASSERT_TRUE(checkpoint::SaveCheckpoint(Path("c.safetensors"), MakeCheckpoint(*t, {})).ok());
  TrainerConfig other = c;
  other.predictor.depth = 2;
  auto bigger = std::move(Trainer::Create(other)).value();
  auto loaded = checkpoint::LoadCheckpoint(Path("c.safetensors"));
  ASSERT_TRUE(loaded.ok());
  core::Status s = RestoreCheckpoint(*loaded, bigger.get());
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("predictor"), std::string::npos) << s;
  // Flip one byte near the end (tensor data): the digest check refuses the file.
  {
    std::fstream f(Path("c.safetensors"), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-10, std::ios::end);
    char b;
    f.read(&b, 1);
    b ^= 0x5a;
    f.seekp(-10, std::ios::end);
    f.write(&b, 1);
  }
  auto corrupt = checkpoint::LoadCheckpoint(Path("c.safetensors"));
  EXPECT_EQ(corrupt.status().code(), core::Code::kDataLoss) << corrupt.status();
}

TEST_F(CheckpointingTest, EmbedToolWritesFeaturesOfTheTargetEncoder) {
  const TrainerConfig c = Nano();
  auto t = std::move(Trainer::Create(c)).value();
  ASSERT_TRUE(t->Step(RandomBatch(c, 0)).ok());
  ASSERT_TRUE(checkpoint::SaveCheckpoint(Path("c.safetensors"), MakeCheckpoint(*t, {})).ok());
  torch::Tensor tokens = RandomBatch(c, 3).tokens;
  checkpoint::TensorFile in;
  in.tensors = {{"tokens", tokens}};
  ASSERT_TRUE(checkpoint::WriteSafetensors(Path("tokens.safetensors"), in).ok());
  const char* bin = std::getenv("VJEPA_BIN_DIR");
  const std::string cmd = std::string(bin ? bin : "bin") + "/vjepa-embed --checkpoint " +
                          Path("c.safetensors") + " --tokens " + Path("tokens.safetensors") +
                          " --out " + Path("f.safetensors") + " 2>" + Path("log");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  auto out = checkpoint::ReadSafetensors(Path("f.safetensors"));
  ASSERT_TRUE(out.ok()) << out.status();
  std::map<std::string, torch::Tensor> got;
  for (const auto& nt : out->tensors) got[nt.name] = nt.tensor;
  torch::NoGradGuard no_grad;
  torch::Tensor expected = t->target_encoder()->forward(tokens);
  ASSERT_EQ(got["features"].sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got["features"], expected, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(got["mean"], expected.mean(1), 1e-5, 1e-5));
  // A token file of the wrong shape is refused with the expected shape in the message.
  in.tensors = {{"tokens", tokens.narrow(1, 0, 4).contiguous()}};
  ASSERT_TRUE(checkpoint::WriteSafetensors(Path("bad.safetensors"), in).ok());
  const std::string bad = std::string(bin ? bin : "bin") + "/vjepa-embed --checkpoint " +
                          Path("c.safetensors") + " --tokens " + Path("bad.safetensors") +
                          " --out " + Path("g.safetensors") + " 2>" + Path("bad.log");
  EXPECT_EQ(WEXITSTATUS(std::system(bad.c_str())), 1);
  std::ifstream log(Path("bad.log"));
  std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("tokens must be uint8 [B, 8, 1536]"), std::string::npos) << text;
}

}  // namespace
}  // namespace vjepa::jepa
