#include "services/dataworker/batch/batch_builder.h"

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/masking/pack.h"
#include "common/masking/random.h"
#include "common/status/status_matchers.h"
#include "common/testing/testing.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "services/dataworker/batch/fake_video.h"
#include "services/dataworker/batch/job_masks.h"
#include "services/dataworker/batch/sampling.h"
#include "services/dataworker/batch/transforms.h"
#include "services/dataworker/video/bad_video.h"

namespace vjepa::dataworker {
namespace {

using masking::DrawKind;
using masking::RandomStream;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::vjepa::testing::ScratchDir;
using ::vjepa::testing::StatusIs;

constexpr int kVideos = 10;

// Video i: its size and length vary with i % 3 (wide, tall and short, one frame past the
// window); its pixels are PatternFrame(…, seed i).
struct VideoShape {
  int width;
  int height;
  int64_t frames;
};
VideoShape ShapeOf(int i) {
  switch (i % 3) {
    case 0:
      return {64, 48, 100};
    case 1:
      return {40, 72, 5};
    default:
      return {80, 40, 9};
  }
}

int IndexOf(const std::string& path) {
  const std::string name = std::filesystem::path(path).stem().string();  // "v<i>"
  return std::stoi(name.substr(1));
}

// The videos of a test: which paths fail and how, and how often each was opened.
class FakeVideos {
 public:
  void FailOpen(int video, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    open_errors_[video] = std::move(status);
  }
  void FailDecode(int video, absl::Status status) {
    std::lock_guard<std::mutex> lock(mu_);
    decode_errors_[video] = std::move(status);
  }
  int opens(int video) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = opens_.find(video);
    return it == opens_.end() ? 0 : it->second;
  }

  BuilderOptions Options() {
    BuilderOptions options;
    options.open_video =
        [this](const std::string& path) -> absl::StatusOr<std::unique_ptr<VideoReader>> {
      const int i = IndexOf(path);
      std::lock_guard<std::mutex> lock(mu_);
      ++opens_[i];
      if (auto it = open_errors_.find(i); it != open_errors_.end()) return it->second;
      const VideoShape s = ShapeOf(i);
      auto reader = std::make_unique<fakes::FakeVideoReader>(s.width, s.height, s.frames,
                                                             static_cast<uint32_t>(i));
      if (auto it = decode_errors_.find(i); it != decode_errors_.end()) {
        reader->FailDecodeWith(it->second);
      }
      return std::unique_ptr<VideoReader>(std::move(reader));
    };
    return options;
  }

 private:
  mutable std::mutex mu_;
  std::map<int, absl::Status> open_errors_;
  std::map<int, absl::Status> decode_errors_;
  std::map<int, int> opens_;
};

spec::JobSpec PretrainSpec(int64_t seed = 234) {
  absl::StatusOr<spec::JobSpec> s = spec::ParseJobSpec(
      absl::StrCat("name: t\nseed: ", seed,
                   "\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\ndata: {frame_step: 2}\n"
                   "optim: {batch_size: 3}\n"));
  EXPECT_OK(s.status());
  return *s;
}

spec::JobSpec ProbeSpec(int64_t seed = 234) {
  absl::StatusOr<spec::JobSpec> s = spec::ParseJobSpec(absl::StrCat(
      "name: p\nkind: probe\nseed: ", seed,
      "\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\ndata: {frame_step: 2}\n"
      "probe: {checkpoint: x, num_classes: 10, batch_size: 2, segments: 2, views: 3}\n"));
  EXPECT_OK(s.status());
  return *s;
}

class BatchBuilderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string manifest;
    for (int i = 0; i < kVideos; ++i) {
      dir_.Write(absl::StrCat("v", i, ".mp4"), "not read by the fake");
      absl::StrAppend(&manifest, "v", i, ".mp4 ", (i * 7) % 10, "\n");
    }
    dir_.Write("m.csv", manifest);
    ASSERT_OK_AND_ASSIGN(roots_, DataRoots::Create({dir_.path()}));
  }

  std::shared_ptr<Dataset> LoadDataset() {
    absl::StatusOr<std::shared_ptr<Dataset>> ds = Dataset::Load(roots_, "m.csv", "");
    EXPECT_OK(ds.status());
    return *ds;
  }

  std::unique_ptr<BatchBuilder> MakeBuilder(const spec::JobSpec& spec,
                                            std::shared_ptr<Dataset> dataset, FakeVideos* videos) {
    absl::StatusOr<std::unique_ptr<BatchBuilder>> b =
        BatchBuilder::Create(spec, std::move(dataset), videos->Options());
    EXPECT_OK(b.status());
    return b.ok() ? std::move(b).value() : nullptr;
  }

  ScratchDir dir_;
  DataRoots roots_;
};

