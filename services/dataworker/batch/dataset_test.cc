#include "services/dataworker/batch/dataset.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace vjepa::dataworker {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vjepa::testing::ScratchDir;
using ::vjepa::testing::StatusIs;

std::string Canonical(const std::string& path) { return std::filesystem::canonical(path).string(); }

// The value, or the error as text (so that a failure shows it).
std::string ValueOf(const absl::StatusOr<std::string>& r) {
  return r.ok() ? *r : "error: " + r.status().ToString();
}

// --- Manifest parsing ----------------------------------------------------------------------

TEST(ParseManifestTest, ReadsTheReferenceFormat) {
  ASSERT_OK_AND_ASSIGN(std::vector<ManifestEntry> entries,
                       ParseManifest("a/x.mp4 3\n"
                                     "\n"
                                     "b.webm,0\r\n"
                                     "  /abs/c.mkv\t7  \n"
                                     "dir with spaces/d.mp4 12\n"
                                     "e.mp4 -1",
                                     "m.csv"));
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(entries[0].path, "a/x.mp4");
  EXPECT_EQ(entries[0].label, 3);
  EXPECT_EQ(entries[1].path, "b.webm");
  EXPECT_EQ(entries[1].label, 0);
  EXPECT_EQ(entries[2].path, "/abs/c.mkv");
  EXPECT_EQ(entries[2].label, 7);
  EXPECT_EQ(entries[3].path, "dir with spaces/d.mp4");
  EXPECT_EQ(entries[3].label, 12);
  EXPECT_EQ(entries[4].label, -1);
}

TEST(ParseManifestTest, ErrorsNameTheFileAndTheLine) {
  EXPECT_THAT(ParseManifest("a.mp4 1\n\nb.mp4\n", "m.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("m.csv line 3: expected \"path label\"")));
  EXPECT_THAT(ParseManifest("a.mp4 1\nb.mp4 x1\n", "m.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("m.csv line 2: label \"x1\" is not an integer")));
  EXPECT_THAT(ParseManifest("a.mp4 1.5\n", "m.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1")));
  EXPECT_THAT(ParseManifest(" ,3\n", "m.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1: empty path")));
  EXPECT_THAT(ParseManifest(std::string("a\0b.mp4 1\n", 10), "m.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("line 1: contains a NUL")));
  EXPECT_THAT(ParseManifest("\n  \n", "m.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("m.csv: no entries")));
  EXPECT_THAT(ParseManifest(std::string(kMaxManifestLineBytes + 1, 'a') + " 1\n", "m.csv").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("over the limit")));
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// --- Data roots ----------------------------------------------------------------------------

class DataRootsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.File("root");
    outside_ = dir_.File("outside");
    std::filesystem::create_directories(root_ + "/videos/sub");
    std::filesystem::create_directories(outside_);
    dir_.Write("root/videos/a.mp4", "x");
    dir_.Write("root/videos/sub/b.mp4", "x");
    dir_.Write("outside/secret.mp4", "x");
    // Inside → outside, inside → inside, a directory link leading outside, a loop.
    std::filesystem::create_symlink(outside_ + "/secret.mp4", root_ + "/videos/escape.mp4");
    std::filesystem::create_symlink(root_ + "/videos/a.mp4", root_ + "/videos/alias.mp4");
    std::filesystem::create_symlink(outside_, root_ + "/videos/outdir");
    std::filesystem::create_symlink(root_ + "/videos/loop", root_ + "/videos/loop");
    ASSERT_OK_AND_ASSIGN(roots_, DataRoots::Create({root_}));
    base_ = Canonical(root_ + "/videos");
  }

  void ExpectRefused(const std::string& path, const std::string& base) {
    absl::StatusOr<std::string> r = roots_.Resolve(path, base);
    EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kPermissionDenied, ::testing::_)) << path;
    EXPECT_EQ(BadVideoReasonOf(r.status()), BadVideoReason::kPathRefused) << path;
  }

  ScratchDir dir_;
  std::string root_;
  std::string outside_;
  std::string base_;
  DataRoots roots_;
};

