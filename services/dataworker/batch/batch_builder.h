// Builds the batches of one job: a batch's bytes are a pure function of (job seed, data epoch,
// batch index, spec), so any dataworker produces the same bytes for the same batch
// (docs/architecture.md §3, §4). Thread-safe: Build() may run on several producer threads.
#ifndef VJEPA_SERVICES_DATAWORKER_BATCH_BATCH_BUILDER_H_
#define VJEPA_SERVICES_DATAWORKER_BATCH_BATCH_BUILDER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/spec/job_spec.h"
#include "services/dataworker/batch/dataset.h"
#include "services/dataworker/video/video_reader.h"
#include "vjepa/v1/data.pb.h"

namespace vjepa::dataworker {

// A bad video is replaced by the next usable entry among at most this many entries of the
// permutation (the slot's own included).
inline constexpr int64_t kReplacementLookAhead = 256;

// Seconds spent per stage while building one batch (summed over its clips).
struct StageSeconds {
  double decode = 0;   // demux + decode
  double convert = 0;  // colour conversion + crop + resize + flip
  double patchify = 0;
  double mask = 0;
};

// Where the clips of one sample came from (for benchmarks and logs).
struct ClipSource {
  int64_t sample = 0;           // manifest row
  std::string path;             // resolved path of its video
  std::vector<int64_t> frames;  // distinct frame indices decoded, ascending
  double decode_s = 0;          // open + demux + decode of this sample's frames
};

struct BuiltBatch {
  // Identity, shapes, masks (pretrain) or labels (probe). generation and lease_id are left
  // empty: they belong to the lease, not to the bytes.
  v1::BatchHeader header;
  // One entry per clip message, in wire order: N·P uint8 tokens each.
  std::vector<std::string> clips;
  StageSeconds seconds;
  int64_t replaced = 0;             // samples replaced because their video was bad
  std::vector<ClipSource> sources;  // per sample, in slot order
  DecodeStats decode_stats;         // summed over the batch's clips
  int64_t bytes() const;
};

struct BuilderOptions {
  ReaderLimits limits;
  FrameIndexCache* index_cache = nullptr;  // shared across jobs; may be null
  // Opens a video; default (null): VideoReader::Open(path, limits, index_cache). Tests inject
  // fakes here.
  std::function<absl::StatusOr<std::unique_ptr<VideoReader>>(const std::string& path)> open_video;
  // Wall-clock bound for one batch; past it Build() returns DEADLINE_EXCEEDED.
  absl::Duration batch_timeout = absl::Seconds(120);
};

class BatchBuilder {
 public:
  // Loads the job's dataset (`dataset`, shared with other builders of the same manifest) and
  // prepares the mask generators. Errors: INVALID_ARGUMENT for a spec it cannot serve (one that
  // fails ValidateJobSpec, data.num_clips other than 1, a pretrain manifest shorter than the
  // batch, a probe label outside [0, probe.num_classes)). Probe jobs (kind probe) get the
  // evaluation recipe (sampling.h): samples of probe.segments × probe.views clips each, no
  // randomness, labels instead of masks, batches in manifest order (spec::PlanProbeBatches).
  static absl::StatusOr<std::unique_ptr<BatchBuilder>> Create(const spec::JobSpec& spec,
                                                              std::shared_ptr<Dataset> dataset,
                                                              BuilderOptions options);
  // A probe job with probe.val_manifest: `val_dataset` is that manifest (null when the spec has
  // none; INVALID_ARGUMENT when one is given without or missing with a val_manifest).
  static absl::StatusOr<std::unique_ptr<BatchBuilder>> Create(const spec::JobSpec& spec,
                                                              std::shared_ptr<Dataset> dataset,
                                                              std::shared_ptr<Dataset> val_dataset,
                                                              BuilderOptions options);
  ~BatchBuilder();

  // Pretrain: ⌊N / B⌋ (drop_last). Probe: plan().total(), the job's batches all in epoch 0.
  int64_t batches_per_epoch() const;
  const Dataset& dataset() const;
  const Dataset* val_dataset() const;  // probe jobs with probe.val_manifest; null otherwise
  // Probe jobs: the batches of the train and val manifests; empty for pretrain jobs.
  spec::ProbeBatchPlan plan() const;

  // Pretrain: batch `batch_index` of data epoch `epoch`: slot s takes entry b·B + s of the
  // epoch's permutation. A sample whose video fails deterministically is quarantined (through
  // the dataset) and replaced by the next non-quarantined entry of the permutation after it
  // (wrapping; at most min(N, kReplacementLookAhead) entries looked at). The draws of a slot
  // are keyed by (slot, distance of the entry used from the slot's own position), so the bytes
  // do not depend on whether this worker knew beforehand that a video was bad.
  // Probe: epoch 0 and batch_index g of the plan: batch b = plan().batch_index(g) of the train
  // manifest (g < train_batches) or of the val manifest, rows [b·B, min(N, (b+1)·B)) in manifest
  // order (the last batch of a manifest may be smaller); a bad video is replaced by the next
  // usable row of the same manifest (wrapping, same look-ahead bound) and quarantined in that
  // manifest's dataset.
  // Header: identity (seed, epoch, batch_index, sample_ids = rows of the batch's manifest),
  // shapes, masks (pretrain) or labels, split and total_batches (probe), replaced_samples and
  // the identity of the manifest the batch came from; job_id, generation, global_index, lease_id
  // and quarantine_version are the caller's. Errors: DEADLINE_EXCEEDED (load-dependent: fail the
  // lease), RESOURCE_EXHAUSTED when the look-ahead finds no usable video, INVALID_ARGUMENT for an
  // index outside the epoch (probe: any epoch but 0, g outside the plan); any other failure
  // without a BadVideoReason (e.g. UNAVAILABLE from the file system) fails the whole batch with
  // its own code, never a partial batch.
  absl::StatusOr<BuiltBatch> Build(int64_t epoch, int64_t batch_index) const;

 private:
  class Impl;
  explicit BatchBuilder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_BATCH_BATCH_BUILDER_H_
