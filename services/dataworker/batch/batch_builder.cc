#include "services/dataworker/batch/batch_builder.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/masking/random.h"
#include "common/status/status_macros.h"
#include "services/dataworker/batch/job_masks.h"
#include "services/dataworker/batch/sampling.h"
#include "services/dataworker/batch/transforms.h"
#include "services/dataworker/video/bad_video.h"

namespace vjepa::dataworker {
namespace {

using masking::DrawKind;
using masking::RandomStream;

class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  double Seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// The distinct frames of `clips` (ascending) and, per frame, the (clip, slot) pairs it fills.
struct FramePlan {
  std::vector<int64_t> frames;
  std::vector<std::vector<std::pair<int, int>>> targets;
};

FramePlan PlanFrames(const std::vector<std::vector<int64_t>>& clips) {
  std::map<int64_t, std::vector<std::pair<int, int>>> by_frame;
  for (size_t c = 0; c < clips.size(); ++c) {
    for (size_t t = 0; t < clips[c].size(); ++t) {
      by_frame[clips[c][t]].emplace_back(static_cast<int>(c), static_cast<int>(t));
    }
  }
  FramePlan plan;
  for (auto& [frame, targets] : by_frame) {
    plan.frames.push_back(frame);
    plan.targets.push_back(std::move(targets));
  }
  return plan;
}

}  // namespace

int64_t BuiltBatch::bytes() const {
  int64_t total = static_cast<int64_t>(header.ByteSizeLong());
  for (const std::string& clip : clips) total += static_cast<int64_t>(clip.size());
  return total;
}

class BatchBuilder::Impl {
 public:
  spec::JobSpec spec;
  std::shared_ptr<Dataset> dataset;
  std::shared_ptr<Dataset> val_dataset;  // probe jobs with probe.val_manifest
  BuilderOptions options;
  bool probe = false;
  spec::ProbeBatchPlan plan;  // probe jobs
  int batch_size = 0;
  int segments = 1;
  int views = 1;
  int frame_step = 1;
  ClipGeometry geometry;
  RrcParams rrc;
  double flip_p = 0;
  std::vector<std::unique_ptr<masking::MaskGenerator>> masks;

  int clips_per_sample() const { return segments * views; }

  absl::StatusOr<std::unique_ptr<VideoReader>> Open(const std::string& path) const {
    if (options.open_video) return options.open_video(path);
    return VideoReader::Open(path, options.limits, options.index_cache);
  }

  // Fills the clips of batch slot `slot` from row `sample` of `ds`, the candidate at distance
  // `offset` from the slot's own position (in the permutation, or in manifest order for probe
  // jobs).
  absl::Status ProduceSample(const Dataset& ds, int64_t epoch, int64_t batch_index, int slot,
                             int64_t offset, int64_t sample, absl::Time deadline, BuiltBatch* batch,
                             FrameScratch* scratch, bool* whole_file) const;

  // Fills slot `slot` from the first usable candidate `candidate(offset)` of `ds`, offset =
  // 0, 1, ... below min(N, kReplacementLookAhead), quarantining bad videos on the way. `what`
  // names the batch in errors.
  absl::Status FillSlot(Dataset& ds, const std::function<int64_t(int64_t)>& candidate,
                        int64_t epoch, int64_t batch_index, int slot, const std::string& what,
                        absl::Time deadline, BuiltBatch* batch, FrameScratch* scratch) const;