void ExpectSameBytes(const BuiltBatch& a, const BuiltBatch& b) {
  EXPECT_EQ(a.header.SerializeAsString(), b.header.SerializeAsString());
  ASSERT_EQ(a.clips.size(), b.clips.size());
  for (size_t i = 0; i < a.clips.size(); ++i) EXPECT_TRUE(a.clips[i] == b.clips[i]) << "clip " << i;
  EXPECT_EQ(a.replaced, b.replaced);
}

// The clip the documented recipe gives for batch slot `slot` filled by video `video` found at
// distance `offset` in the permutation.
std::string ExpectedTrainingClip(const spec::JobSpec& spec, int64_t epoch, int64_t batch, int slot,
                                 int64_t offset, int video) {
  const VideoShape s = ShapeOf(video);
  const uint64_t seed = static_cast<uint64_t>(spec.seed);
  RandomStream start =
      RandomStream::ForBatch(seed, DrawKind::kClipStart, epoch, batch).Derive(slot).Derive(offset);
  RandomStream crop =
      RandomStream::ForBatch(seed, DrawKind::kCrop, epoch, batch).Derive(slot).Derive(offset);
  RandomStream flip =
      RandomStream::ForBatch(seed, DrawKind::kFlip, epoch, batch).Derive(slot).Derive(offset);
  const std::vector<int64_t> indices = TrainingClipIndices(
      s.frames, static_cast<int>(spec.model.frames), static_cast<int>(spec.data.frame_step), start);
  const CropBox box = RandomResizedCrop(s.width, s.height, RrcParams{}, crop);
  const bool flipped = flip.Bernoulli(spec.data.flip);
  const ClipGeometry g{static_cast<int>(spec.model.frames), static_cast<int>(spec.model.crop),
                       static_cast<int>(spec.model.patch), static_cast<int>(spec.model.tubelet)};
  std::string tokens(static_cast<size_t>(g.clip_bytes()), '\0');
  FrameScratch scratch;
  for (size_t t = 0; t < indices.size(); ++t) {
    const fakes::MatFrameView frame(
        fakes::PatternFrame(s.width, s.height, indices[t], static_cast<uint32_t>(video)));
    EXPECT_OK(ConvertTrainingFrame(frame, box, g.crop, &scratch));
    ScatterFrame(scratch.resized, static_cast<int>(t), flipped, g,
                 reinterpret_cast<uint8_t*>(tokens.data()));
  }
  return tokens;
}

TEST_F(BatchBuilderTest, TwoWorkersProduceTheSameBytes) {
  FakeVideos videos_a;
  FakeVideos videos_b;
  const spec::JobSpec spec = PretrainSpec();
  auto a = MakeBuilder(spec, LoadDataset(), &videos_a);
  auto b = MakeBuilder(spec, LoadDataset(), &videos_b);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->batches_per_epoch(), kVideos / 3);
  for (auto [epoch, batch] : {std::pair<int64_t, int64_t>{0, 0}, {1, 2}, {5, 1}}) {
    ASSERT_OK_AND_ASSIGN(BuiltBatch x, a->Build(epoch, batch));
    ASSERT_OK_AND_ASSIGN(BuiltBatch y, b->Build(epoch, batch));
    ExpectSameBytes(x, y);
  }
  ASSERT_OK_AND_ASSIGN(BuiltBatch first, a->Build(0, 0));
  ASSERT_OK_AND_ASSIGN(BuiltBatch other, a->Build(0, 1));
  EXPECT_NE(first.clips[0], other.clips[0]);
  // Another seed: another permutation and other draws.
  FakeVideos videos_c;
  auto c = MakeBuilder(PretrainSpec(235), LoadDataset(), &videos_c);
  ASSERT_OK_AND_ASSIGN(BuiltBatch reseeded, c->Build(0, 0));
  EXPECT_NE(first.header.SerializeAsString(), reseeded.header.SerializeAsString());
}

TEST_F(BatchBuilderTest, ClipsFollowTheDocumentedRecipe) {
  FakeVideos videos;
  const spec::JobSpec spec = PretrainSpec();
  auto builder = MakeBuilder(spec, LoadDataset(), &videos);
  ASSERT_NE(builder, nullptr);
  int flips = 0;
  for (int64_t epoch = 0; epoch < 4; ++epoch) {
    const std::vector<int64_t> perm = EpochPermutation(234, epoch, kVideos);
    for (int64_t batch = 0; batch < builder->batches_per_epoch(); ++batch) {
      ASSERT_OK_AND_ASSIGN(BuiltBatch built, builder->Build(epoch, batch));
      const v1::BatchHeader& h = built.header;
      ASSERT_EQ(h.sample_ids_size(), 3);
      ASSERT_EQ(built.clips.size(), 3u);
      for (int slot = 0; slot < 3; ++slot) {
        const int64_t sample = perm[batch * 3 + slot];
        EXPECT_EQ(h.sample_ids(slot), sample);
        EXPECT_TRUE(built.clips[slot] ==
                    ExpectedTrainingClip(spec, epoch, batch, slot, 0, static_cast<int>(sample)))
            << "epoch " << epoch << " batch " << batch << " slot " << slot;
        RandomStream flip = RandomStream::ForBatch(234, DrawKind::kFlip, epoch, batch).Derive(slot);
        flips += flip.Derive(0).Bernoulli(0.5) ? 1 : 0;
      }
      EXPECT_EQ(built.replaced, 0);
      EXPECT_GT(built.seconds.convert + built.seconds.patchify + built.seconds.decode, 0);
    }
  }
  EXPECT_GT(flips, 0);  // the recipe was checked with flipped and unflipped clips
  EXPECT_LT(flips, 36);
}

