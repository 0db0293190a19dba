// The dataset pre-flight on a generated dataset: good clips are ok with their properties, bad
// files get their quarantine reason, the summary and the exit code follow.
#include "services/dataworker/check.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "services/dataworker/test_util.h"

namespace vjepa::dataworker {
namespace {

using ::testing::HasSubstr;

class CheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(dir_.File("data"));
    ASSERT_TRUE(MakeTestVideo(dir_.File("data/good.mp4"), 64, 48, 40, 25, 10));
    ASSERT_TRUE(MakeTestVideo(dir_.File("data/short.mp4"), 48, 32, 5, 10, 5));
  }
  std::string Data(const std::string& name) const { return dir_.File("data/" + name); }
  int Check(const std::string& manifest_text, bool json, std::string* out) {
    dir_.Write("data/manifest.txt", manifest_text);
    CheckOptions o;
    o.manifest = "manifest.txt";
    o.data_roots = {dir_.File("data")};
    o.json = json;
    o.frames = 8;
    o.crop = 32;
    std::ostringstream stdout_text, stderr_text;
    const int rc = RunCheck(o, stdout_text, stderr_text);
    *out = stdout_text.str();
    err_ = stderr_text.str();
    return rc;
  }

  testing::ScratchDir dir_;
  std::string err_;
};

TEST_F(CheckTest, GoodFilesAreOkWithTheirProperties) {
  std::string out;
  ASSERT_EQ(Check("good.mp4 0\nshort.mp4 1\n", /*json=*/true, &out), kCheckAllOk) << out << err_;
  std::istringstream lines(out);
  std::vector<nlohmann::json> objects;
  for (std::string line; std::getline(lines, line);) objects.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(objects.size(), 3u) << out;
  EXPECT_EQ(objects[0]["path"], "good.mp4");
  EXPECT_EQ(objects[0]["ok"], true);
  EXPECT_EQ(objects[0]["codec"], "h264");
  EXPECT_EQ(objects[0]["width"], 64);
  EXPECT_EQ(objects[0]["height"], 48);
  EXPECT_EQ(objects[0]["frames"], 40);
  EXPECT_NEAR(objects[0]["fps"].get<double>(), 25.0, 0.01);
  EXPECT_NEAR(objects[0]["duration_s"].get<double>(), 1.6, 0.01);
  EXPECT_EQ(objects[1]["frames"], 5);  // shorter than the window: padded, still ok
  EXPECT_EQ(objects[2]["summary"], true);
  EXPECT_EQ(objects[2]["files"], 2);
  EXPECT_EQ(objects[2]["ok"], 2);
  EXPECT_EQ(objects[2]["bad"], 0);
}

TEST_F(CheckTest, BadFilesGetTheirQuarantineReason) {
  dir_.Write("data/empty.mp4", "");
  dir_.Write("data/text.mp4", std::string(4096, 'x'));
  {
    std::ifstream in(Data("good.mp4"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    dir_.Write("data/cut.mp4", bytes.substr(0, bytes.size() / 3));
  }
  dir_.Write("outside.mp4", "");
  std::string out;
  const int rc =
      Check("good.mp4 0\nempty.mp4 0\nmissing.mp4 0\ntext.mp4 0\n../outside.mp4 0\ncut.mp4 0\n",
            /*json=*/false, &out);
  EXPECT_EQ(rc, kCheckSomeBad) << out << err_;
  EXPECT_THAT(out, HasSubstr("ok   good.mp4: h264 64x48"));
  EXPECT_THAT(out, HasSubstr("bad  empty.mp4: empty:"));
  EXPECT_THAT(out, HasSubstr("bad  missing.mp4: missing:"));
  EXPECT_THAT(out, HasSubstr("bad  text.mp4: not_a_container:"));
  EXPECT_THAT(out, HasSubstr("bad  ../outside.mp4: path_refused:"));
  EXPECT_THAT(out, HasSubstr("bad  cut.mp4: "));
  EXPECT_THAT(out, HasSubstr("6 files: 1 ok, 5 bad ("));
}

TEST_F(CheckTest, BadArgumentsAreExitCodeTwo) {
  CheckOptions o;
  std::ostringstream out, err;
  EXPECT_EQ(ParseCheckArgs({"--json"}, &o, out, err), kCheckBadArguments);
  EXPECT_THAT(err.str(), HasSubstr("--manifest and --data_root are required"));
  EXPECT_EQ(ParseCheckArgs({"--manifest", "m", "--bogus"}, &o, out, err), kCheckBadArguments);
  EXPECT_EQ(ParseCheckArgs({"--manifest=m", "--data_root=a,b", "--frames", "0"}, &o, out, err),
            kCheckBadArguments);
  CheckOptions good;
  EXPECT_EQ(ParseCheckArgs({"--manifest=m", "--data_root", "a,b", "--json"}, &good, out, err), -1);
  EXPECT_EQ(good.data_roots, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(good.json);
  EXPECT_EQ(ParseCheckArgs({"--help"}, &o, out, err), kCheckAllOk);
  EXPECT_THAT(out.str(), HasSubstr("Exit code: 0"));

  o = CheckOptions{};
  o.manifest = "nowhere.txt";
  o.data_roots = {dir_.File("no-such-root")};
  EXPECT_EQ(RunCheck(o, out, err), kCheckBadArguments);
  o.data_roots = {dir_.File("data")};
  EXPECT_EQ(RunCheck(o, out, err), kCheckBadArguments);
  EXPECT_THAT(err.str(), HasSubstr("nowhere.txt"));
}

}  // namespace
}  // namespace vjepa::dataworker