  // The header fields and clip buffers every batch has; `count` samples.
  void StartBatch(int64_t epoch, int64_t batch_index, int count, const Dataset& ds,
                  BuiltBatch* batch) const;
};

absl::Status BatchBuilder::Impl::ProduceSample(const Dataset& ds, int64_t epoch,
                                               int64_t batch_index, int slot, int64_t offset,
                                               int64_t sample, absl::Time deadline,
                                               BuiltBatch* batch, FrameScratch* scratch,
                                               bool* whole_file) const {
  *whole_file = true;  // until the frames of this clip are read
  Stopwatch open_watch;
  absl::StatusOr<std::string> path = ds.ResolvedPath(sample);
  if (!path.ok()) return path.status();
  absl::StatusOr<std::unique_ptr<VideoReader>> reader = Open(*path);
  if (!reader.ok()) return reader.status();
  const double open_s = open_watch.Seconds();
  batch->seconds.decode += open_s;
  const VideoInfo& info = (*reader)->info();
  if (info.frames <= 0) return BadVideo(BadVideoReason::kNoFrames, *path, "no frames");
  if (info.width <= 0 || info.height <= 0) {
    return BadVideo(BadVideoReason::kDecodeError, *path,
                    absl::StrCat("frame size ", info.width, "x", info.height));
  }

  const uint64_t seed = static_cast<uint64_t>(spec.seed);
  const uint64_t u_slot = static_cast<uint64_t>(slot);
  const uint64_t u_offset = static_cast<uint64_t>(offset);
  std::vector<std::vector<int64_t>> clip_indices;
  CropBox box;
  bool flip = false;
  EvalGeometry eval;
  if (probe) {
    clip_indices = EvalClipIndices(info.frames, geometry.frames, frame_step, segments);
    eval = EvalViews(info.width, info.height, geometry.crop, views);
  } else {
    RandomStream start_rng = RandomStream::ForBatch(seed, DrawKind::kClipStart, epoch, batch_index)
                                 .Derive(u_slot)
                                 .Derive(u_offset);
    RandomStream crop_rng = RandomStream::ForBatch(seed, DrawKind::kCrop, epoch, batch_index)
                                .Derive(u_slot)
                                .Derive(u_offset);
    RandomStream flip_rng = RandomStream::ForBatch(seed, DrawKind::kFlip, epoch, batch_index)
                                .Derive(u_slot)
                                .Derive(u_offset);
    clip_indices.push_back(
        TrainingClipIndices(info.frames, geometry.frames, frame_step, start_rng));
    box = RandomResizedCrop(info.width, info.height, rrc, crop_rng);
    flip = flip_rng.Bernoulli(flip_p);
  }
  const FramePlan plan = PlanFrames(clip_indices);

  // The slot's clip buffers, in (segment, view) order.
  std::vector<uint8_t*> tokens(static_cast<size_t>(clips_per_sample()));
  for (int c = 0; c < clips_per_sample(); ++c) {
    tokens[c] = reinterpret_cast<uint8_t*>(
        batch->clips[static_cast<size_t>(slot) * clips_per_sample() + c].data());
  }

  size_t next = 0;  // position in plan.frames of the frame the sink expects next
  double sink_seconds = 0;
  auto sink = [&](int64_t index, const FrameView& frame) -> absl::Status {
    if (next >= plan.frames.size() || plan.frames[next] != index) {
      return BadVideo(BadVideoReason::kDecodeError, *path,
                      absl::StrCat("the reader delivered frame ", index, " out of order"));
    }
    const std::vector<std::pair<int, int>>& targets = plan.targets[next];
    ++next;
    Stopwatch convert_watch;
    if (frame.width() != info.width || frame.height() != info.height) {
      return BadVideo(BadVideoReason::kDecodeError, *path,
                      absl::StrCat("frame ", index, " is ", frame.width(), "x", frame.height(),
                                   ", the stream ", info.width, "x", info.height));
    }
    if (probe) {
      if (absl::Status s = ConvertEvalFrame(frame, eval, scratch); !s.ok()) return s;
    } else {
      if (absl::Status s = ConvertTrainingFrame(frame, box, geometry.crop, scratch); !s.ok()) {
        return s;
      }
    }
    const double convert = convert_watch.Seconds();
    Stopwatch patchify_watch;
    for (const auto& [segment, t] : targets) {
      if (probe) {
        for (int v = 0; v < views; ++v) {
          const CropBox& view = eval.views[v];
          const cv::Mat roi = scratch->resized(cv::Rect(view.x, view.y, view.w, view.h));
          ScatterFrame(roi, t, /*flip=*/false, geometry, tokens[segment * views + v]);
        }
      } else {
        ScatterFrame(scratch->resized, t, flip, geometry, tokens[0]);
      }
    }
    const double patchify = patchify_watch.Seconds();
    batch->seconds.convert += convert;
    batch->seconds.patchify += patchify;
    sink_seconds += convert + patchify;
    return absl::OkStatus();
  };

  *whole_file = false;
  Stopwatch decode_watch;
  DecodeStats stats;
  absl::Status decoded = (*reader)->DecodeFrames(plan.frames, sink, deadline, &stats);
  batch->decode_stats.demux_decode_s += stats.demux_decode_s;
  batch->decode_stats.packets_sent += stats.packets_sent;
  batch->decode_stats.frames_decoded += stats.frames_decoded;
  batch->decode_stats.frames_skipped += stats.frames_skipped;
  batch->decode_stats.frames_repeated += stats.frames_repeated;
  batch->decode_stats.seeks += stats.seeks;
  const double decode_s = std::max(0.0, decode_watch.Seconds() - sink_seconds);
  batch->seconds.decode += decode_s;
  if (!decoded.ok()) return decoded;
  if (next != plan.frames.size()) {
    return BadVideo(
        BadVideoReason::kDecodeError, *path,
        absl::StrCat("the reader delivered ", next, " of ", plan.frames.size(), " frames"));
  }
  batch->sources.push_back(ClipSource{sample, *path, plan.frames, open_s + decode_s});
  return absl::OkStatus();
}

absl::Status BatchBuilder::Impl::FillSlot(Dataset& ds,
                                          const std::function<int64_t(int64_t)>& candidate,
                                          int64_t epoch, int64_t batch_index, int slot,
                                          const std::string& what, absl::Time deadline,
                                          BuiltBatch* batch, FrameScratch* scratch) const {
  const int64_t look_ahead = std::min<int64_t>(ds.size(), kReplacementLookAhead);
  for (int64_t offset = 0; offset < look_ahead; ++offset) {
    const int64_t sample = candidate(offset);
    if (ds.IsQuarantinedWholeFile(sample)) continue;
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat(what, ": past its ", absl::FormatDuration(options.batch_timeout), " bound"));
    }
    bool whole_file = true;
    absl::Status s = ProduceSample(ds, epoch, batch_index, slot, offset, sample, deadline, batch,
                                   scratch, &whole_file);
    if (s.ok()) {
      batch->header.add_sample_ids(sample);
      if (probe) batch->header.add_labels(ds.entry(sample).label);
      if (offset > 0) ++batch->replaced;
      return absl::OkStatus();
    }
    const std::optional<BadVideoReason> reason = BadVideoReasonOf(s);
    if (!reason.has_value()) {
      // Load-dependent (a deadline) or unexpected: the whole batch fails, never a partial one.
      return absl::Status(s.code(), absl::StrCat(what, ", sample ", sample, ": ", s.message()));
    }
    ds.Quarantine(
        QuarantinedVideo{sample, ds.entry(sample).path, *reason, BadVideoDetail(s), whole_file});
  }
  return absl::ResourceExhaustedError(
      absl::StrCat(what, ", slot ", slot, ": no usable video among the next ", look_ahead,
                   " entries", probe ? " of the manifest" : " of the permutation"));
}