TEST_F(BatchBuilderTest, HeaderCarriesIdentityShapesAndMasks) {
  FakeVideos videos;
  const spec::JobSpec spec = PretrainSpec();
  std::shared_ptr<Dataset> ds = LoadDataset();
  auto builder = MakeBuilder(spec, ds, &videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch built, builder->Build(3, 2));
  const v1::BatchHeader& h = built.header;
  EXPECT_EQ(h.epoch(), 3);
  EXPECT_EQ(h.batch_index(), 2);
  EXPECT_EQ(h.seed(), 234u);
  EXPECT_EQ(h.batch_size(), 3);
  EXPECT_EQ(h.num_tokens(), 8);      // 2 × 2 × 2
  EXPECT_EQ(h.token_bytes(), 1536);  // 2 · 16 · 16 · 3
  EXPECT_EQ(h.frames(), 4);
  EXPECT_EQ(h.crop(), 32);
  EXPECT_EQ(h.patch(), 16);
  EXPECT_EQ(h.tubelet(), 2);
  EXPECT_EQ(h.segments(), 1);
  EXPECT_EQ(h.views(), 1);
  EXPECT_EQ(h.labels_size(), 0);
  EXPECT_EQ(h.replaced_samples(), 0);
  EXPECT_EQ(h.manifest_sha256(), ds->identity().manifest_sha256);
  EXPECT_EQ(h.recipe_version(), kRecipeVersion);
  EXPECT_TRUE(h.job_id().empty());
  EXPECT_TRUE(h.lease_id().empty());
  for (const std::string& clip : built.clips) EXPECT_EQ(clip.size(), 8u * 1536u);
  EXPECT_EQ(built.bytes(), static_cast<int64_t>(h.ByteSizeLong() + 3 * 8 * 1536));

  // One MaskIndices per spec mask, equal to the generators' output for this batch.
  ASSERT_EQ(h.masks_size(), static_cast<int>(spec.mask.size()));
  ASSERT_OK_AND_ASSIGN(auto generators, MakeJobMaskGenerators(spec));
  for (int i = 0; i < h.masks_size(); ++i) {
    const v1::MaskIndices& m = h.masks(i);
    masking::PackedMasks packed;
    packed.batch = 3;
    packed.context_length = m.context_length();
    packed.target_length = m.target_length();
    packed.element_bytes = m.element_bytes();
    packed.context = m.context_idx();
    packed.target = m.target_idx();
    core::StatusOr<masking::BatchMasks> got = masking::UnpackMasks(packed, 3, 8);
    ASSERT_TRUE(got.ok()) << got.status();
    core::StatusOr<masking::BatchMasks> want =
        generators[i]->Generate(masking::BatchKey{234, 3, 2}, i, 3);
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(got->context, want->context);
    EXPECT_EQ(got->target, want->target);
    EXPECT_GT(m.target_length(), 0);
  }
}

