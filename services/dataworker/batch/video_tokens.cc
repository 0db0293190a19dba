#include "services/dataworker/batch/video_tokens.h"

#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "services/dataworker/batch/batch_builder.h"
#include "services/dataworker/batch/dataset.h"
#include "services/dataworker/video/frame_index.h"
#include "services/dataworker/video/video_reader.h"

namespace vjepa::dataworker {
namespace {

namespace fs = std::filesystem;

// A one-row manifest in a private temporary directory, removed on destruction.
class TempManifest {
 public:
  TempManifest() {
    std::string pattern = (fs::temp_directory_path() / "vjepa-video-tokens-XXXXXX").string();
    if (mkdtemp(pattern.data()) != nullptr) dir_ = pattern;
  }
  ~TempManifest() {
    std::error_code ec;
    if (!dir_.empty()) fs::remove_all(dir_, ec);
  }
  const std::string& dir() const { return dir_; }

 private:
  std::string dir_;
};

absl::Status Read(const std::string& path, const VideoTokensOptions& options, VideoTokens* out) {
  std::error_code ec;
  const fs::path video = fs::absolute(path, ec);
  if (ec || !fs::exists(video, ec)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  TempManifest temp;
  if (temp.dir().empty()) return absl::InternalError("cannot create a temporary directory");
  const std::string manifest = temp.dir() + "/manifest.csv";
  {
    std::ofstream m(manifest);
    m << video.filename().string() << " 0\n";
    if (!m) return absl::InternalError(absl::StrCat(manifest, ": cannot write"));
  }
  const std::string root = video.parent_path().string();
  absl::StatusOr<DataRoots> roots = DataRoots::Create({temp.dir(), root});
  if (!roots.ok()) return roots.status();
  absl::StatusOr<std::shared_ptr<Dataset>> dataset = Dataset::Load(*roots, manifest, root);
  if (!dataset.ok()) return dataset.status();

  spec::JobSpec spec;  // a probe job over this one video: the evaluation transforms
  spec.name = "video-tokens";
  spec.kind = spec::JobKind::kProbe;
  spec.dataset.manifest = manifest;
  spec.dataset.root = root;
  spec.model.frames = options.frames;
  spec.model.crop = options.crop;
  spec.model.patch = options.patch;
  spec.model.tubelet = options.tubelet;
  spec.data.frame_step = options.frame_step;
  // Probe batches draw no masks, but the spec is validated whole: one mask that fits any grid
  // of at least two cells.
  spec::MaskSpec mask;
  mask.type = spec::MaskType::kRandomTube;
  mask.ratio = 0.5;
  mask.context_frames = spec::DefaultContextFrames(options.frames, options.tubelet);
  spec.mask = {mask};
  spec.probe.checkpoint = "none";
  spec.probe.num_classes = 2;
  spec.probe.batch_size = 1;
  spec.probe.segments = options.segments;
  spec.probe.views = options.views;
  // The builder's open indexes the file; the one below for its description reuses that index.
  FrameIndexCache cache;
  BuilderOptions builder_options;
  builder_options.index_cache = &cache;
  absl::StatusOr<std::unique_ptr<BatchBuilder>> builder =
      BatchBuilder::Create(spec, *dataset, builder_options);
  if (!builder.ok()) return builder.status();
  absl::StatusOr<BuiltBatch> batch = (*builder)->Build(0, 0);
  if (!batch.ok()) {
    // With a single row there is no replacement: report the video's own reason.
    const std::vector<QuarantinedVideo> bad = (*dataset)->Quarantined();
    if (!bad.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          path, ": ", std::string(BadVideoReasonName(bad[0].reason)), ": ", bad[0].detail));
    }
    return batch.status();
  }
  absl::StatusOr<std::unique_ptr<VideoReader>> reader =
      VideoReader::Open(video.string(), builder_options.limits, &cache);
  if (reader.ok()) {
    out->codec = (*reader)->info().codec;
    out->width = (*reader)->info().width;
    out->height = (*reader)->info().height;
    out->frames = (*reader)->info().frames;
    out->fps = (*reader)->info().fps;
  }
  out->clips = std::move(batch->clips);
  return absl::OkStatus();
}

}  // namespace

bool ReadVideoTokens(const std::string& path, const VideoTokensOptions& options, VideoTokens* out,
                     std::string* error) {
  absl::Status s = Read(path, options, out);
  if (!s.ok()) {
    *error = std::string(s.message());
    return false;
  }
  return true;
}

}  // namespace vjepa::dataworker