void BatchBuilder::Impl::StartBatch(int64_t epoch, int64_t batch_index, int count,
                                    const Dataset& ds, BuiltBatch* batch) const {
  v1::BatchHeader& h = batch->header;
  h.set_epoch(epoch);
  h.set_batch_index(batch_index);
  h.set_seed(static_cast<uint64_t>(spec.seed));
  h.set_batch_size(count);
  h.set_num_tokens(static_cast<int32_t>(geometry.tokens()));
  h.set_token_bytes(static_cast<int32_t>(geometry.token_bytes()));
  h.set_segments(segments);
  h.set_views(views);
  h.set_frames(geometry.frames);
  h.set_crop(geometry.crop);
  h.set_patch(geometry.patch);
  h.set_tubelet(geometry.tubelet);
  h.set_manifest_sha256(ds.identity().manifest_sha256);
  h.set_recipe_version(ds.identity().recipe_version);
  const size_t num_clips = static_cast<size_t>(count) * clips_per_sample();
  batch->clips.reserve(num_clips);
  for (size_t c = 0; c < num_clips; ++c) {
    batch->clips.emplace_back(static_cast<size_t>(geometry.clip_bytes()), '\0');
  }
}

namespace {

// INVALID_ARGUMENT naming the manifest, row and label of the first label outside
// [0, num_classes).
absl::Status CheckLabels(const Dataset& ds, const char* field, const std::string& manifest,
                         int64_t num_classes) {
  for (int64_t i = 0; i < ds.size(); ++i) {
    const int64_t label = ds.entry(i).label;
    if (label < 0 || label >= num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " ", manifest, " row ", i, " (", ds.entry(i).path, "): label ", label,
                       " outside [0, ", num_classes, ") (probe.num_classes)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

BatchBuilder::BatchBuilder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
BatchBuilder::~BatchBuilder() = default;

absl::StatusOr<std::unique_ptr<BatchBuilder>> BatchBuilder::Create(const spec::JobSpec& spec,
                                                                   std::shared_ptr<Dataset> dataset,
                                                                   BuilderOptions options) {
  return Create(spec, std::move(dataset), nullptr, std::move(options));
}

absl::StatusOr<std::unique_ptr<BatchBuilder>> BatchBuilder::Create(
    const spec::JobSpec& spec, std::shared_ptr<Dataset> dataset,
    std::shared_ptr<Dataset> val_dataset, BuilderOptions options) {
  if (dataset == nullptr) return absl::InvalidArgumentError("batch builder: no dataset");
  if (absl::Status s = spec::ValidateJobSpec(spec); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("job spec: ", s.message()));
  }
  auto impl = std::make_unique<Impl>();
  impl->spec = spec;
  impl->probe = spec.kind == spec::JobKind::kProbe;
  impl->geometry =
      ClipGeometry{static_cast<int>(spec.model.frames), static_cast<int>(spec.model.crop),
                   static_cast<int>(spec.model.patch), static_cast<int>(spec.model.tubelet)};
  if (absl::Status s = ValidateGeometry(impl->geometry); !s.ok()) return s;
  impl->frame_step = static_cast<int>(spec.data.frame_step);
  if (spec.data.num_clips != 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("data.num_clips: only 1 clip per video is served, got ", spec.data.num_clips));
  }
  if (impl->probe) {
    impl->batch_size = static_cast<int>(spec.probe.batch_size);
    impl->segments = static_cast<int>(spec.probe.segments);
    impl->views = static_cast<int>(spec.probe.views);
    if (!spec.probe.num_classes.has_value()) {
      return absl::InvalidArgumentError("probe.num_classes: required for probe jobs");
    }
    const bool wants_val = !spec.probe.val_manifest.empty();
    if (wants_val != (val_dataset != nullptr)) {
      return absl::InvalidArgumentError(
          wants_val ? "probe.val_manifest: set, but its dataset was not loaded"
                    : "batch builder: a validation dataset without probe.val_manifest");
    }
    const int64_t classes = *spec.probe.num_classes;
    if (absl::Status s = CheckLabels(*dataset, "dataset.manifest", spec.dataset.manifest, classes);
        !s.ok()) {
      return s;
    }
    if (val_dataset != nullptr) {
      if (absl::Status s =
              CheckLabels(*val_dataset, "probe.val_manifest", spec.probe.val_manifest, classes);
          !s.ok()) {
        return s;
      }
    }
    impl->plan = spec::PlanProbeBatches(spec, dataset->size(),
                                        val_dataset == nullptr ? 0 : val_dataset->size());
  } else {
    if (val_dataset != nullptr) {
      return absl::InvalidArgumentError(
          "batch builder: a validation dataset is for probe jobs only");
    }
    impl->batch_size = static_cast<int>(spec.optim.batch_size);
    impl->rrc =
        RrcParams{spec.data.random_resized_crop.scale.min, spec.data.random_resized_crop.scale.max,
                  spec.data.random_resized_crop.ratio.min, spec.data.random_resized_crop.ratio.max};
    impl->flip_p = spec.data.flip;
    absl::StatusOr<std::vector<std::unique_ptr<masking::MaskGenerator>>> masks =
        MakeJobMaskGenerators(spec);
    if (!masks.ok()) return masks.status();
    impl->masks = std::move(masks).value();
  }
  if (impl->batch_size < 1 || (!impl->probe && dataset->size() < impl->batch_size)) {
    return absl::InvalidArgumentError(absl::StrCat("the manifest has ", dataset->size(),
                                                   " entries, fewer than the batch size ",
                                                   impl->batch_size));
  }
  impl->dataset = std::move(dataset);
  impl->val_dataset = std::move(val_dataset);
  impl->options = std::move(options);
  return std::unique_ptr<BatchBuilder>(new BatchBuilder(std::move(impl)));
}

int64_t BatchBuilder::batches_per_epoch() const {
  if (impl_->probe) return impl_->plan.total();
  return impl_->dataset->size() / impl_->batch_size;
}

const Dataset& BatchBuilder::dataset() const { return *impl_->dataset; }

const Dataset* BatchBuilder::val_dataset() const { return impl_->val_dataset.get(); }

spec::ProbeBatchPlan BatchBuilder::plan() const { return impl_->plan; }

absl::StatusOr<BuiltBatch> BatchBuilder::Build(int64_t epoch, int64_t batch_index) const {
  const Impl& im = *impl_;
  if (im.probe) {
    if (epoch != 0 || batch_index < 0 || batch_index >= im.plan.total()) {
      return absl::InvalidArgumentError(absl::StrCat("probe batch ", batch_index, " of epoch ",
                                                     epoch, ": outside the job's ", im.plan.total(),
                                                     " batches (all in epoch 0)"));
    }
  } else if (epoch < 0 || batch_index < 0 || batch_index >= batches_per_epoch()) {
    return absl::InvalidArgumentError(absl::StrCat("batch ", batch_index, " of epoch ", epoch,
                                                   ": outside the epoch's ", batches_per_epoch(),
                                                   " batches"));
  }
  const absl::Time deadline = absl::Now() + im.options.batch_timeout;
  BuiltBatch batch;
  FrameScratch scratch;

  if (im.probe) {
    const bool val = im.plan.is_val(batch_index);
    Dataset& ds = val ? *im.val_dataset : *im.dataset;
    const int64_t n = ds.size();
    const int64_t b = im.plan.batch_index(batch_index);
    const int64_t first = b * im.batch_size;
    const int count = static_cast<int>(std::min<int64_t>(n, first + im.batch_size) - first);
    im.StartBatch(epoch, batch_index, count, ds, &batch);
    batch.header.set_split(val ? "val" : "train");
    batch.header.set_total_batches(im.plan.total());
    const std::string what =
        absl::StrCat("probe batch ", batch_index, " (", val ? "val" : "train", " batch ", b, ")");
    for (int slot = 0; slot < count; ++slot) {
      const int64_t row = first + slot;
      RETURN_IF_ERROR(im.FillSlot(
          ds, [row, n](int64_t offset) { return (row + offset) % n; }, epoch, batch_index, slot,
          what, deadline, &batch, &scratch));
    }
    batch.header.set_replaced_samples(static_cast<int32_t>(batch.replaced));
    return batch;
  }

  const int64_t n = im.dataset->size();
  const int batch_size = im.batch_size;
  const std::shared_ptr<const std::vector<int64_t>> perm =
      im.dataset->Permutation(static_cast<uint64_t>(im.spec.seed), epoch);
  im.StartBatch(epoch, batch_index, batch_size, *im.dataset, &batch);
  const std::string what = absl::StrCat("batch ", batch_index, " of epoch ", epoch);
  for (int slot = 0; slot < batch_size; ++slot) {
    const int64_t position = batch_index * batch_size + slot;
    RETURN_IF_ERROR(im.FillSlot(
        *im.dataset,
        [&perm, position, n](int64_t offset) {
          return (*perm)[static_cast<size_t>((position + offset) % n)];
        },
        epoch, batch_index, slot, what, deadline, &batch, &scratch));
  }
  batch.header.set_replaced_samples(static_cast<int32_t>(batch.replaced));

  Stopwatch mask_watch;
  const masking::BatchKey key{static_cast<uint64_t>(im.spec.seed), epoch, batch_index};
  if (absl::Status s = AddBatchMasks(im.masks, key, batch_size, &batch.header); !s.ok()) return s;
  batch.seconds.mask = mask_watch.Seconds();
  return batch;
}

}  // namespace vjepa::dataworker