TEST_F(BatchBuilderTest, BadVideoIsReplacedByTheNextEntryWhateverTheWorkerKnew) {
  const spec::JobSpec spec = PretrainSpec();
  const std::vector<int64_t> perm = EpochPermutation(234, 0, kVideos);
  const int bad = static_cast<int>(perm[4]);  // batch 1, slot 1
  const absl::Status not_a_container =
      BadVideo(BadVideoReason::kNotAContainer, "v.mp4", "no demuxer");

  // A worker that learns it now.
  FakeVideos fresh_videos;
  fresh_videos.FailOpen(bad, not_a_container);
  std::shared_ptr<Dataset> fresh_ds = LoadDataset();
  std::vector<QuarantinedVideo> reported;
  fresh_ds->SetQuarantineListener([&](const QuarantinedVideo& v) { reported.push_back(v); });
  auto fresh = MakeBuilder(spec, fresh_ds, &fresh_videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch a, fresh->Build(0, 1));
  EXPECT_EQ(a.replaced, 1);
  EXPECT_EQ(a.header.replaced_samples(), 1);
  EXPECT_THAT(a.header.sample_ids(), ElementsAre(perm[3], perm[5], perm[5]));
  EXPECT_TRUE(a.clips[1] == ExpectedTrainingClip(spec, 0, 1, 1, 1, static_cast<int>(perm[5])));
  EXPECT_TRUE(a.clips[2] == ExpectedTrainingClip(spec, 0, 1, 2, 0, static_cast<int>(perm[5])));
  ASSERT_EQ(reported.size(), 1u);
  EXPECT_EQ(reported[0].sample, bad);
  EXPECT_EQ(reported[0].reason, BadVideoReason::kNotAContainer);
  EXPECT_EQ(reported[0].path, absl::StrCat("v", bad, ".mp4"));
  EXPECT_TRUE(fresh_ds->IsQuarantined(bad));
  EXPECT_EQ(fresh_videos.opens(bad), 1);
  // Once known, it is skipped without being opened again, with the same bytes.
  ASSERT_OK_AND_ASSIGN(BuiltBatch again, fresh->Build(0, 1));
  ExpectSameBytes(a, again);
  EXPECT_EQ(fresh_videos.opens(bad), 1);
  EXPECT_EQ(reported.size(), 1u);

  // A worker that already knew (its dataset has the quarantine from the coordinator).
  FakeVideos known_videos;
  known_videos.FailOpen(bad, not_a_container);
  std::shared_ptr<Dataset> known_ds = LoadDataset();
  known_ds->Quarantine({bad, "v.mp4", BadVideoReason::kNotAContainer, "reported"});
  auto known = MakeBuilder(spec, known_ds, &known_videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch b, known->Build(0, 1));
  ExpectSameBytes(a, b);
  EXPECT_EQ(known_videos.opens(bad), 0);

  // A worker where the file is fine would differ: the replacement changed the batch.
  FakeVideos good_videos;
  auto good = MakeBuilder(spec, LoadDataset(), &good_videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch c, good->Build(0, 1));
  EXPECT_FALSE(c.clips[1] == a.clips[1]);
}

TEST_F(BatchBuilderTest, AFailureInsideOneClipDoesNotSkipTheVideoForOtherClips) {
  const spec::JobSpec spec = PretrainSpec();
  const std::vector<int64_t> perm = EpochPermutation(234, 0, kVideos);
  const int video = static_cast<int>(perm[4]);  // batch 1, slot 1
  // A worker failed on one window of this video (a decode error, whole_file false) while
  // building another batch; for batch 1 the video decodes. Its batch must equal that of a worker
  // that never saw the failure: the video is tried again, not skipped.
  FakeVideos videos;
  std::shared_ptr<Dataset> knows = LoadDataset();
  knows->Quarantine(
      {video, "v.mp4", BadVideoReason::kDecodeError, "at packet 12", /*whole_file=*/false});
  auto a = MakeBuilder(spec, knows, &videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch with_knowledge, a->Build(0, 1));
  EXPECT_EQ(videos.opens(video), 1);
  EXPECT_EQ(with_knowledge.replaced, 0);
  FakeVideos fresh_videos;
  auto b = MakeBuilder(spec, LoadDataset(), &fresh_videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch fresh, b->Build(0, 1));
  ExpectSameBytes(with_knowledge, fresh);

  // A decode failure is recorded as not whole-file.
  FakeVideos failing;
  failing.FailDecode(video, BadVideo(BadVideoReason::kDecodeError, "v.mp4", "at packet 3"));
  std::shared_ptr<Dataset> ds = LoadDataset();
  auto c = MakeBuilder(spec, ds, &failing);
  ASSERT_OK_AND_ASSIGN(BuiltBatch replaced, c->Build(0, 1));
  EXPECT_EQ(replaced.replaced, 1);
  ASSERT_EQ(ds->Quarantined().size(), 1u);
  EXPECT_FALSE(ds->Quarantined()[0].whole_file);
  EXPECT_FALSE(ds->IsQuarantinedWholeFile(video));
  ASSERT_OK_AND_ASSIGN(BuiltBatch again, c->Build(0, 1));
  ExpectSameBytes(replaced, again);
  EXPECT_EQ(failing.opens(video), 2);
}