TEST_F(DataRootsTest, CreateRefusesMissingRootsAndFiles) {
  EXPECT_THAT(DataRoots::Create({dir_.File("nope")}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nope")));
  EXPECT_THAT(DataRoots::Create({root_ + "/videos/a.mp4"}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a directory")));
  EXPECT_THAT(DataRoots::Create({}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("none")));
  EXPECT_THAT(roots_.roots(), ElementsAre(Canonical(root_)));
}

TEST_F(DataRootsTest, AllowsPathsInsideTheRoots) {
  const std::string a = Canonical(root_ + "/videos/a.mp4");
  EXPECT_EQ(ValueOf(roots_.Resolve("a.mp4", base_)), a);
  EXPECT_EQ(ValueOf(roots_.Resolve("./sub//b.mp4", base_)), Canonical(root_ + "/videos/sub/b.mp4"));
  EXPECT_EQ(ValueOf(roots_.Resolve(root_ + "/videos/a.mp4", "/")), a);
  // A link that stays inside resolves to its target.
  EXPECT_EQ(ValueOf(roots_.Resolve("alias.mp4", base_)), a);
  // A root given through a symlink is canonicalised: paths under either spelling are inside.
  std::filesystem::create_symlink(root_, dir_.File("root-link"));
  ASSERT_OK_AND_ASSIGN(DataRoots linked, DataRoots::Create({dir_.File("root-link")}));
  EXPECT_EQ(ValueOf(linked.Resolve(dir_.File("root-link/videos/a.mp4"), "/")), a);
}

TEST_F(DataRootsTest, RefusesEscapes) {
  ExpectRefused("../outside/secret.mp4", base_);
  ExpectRefused("sub/../a.mp4", base_);  // even when it would stay inside
  ExpectRefused(outside_ + "/secret.mp4", base_);
  ExpectRefused("/etc/passwd", base_);
  ExpectRefused("escape.mp4", base_);
  ExpectRefused("outdir/secret.mp4", base_);
  ExpectRefused("outdir/missing.mp4", base_);  // missing, but behind a link that leads outside
  ExpectRefused("/nonexistent-dir/x.mp4", base_);
  ExpectRefused("loop", base_);
  ExpectRefused("a.mp4", outside_);  // the base itself outside
  ExpectRefused("", base_);
}

TEST_F(DataRootsTest, MissingInsideIsMissing) {
  absl::StatusOr<std::string> r = roots_.Resolve("nothere.mp4", base_);
  EXPECT_THAT(r.status(), StatusIs(absl::StatusCode::kNotFound, HasSubstr("nothere.mp4")));
  EXPECT_EQ(BadVideoReasonOf(r.status()), BadVideoReason::kMissing);
  EXPECT_EQ(BadVideoReasonOf(roots_.Resolve("sub/deeper/x.mp4", base_).status()),
            BadVideoReason::kMissing);
  EXPECT_EQ(BadVideoReasonOf(roots_.Resolve("a.mp4/x", base_).status()), BadVideoReason::kMissing);
}

// --- Dataset -------------------------------------------------------------------------------

TEST_F(DataRootsTest, LoadReadsTheManifestUnderTheRoot) {
  const std::string text = "a.mp4 1\nsub/b.mp4 2\nnothere.mp4 0\nescape.mp4 3\n";
  dir_.Write("root/videos/train.csv", text);
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Dataset> ds,
                       Dataset::Load(roots_, "videos/train.csv", /*root=*/""));
  EXPECT_EQ(ds->size(), 4);
  EXPECT_EQ(ds->identity().size, 4);
  EXPECT_EQ(ds->identity().manifest_sha256, Sha256Hex(text));
  EXPECT_EQ(ds->identity().recipe_version, kRecipeVersion);
  EXPECT_EQ(ds->entry(1).path, "sub/b.mp4");
  EXPECT_EQ(ds->entry(1).label, 2);
  // Relative to the manifest's directory by default.
  EXPECT_EQ(ValueOf(ds->ResolvedPath(0)), Canonical(root_ + "/videos/a.mp4"));
  EXPECT_EQ(BadVideoReasonOf(ds->ResolvedPath(2).status()), BadVideoReason::kMissing);
  EXPECT_EQ(BadVideoReasonOf(ds->ResolvedPath(3).status()), BadVideoReason::kPathRefused);
  EXPECT_THAT(ds->ResolvedPath(4).status(), StatusIs(absl::StatusCode::kOutOfRange, ::testing::_));

  // dataset.root: relative to the first data root.
  dir_.Write("root/list.csv", "a.mp4 1\n");
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Dataset> rooted,
                       Dataset::Load(roots_, "list.csv", "videos"));
  EXPECT_EQ(ValueOf(rooted->ResolvedPath(0)), Canonical(root_ + "/videos/a.mp4"));
}

TEST_F(DataRootsTest, LoadErrorsNameTheManifest) {
  EXPECT_THAT(Dataset::Load(roots_, "missing.csv", "").status(),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("missing.csv")));
  EXPECT_THAT(Dataset::Load(roots_, outside_ + "/m.csv", "").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("manifest")));
  dir_.Write("root/bad.csv", "a.mp4 1\nb.mp4 two\n");
  EXPECT_THAT(Dataset::Load(roots_, "bad.csv", "").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.csv line 2")));
  dir_.Write("root/ok.csv", "a.mp4 1\n");
  EXPECT_THAT(Dataset::Load(roots_, "ok.csv", "../outside").status(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("dataset.root")));
  EXPECT_THAT(Dataset::Load(roots_, "ok.csv", "videos/a.mp4").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a directory")));
}

TEST(PermutationTest, IsAPermutationThatDependsOnSeedAndEpoch) {
  const std::vector<int64_t> p = EpochPermutation(234, 0, 1000);
  std::vector<int64_t> sorted = p;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(sorted[i], i);
  EXPECT_EQ(p, EpochPermutation(234, 0, 1000));
  EXPECT_NE(p, EpochPermutation(234, 1, 1000));
  EXPECT_NE(p, EpochPermutation(235, 0, 1000));
  EXPECT_THAT(EpochPermutation(1, 0, 1), ElementsAre(0));
  EXPECT_TRUE(EpochPermutation(1, 0, 0).empty());
  // Uniform: over 3000 epochs each of 5 elements lands in slot 0 about 600 times.
  std::vector<int> first(5, 0);
  for (int e = 0; e < 3000; ++e) ++first[EpochPermutation(7, e, 5)[0]];
  for (int c : first) EXPECT_NEAR(c, 600, 130);
}

TEST_F(DataRootsTest, DatasetPermutationIsCachedAndMatches) {
  dir_.Write("root/videos/m.csv", "a.mp4 0\na.mp4 1\na.mp4 2\na.mp4 3\na.mp4 4\n");
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Dataset> ds, Dataset::Load(roots_, "videos/m.csv", ""));
  const auto p0 = ds->Permutation(9, 0);
  EXPECT_EQ(*p0, EpochPermutation(9, 0, 5));
  EXPECT_EQ(ds->Permutation(9, 0), p0);  // same object from the cache
  for (int e = 1; e < 10; ++e) EXPECT_EQ(*ds->Permutation(9, e), EpochPermutation(9, e, 5));
  EXPECT_EQ(*ds->Permutation(9, 0), *p0);
}

TEST_F(DataRootsTest, QuarantineReportsEachSampleOnce) {
  dir_.Write("root/videos/m.csv", "a.mp4 0\nb.mp4 1\nc.mp4 2\n");
  ASSERT_OK_AND_ASSIGN(std::shared_ptr<Dataset> ds, Dataset::Load(roots_, "videos/m.csv", ""));
  std::vector<int64_t> reported;
  ds->SetQuarantineListener([&](const QuarantinedVideo& v) { reported.push_back(v.sample); });
  EXPECT_FALSE(ds->IsQuarantined(2));
  ds->Quarantine({2, "c.mp4", BadVideoReason::kTruncated, "ends early"});
  ds->Quarantine({2, "c.mp4", BadVideoReason::kTruncated, "again"});
  ds->Quarantine({0, "a.mp4", BadVideoReason::kEmpty, ""});
  EXPECT_TRUE(ds->IsQuarantined(2));
  EXPECT_TRUE(ds->IsQuarantined(0));
  EXPECT_FALSE(ds->IsQuarantined(1));
  EXPECT_EQ(ds->quarantine_version(), 2);
  EXPECT_THAT(reported, ElementsAre(2, 0));
  const std::vector<QuarantinedVideo> q = ds->Quarantined();
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].sample, 0);
  EXPECT_EQ(q[1].sample, 2);
  EXPECT_EQ(q[1].reason, BadVideoReason::kTruncated);
  EXPECT_EQ(q[1].detail, "ends early");
}

}  // namespace
}  // namespace vjepa::dataworker
