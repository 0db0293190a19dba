// vjepa-embed --video (full build only): the encoder features of a video's evaluation clips.
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "gtest/gtest.h"
#include "services/dataworker/batch/video_tokens.h"
#include "services/trainer/checkpoint/safetensors.h"
#include "services/trainer/vjepa/checkpointing.h"
#include "services/trainer/vjepa/trainer.h"

namespace vjepa::jepa {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

class EmbedVideoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    torch::set_num_threads(1);
    dir_ =
        std::filesystem::temp_directory_path() / ("vjepa-embed-video-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string Path(const std::string& n) { return (dir_ / n).string(); }
  std::string Bin() {
    const char* bin = std::getenv("VJEPA_BIN_DIR");
    return std::string(bin ? bin : "bin") + "/vjepa-embed";
  }
  std::filesystem::path dir_;
};

TEST_F(EmbedVideoTest, FeaturesOfEverySegmentAndViewOfAVideo) {
  TrainerConfig c;
  c.vit = *model::VitPreset("nano");
  c.predictor.width = 32;
  c.predictor.depth = 1;
  c.predictor.heads = 4;
  torch::manual_seed(1);
  auto t = std::move(Trainer::Create(c)).value();
  ASSERT_TRUE(checkpoint::SaveCheckpoint(Path("c.safetensors"), MakeCheckpoint(*t, {})).ok());
  // 90 frames of 96x64: two segments of 45 frames, each longer than a 4x4 window.
  const std::string video = Path("clip.mp4");
  const std::string make =
      "ffmpeg -nostdin -v error -y -f lavfi -i testsrc2=size=96x64:rate=30 "
      "-frames:v 90 -c:v libx264 -pix_fmt yuv420p " +
      video;
  ASSERT_EQ(std::system(make.c_str()), 0) << make;

  const std::string cmd = Bin() + " --checkpoint " + Path("c.safetensors") + " --video " + video +
                          " --segments 2 --views 3 --out " + Path("f.safetensors") + " 2>" +
                          Path("log");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd << "\n" << ReadFile(Path("log"));
  auto out = checkpoint::ReadSafetensors(Path("f.safetensors"));
  ASSERT_TRUE(out.ok()) << out.status();
  std::map<std::string, torch::Tensor> got;
  for (const auto& nt : out->tensors) got[nt.name] = nt.tensor;

  // The same clips through the library, then the encoder in this process.
  dataworker::VideoTokensOptions options;
  options.frames = static_cast<int>(c.vit.frames);
  options.crop = static_cast<int>(c.vit.crop);
  options.patch = static_cast<int>(c.vit.patch);
  options.tubelet = static_cast<int>(c.vit.tubelet);
  options.segments = 2;
  options.views = 3;
  dataworker::VideoTokens clips;
  std::string error;
  ASSERT_TRUE(dataworker::ReadVideoTokens(video, options, &clips, &error)) << error;
  ASSERT_EQ(clips.clips.size(), 6u);
  EXPECT_EQ(clips.frames, 90);
  EXPECT_EQ(clips.width, 96);
  torch::Tensor tokens = torch::empty({6, c.vit.num_tokens(), c.vit.token_values()}, torch::kUInt8);
  for (int i = 0; i < 6; ++i) {
    ASSERT_EQ(static_cast<int64_t>(clips.clips[i].size()), tokens[i].numel());
    std::memcpy(tokens[i].data_ptr(), clips.clips[i].data(), clips.clips[i].size());
  }
  // Views of one segment differ (the crop moves along the long side), as do segments.
  EXPECT_FALSE(torch::equal(tokens[0], tokens[1]));
  EXPECT_FALSE(torch::equal(tokens[0], tokens[3]));
  torch::NoGradGuard no_grad;
  torch::Tensor expected = t->target_encoder()->forward(tokens);
  ASSERT_EQ(got["features"].sizes(), expected.sizes());
  EXPECT_TRUE(torch::allclose(got["features"], expected, 1e-5, 1e-5));

  // A file that is not a video: exit 1 and the reason.
  std::ofstream(Path("notes.mp4")) << "not a video";
  const std::string bad = Bin() + " --checkpoint " + Path("c.safetensors") + " --video " +
                          Path("notes.mp4") + " --out " + Path("g.safetensors") + " 2>" +
                          Path("bad.log");
  EXPECT_EQ(WEXITSTATUS(std::system(bad.c_str())), 1);
  const std::string text = ReadFile(Path("bad.log"));
  EXPECT_NE(text.find("not_a_container"), std::string::npos) << text;
}

}  // namespace
}  // namespace vjepa::jepa