TEST_F(BatchBuilderTest, ConsecutiveBadVideosAndWrapping) {
  const spec::JobSpec spec = PretrainSpec();
  const std::vector<int64_t> perm = EpochPermutation(234, 2, kVideos);
  // Batch 2 covers permutation slots 6, 7, 8; 8 and 9 are bad, so slot 2 wraps to slot 0.
  FakeVideos videos;
  videos.FailOpen(static_cast<int>(perm[8]), BadVideo(BadVideoReason::kEmpty, "v", "0 bytes"));
  videos.FailDecode(static_cast<int>(perm[9]),
                    BadVideo(BadVideoReason::kDecodeError, "v", "packet 3"));
  std::shared_ptr<Dataset> ds = LoadDataset();
  auto builder = MakeBuilder(spec, ds, &videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch built, builder->Build(2, 2));
  EXPECT_THAT(built.header.sample_ids(), ElementsAre(perm[6], perm[7], perm[0]));
  EXPECT_EQ(built.replaced, 1);
  EXPECT_TRUE(built.clips[2] == ExpectedTrainingClip(spec, 2, 2, 2, 2, static_cast<int>(perm[0])));
  const std::vector<QuarantinedVideo> q = ds->Quarantined();
  ASSERT_EQ(q.size(), 2u);
  std::set<BadVideoReason> reasons{q[0].reason, q[1].reason};
  EXPECT_EQ(reasons,
            (std::set<BadVideoReason>{BadVideoReason::kEmpty, BadVideoReason::kDecodeError}));
  EXPECT_EQ(ds->quarantine_version(), 2);
}

TEST_F(BatchBuilderTest, MissingFilesAreQuarantinedToo) {
  const spec::JobSpec spec = PretrainSpec();
  const std::vector<int64_t> perm = EpochPermutation(234, 0, kVideos);
  std::filesystem::remove(dir_.File(absl::StrCat("v", perm[0], ".mp4")));
  FakeVideos videos;
  std::shared_ptr<Dataset> ds = LoadDataset();
  auto builder = MakeBuilder(spec, ds, &videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch built, builder->Build(0, 0));
  EXPECT_EQ(built.header.sample_ids(0), perm[1]);
  ASSERT_EQ(ds->Quarantined().size(), 1u);
  EXPECT_EQ(ds->Quarantined()[0].reason, BadVideoReason::kMissing);
  EXPECT_EQ(videos.opens(static_cast<int>(perm[0])), 0);
}

TEST_F(BatchBuilderTest, LoadDependentFailuresFailTheWholeBatch) {
  const spec::JobSpec spec = PretrainSpec();
  const std::vector<int64_t> perm = EpochPermutation(234, 0, kVideos);
  {
    FakeVideos videos;
    videos.FailDecode(static_cast<int>(perm[2]), absl::DeadlineExceededError("decode too slow"));
    std::shared_ptr<Dataset> ds = LoadDataset();
    auto builder = MakeBuilder(spec, ds, &videos);
    EXPECT_THAT(builder->Build(0, 0).status(),
                StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("decode too slow")));
    EXPECT_EQ(ds->quarantine_version(), 0);  // never quarantined for a timeout
    EXPECT_OK(builder->Build(0, 1).status());
  }
  {
    FakeVideos videos;
    videos.FailOpen(static_cast<int>(perm[1]), absl::UnavailableError("disk went away"));
    std::shared_ptr<Dataset> ds = LoadDataset();
    auto builder = MakeBuilder(spec, ds, &videos);
    EXPECT_THAT(builder->Build(0, 0).status(),
                StatusIs(absl::StatusCode::kUnavailable, HasSubstr("disk went away")));
    EXPECT_EQ(ds->quarantine_version(), 0);
  }
  {
    // The batch's own wall-clock bound.
    FakeVideos videos;
    BuilderOptions options = videos.Options();
    options.batch_timeout = absl::ZeroDuration();
    ASSERT_OK_AND_ASSIGN(auto builder, BatchBuilder::Create(spec, LoadDataset(), options));
    EXPECT_THAT(builder->Build(0, 0).status(),
                StatusIs(absl::StatusCode::kDeadlineExceeded, ::testing::_));
  }
}

TEST_F(BatchBuilderTest, NoUsableVideoIsResourceExhausted) {
  FakeVideos videos;
  for (int i = 0; i < kVideos; ++i) {
    videos.FailOpen(i, BadVideo(BadVideoReason::kTruncated, "v", "ends early"));
  }
  std::shared_ptr<Dataset> ds = LoadDataset();
  auto builder = MakeBuilder(PretrainSpec(), ds, &videos);
  EXPECT_THAT(builder->Build(0, 0).status(),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("no usable video")));
  EXPECT_EQ(ds->quarantine_version(), kVideos);
  for (int i = 0; i < kVideos; ++i) EXPECT_EQ(videos.opens(i), 1);
}

TEST_F(BatchBuilderTest, RefusesIndicesOutsideTheEpochAndSpecsItCannotServe) {
  FakeVideos videos;
  auto builder = MakeBuilder(PretrainSpec(), LoadDataset(), &videos);
  EXPECT_THAT(builder->Build(0, 3).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
  EXPECT_THAT(builder->Build(-1, 0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  spec::JobSpec clips = PretrainSpec();
  clips.data.num_clips = 2;
  EXPECT_THAT(BatchBuilder::Create(clips, LoadDataset(), videos.Options()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("data.num_clips")));
  spec::JobSpec big = PretrainSpec();
  big.optim.batch_size = 11;
  EXPECT_THAT(BatchBuilder::Create(big, LoadDataset(), videos.Options()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fewer than the batch")));
  spec::JobSpec probe = ProbeSpec();
  probe.probe.num_classes = 5;  // labels go up to 9
  EXPECT_THAT(BatchBuilder::Create(probe, LoadDataset(), videos.Options()).status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("dataset.manifest m.csv row 1 (v1.mp4): label 7"),
                             HasSubstr("probe.num_classes"))));
}

// The clips of `video` under the documented evaluation recipe, in (segment, view) order.
std::vector<std::string> ExpectedEvalClips(const spec::JobSpec& spec, int video) {
  const VideoShape s = ShapeOf(video);
  const ClipGeometry g{static_cast<int>(spec.model.frames), static_cast<int>(spec.model.crop),
                       static_cast<int>(spec.model.patch), static_cast<int>(spec.model.tubelet)};
  const int segments = static_cast<int>(spec.probe.segments);
  const int views = static_cast<int>(spec.probe.views);
  const auto indices =
      EvalClipIndices(s.frames, g.frames, static_cast<int>(spec.data.frame_step), segments);
  const EvalGeometry eval = EvalViews(s.width, s.height, g.crop, views);
  std::vector<std::string> clips;
  for (int seg = 0; seg < segments; ++seg) {
    for (int view = 0; view < views; ++view) {
      std::string tokens(static_cast<size_t>(g.clip_bytes()), '\0');
      FrameScratch scratch;
      for (int t = 0; t < g.frames; ++t) {
        const fakes::MatFrameView frame(
            fakes::PatternFrame(s.width, s.height, indices[seg][t], static_cast<uint32_t>(video)));
        EXPECT_OK(ConvertEvalFrame(frame, eval, &scratch));
        const CropBox& b = eval.views[view];
        ScatterFrame(scratch.resized(cv::Rect(b.x, b.y, b.w, b.h)), t, false, g,
                     reinterpret_cast<uint8_t*>(tokens.data()));
      }
      clips.push_back(std::move(tokens));
    }
  }
  return clips;
}

TEST_F(BatchBuilderTest, ProbeBatchesHaveLabelsViewsAndNoMasks) {
  FakeVideos videos;
  const spec::JobSpec spec = ProbeSpec();
  std::shared_ptr<Dataset> ds = LoadDataset();
  auto builder = MakeBuilder(spec, ds, &videos);
  ASSERT_NE(builder, nullptr);
  EXPECT_EQ(builder->batches_per_epoch(), 5);
  EXPECT_EQ(builder->plan().train_batches, 5);
  EXPECT_EQ(builder->plan().val_batches, 0);
  EXPECT_EQ(builder->val_dataset(), nullptr);
  ASSERT_OK_AND_ASSIGN(BuiltBatch built, builder->Build(0, 3));
  const v1::BatchHeader& h = built.header;
  // Manifest order: batch 3 of B = 2 is rows 6 and 7.
  EXPECT_THAT(h.sample_ids(), ElementsAre(6, 7));
  EXPECT_THAT(h.labels(), ElementsAre(ds->entry(6).label, ds->entry(7).label));
  EXPECT_THAT(h.labels(), ElementsAre(2, 9));
  EXPECT_EQ(h.epoch(), 0);
  EXPECT_EQ(h.batch_index(), 3);
  EXPECT_EQ(h.split(), "train");
  EXPECT_EQ(h.total_batches(), 5);
  EXPECT_EQ(h.manifest_sha256(), ds->identity().manifest_sha256);
  EXPECT_EQ(h.masks_size(), 0);
  EXPECT_EQ(h.segments(), 2);
  EXPECT_EQ(h.views(), 3);
  ASSERT_EQ(built.clips.size(), 2u * 2u * 3u);

  // Clip (sample, segment, view) against the documented evaluation recipe.
  for (int slot = 0; slot < 2; ++slot) {
    const std::vector<std::string> want = ExpectedEvalClips(spec, 6 + slot);
    for (int c = 0; c < 6; ++c) {
      EXPECT_TRUE(built.clips[slot * 6 + c] == want[c]) << "slot " << slot << " clip " << c;
    }
  }
  // Views of a non-square video differ.
  EXPECT_NE(built.clips[0], built.clips[2]);
  // No randomness: another seed gives the same batch (only the header's seed differs).
  FakeVideos other_videos;
  auto other = MakeBuilder(ProbeSpec(999), LoadDataset(), &other_videos);
  ASSERT_OK_AND_ASSIGN(BuiltBatch o, other->Build(0, 3));
  EXPECT_EQ(o.header.seed(), 999u);
  o.header.set_seed(234);
  ExpectSameBytes(o, built);
  // Every batch lies in epoch 0.
  EXPECT_THAT(builder->Build(1, 0).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the job's 5")));
  EXPECT_THAT(builder->Build(0, 5).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside the job's 5")));
}

spec::JobSpec ProbeValSpec() {
  absl::StatusOr<spec::JobSpec> s = spec::ParseJobSpec(
      "name: p\nkind: probe\nseed: 7\nmodel: {preset: nano}\ndataset: {manifest: m.csv}\n"
      "data: {frame_step: 2}\n"
      "probe: {checkpoint: x, num_classes: 10, batch_size: 4, segments: 1, views: 2, "
      "val_manifest: val.csv}\n");
  EXPECT_OK(s.status());
  return *s;
}

// The validation manifest of the probe tests: rows 0..4 are videos 3, 8, 0, 5, 1.
constexpr int kValVideos[] = {3, 8, 0, 5, 1};
constexpr int kValLabels[] = {1, 2, 0, 9, 4};

class ProbeValTest : public BatchBuilderTest {
 protected:
  void SetUp() override {
    BatchBuilderTest::SetUp();
    std::string manifest;
    for (int i = 0; i < 5; ++i) {
      absl::StrAppend(&manifest, "v", kValVideos[i], ".mp4 ", kValLabels[i], "\n");
    }
    dir_.Write("val.csv", manifest);
  }
  std::shared_ptr<Dataset> LoadVal() {
    absl::StatusOr<std::shared_ptr<Dataset>> ds = Dataset::Load(roots_, "val.csv", "");
    EXPECT_OK(ds.status());
    return *ds;
  }
};

TEST_F(ProbeValTest, PlanRunsThroughTheTrainThenTheValManifestInManifestOrder) {
  FakeVideos videos;
  const spec::JobSpec spec = ProbeValSpec();
  std::shared_ptr<Dataset> train = LoadDataset();
  std::shared_ptr<Dataset> val = LoadVal();
  ASSERT_OK_AND_ASSIGN(auto builder, BatchBuilder::Create(spec, train, val, videos.Options()));
  // B = 4: train 10 rows → 4, 4, 2; val 5 rows → 4, 1.
  EXPECT_EQ(builder->plan().train_batches, 3);
  EXPECT_EQ(builder->plan().val_batches, 2);
  EXPECT_EQ(builder->batches_per_epoch(), 5);
  ASSERT_EQ(builder->val_dataset(), val.get());
  struct Want {
    std::string split;
    std::vector<int64_t> rows;
  };
  const std::vector<Want> wants = {
      {"train", {0, 1, 2, 3}},
      {"train", {4, 5, 6, 7}},
      {"train", {8, 9}},
      {"val", {0, 1, 2, 3}},
      {"val", {4}},
  };
  for (int64_t g = 0; g < 5; ++g) {
    SCOPED_TRACE(absl::StrCat("g ", g));
    ASSERT_OK_AND_ASSIGN(BuiltBatch built, builder->Build(0, g));
    const v1::BatchHeader& h = built.header;
    const Want& want = wants[static_cast<size_t>(g)];
    const bool is_val = want.split == "val";
    const Dataset& ds = is_val ? *val : *train;
    EXPECT_EQ(h.split(), want.split);
    EXPECT_EQ(h.total_batches(), 5);
    EXPECT_EQ(h.epoch(), 0);
    EXPECT_EQ(h.batch_index(), g);
    EXPECT_EQ(h.batch_size(), static_cast<int>(want.rows.size()));
    EXPECT_THAT(h.sample_ids(), ::testing::ElementsAreArray(want.rows));
    EXPECT_EQ(h.manifest_sha256(), ds.identity().manifest_sha256);
    EXPECT_EQ(h.replaced_samples(), 0);
    EXPECT_EQ(h.masks_size(), 0);
    ASSERT_EQ(h.labels_size(), static_cast<int>(want.rows.size()));
    ASSERT_EQ(built.clips.size(), want.rows.size() * 2);  // 1 segment × 2 views
    for (size_t i = 0; i < want.rows.size(); ++i) {
      const int64_t row = want.rows[i];
      const int video = is_val ? kValVideos[row] : static_cast<int>(row);
      EXPECT_EQ(h.labels(static_cast<int>(i)), is_val ? kValLabels[row] : (row * 7) % 10);
      const std::vector<std::string> clips = ExpectedEvalClips(spec, video);
      EXPECT_TRUE(built.clips[2 * i] == clips[0]) << "row " << row;
      EXPECT_TRUE(built.clips[2 * i + 1] == clips[1]) << "row " << row;
    }
  }
  EXPECT_NE(val->identity().manifest_sha256, train->identity().manifest_sha256);
  EXPECT_THAT(builder->Build(0, 5).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("outside")));
}

TEST_F(ProbeValTest, ABadValVideoIsReplacedByTheNextRowOfItsOwnManifest) {
  FakeVideos videos;
  videos.FailOpen(8, BadVideo(BadVideoReason::kNotAContainer, "v", "no demuxer"));  // val row 1
  videos.FailOpen(1, BadVideo(BadVideoReason::kEmpty, "v", "0 bytes"));             // val row 4
  std::shared_ptr<Dataset> train = LoadDataset();
  std::shared_ptr<Dataset> val = LoadVal();
  ASSERT_OK_AND_ASSIGN(auto builder,
                       BatchBuilder::Create(ProbeValSpec(), train, val, videos.Options()));
  ASSERT_OK_AND_ASSIGN(BuiltBatch first, builder->Build(0, 3));
  EXPECT_THAT(first.header.sample_ids(), ElementsAre(0, 2, 2, 3));
  EXPECT_THAT(first.header.labels(), ElementsAre(1, 0, 0, 9));
  EXPECT_EQ(first.header.replaced_samples(), 1);
  // The last row wraps to the first row of the val manifest, not of the train manifest.
  ASSERT_OK_AND_ASSIGN(BuiltBatch last, builder->Build(0, 4));
  EXPECT_THAT(last.header.sample_ids(), ElementsAre(0));
  EXPECT_THAT(last.header.labels(), ElementsAre(1));
  EXPECT_EQ(last.header.split(), "val");
  const std::vector<QuarantinedVideo> q = val->Quarantined();
  ASSERT_EQ(q.size(), 2u);
  EXPECT_EQ(q[0].sample, 1);
  EXPECT_EQ(q[0].path, "v8.mp4");
  EXPECT_EQ(q[1].sample, 4);
  EXPECT_EQ(train->quarantine_version(), 0);
}

TEST_F(ProbeValTest, LabelsOutsideNumClassesOrAMissingValDatasetAreRefused) {
  FakeVideos videos;
  dir_.Write("val.csv", "v3.mp4 1\nv8.mp4 2\nv0.mp4 12\n");
  EXPECT_THAT(
      BatchBuilder::Create(ProbeValSpec(), LoadDataset(), LoadVal(), videos.Options()).status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("probe.val_manifest val.csv row 2"),
                     HasSubstr("label 12 outside [0, 10)"))));
  dir_.Write("val.csv", "v3.mp4 -1\n");
  EXPECT_THAT(
      BatchBuilder::Create(ProbeValSpec(), LoadDataset(), LoadVal(), videos.Options()).status(),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("probe.val_manifest val.csv row 0 (v3.mp4): label -1")));
  dir_.Write("val.csv", "v3.mp4 1\n");
  // probe.val_manifest set, its dataset not given; a val dataset without probe.val_manifest.
  EXPECT_THAT(
      BatchBuilder::Create(ProbeValSpec(), LoadDataset(), nullptr, videos.Options()).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("probe.val_manifest")));
  EXPECT_THAT(
      BatchBuilder::Create(ProbeSpec(), LoadDataset(), LoadVal(), videos.Options()).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("validation dataset")));
  EXPECT_THAT(
      BatchBuilder::Create(PretrainSpec(), LoadDataset(), LoadVal(), videos.Options()).status(),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("validation dataset")));
}

TEST_F(BatchBuilderTest, ConcurrentBuildsMatchSequentialOnes) {
  FakeVideos videos;
  const std::vector<int64_t> perm = EpochPermutation(234, 1, kVideos);
  videos.FailOpen(static_cast<int>(perm[4]), BadVideo(BadVideoReason::kNoVideoStream, "v", ""));
  auto builder = MakeBuilder(PretrainSpec(), LoadDataset(), &videos);
  std::vector<BuiltBatch> sequential;
  for (int e = 0; e < 2; ++e) {
    for (int b = 0; b < 3; ++b) {
      ASSERT_OK_AND_ASSIGN(BuiltBatch x, builder->Build(e, b));
      sequential.push_back(std::move(x));
    }
  }
  FakeVideos videos2;
  videos2.FailOpen(static_cast<int>(perm[4]), BadVideo(BadVideoReason::kNoVideoStream, "v", ""));
  auto shared = MakeBuilder(PretrainSpec(), LoadDataset(), &videos2);
  std::vector<absl::StatusOr<BuiltBatch>> results(6, absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (int i = 0; i < 6; ++i) {
    threads.emplace_back([&, i] { results[i] = shared->Build(i / 3, i % 3); });
  }
  for (std::thread& t : threads) t.join();
  for (int i = 0; i < 6; ++i) {
    ASSERT_OK(results[i].status());
    ExpectSameBytes(*results[i], sequential[i]);
  }
}

}  // namespace
}  // namespace vjepa::dataworker
