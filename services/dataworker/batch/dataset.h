// A job's dataset as a dataworker sees it: the manifest (the reference format, one
// "path label" per line), its identity, the paths resolved under the worker's data roots, the
// per-epoch permutation and the quarantine set of bad videos.
#ifndef VJEPA_SERVICES_DATAWORKER_BATCH_DATASET_H_
#define VJEPA_SERVICES_DATAWORKER_BATCH_DATASET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/dataworker/video/bad_video.h"

namespace vjepa::dataworker {

// Bounds on a manifest: its size, its number of lines and the length of one line.
inline constexpr int64_t kMaxManifestBytes = int64_t{2} << 30;
inline constexpr int64_t kMaxManifestLines = 10'000'000;
inline constexpr size_t kMaxManifestLineBytes = 16384;

// The version of the recipe that turns (spec, seed, epoch, batch index, manifest) into batch
// bytes: sampling, transforms, token layout, masks and the replacement rule. Changes whenever
// any of them changes the bytes.
inline constexpr char kRecipeVersion[] = "vjepa-dataworker-1";

// Directories a worker may read under. Canonicalised (realpath) once.
class DataRoots {
 public:
  // Each root must exist and be a directory. INVALID_ARGUMENT names the root otherwise.
  static absl::StatusOr<DataRoots> Create(const std::vector<std::string>& roots);
  const std::vector<std::string>& roots() const { return roots_; }
  // The canonical path of `path` (absolute, or relative to `base` which must itself be inside a
  // root) when it stays inside a root: no ".." component, no symlink that leads outside.
  // PERMISSION_DENIED with BadVideoReason kPathRefused otherwise (also for a symlink loop, and
  // for a missing file whose deepest existing directory resolves outside every root); a missing
  // file inside a root is NOT_FOUND with kMissing.
  absl::StatusOr<std::string> Resolve(const std::string& path, const std::string& base) const;
  // Whether the canonical path `canonical` is a root or lies below one.
  bool Contains(const std::string& canonical) const;

 private:
  std::vector<std::string> roots_;
};

struct ManifestEntry {
  std::string path;  // as written in the manifest
  int64_t label = 0;
};

// The entries of a manifest's text: one "path label" per line, the label (an integer) being the
// last field after a space, tab or comma, the path everything before it; blank lines are
// skipped, "\r\n" line ends accepted. INVALID_ARGUMENT "<name> line <n>: <reason>" for a bad
// line, RESOURCE_EXHAUSTED past kMaxManifestLines, INVALID_ARGUMENT when there is no entry.
absl::StatusOr<std::vector<ManifestEntry>> ParseManifest(std::string_view text,
                                                         std::string_view name);

// Lower-case hex SHA-256 of `bytes`.
std::string Sha256Hex(std::string_view bytes);

// The permutation of [0, n) for data epoch `epoch`: Fisher-Yates from the front (slot i swaps
// with UniformInt(i, n − 1)) over RandomStream::ForEpoch(seed, kEpochPermutation, epoch).
std::vector<int64_t> EpochPermutation(uint64_t seed, int64_t epoch, int64_t n);

// (N, SHA-256 of the manifest bytes, recipe version): travels with leases
// (docs/architecture.md §4). A probe job's producer also names its probe.val_manifest
// (BatchLease.val_dataset_size / val_manifest_sha256); a Dataset leaves those 0 and "".
struct DatasetIdentity {
  int64_t size = 0;
  std::string manifest_sha256;
  std::string recipe_version;
  int64_t val_size = 0;
  std::string val_manifest_sha256;
};

struct QuarantinedVideo {
  int64_t sample = 0;  // manifest row
  std::string path;
  BadVideoReason reason;
  std::string detail;
  // The failure does not depend on which frames are read (path, open, probe, frame index):
  // such a video is skipped without opening it again. A failure inside the frames of one clip
  // (a decode error at a packet) is recorded but the video is still tried for other clips, so
  // that a batch's bytes never depend on what this worker happened to see before.
  bool whole_file = true;
};

class Dataset {
 public:
  // Reads the manifest `manifest` (resolved like a video path, relative to the first root) with
  // videos relative to `root` (spec dataset.root; "" = the manifest's directory). Errors name
  // the file and, for a bad line, its number.
  static absl::StatusOr<std::shared_ptr<Dataset>> Load(const DataRoots& roots,
                                                       const std::string& manifest,
                                                       const std::string& root);

  const DatasetIdentity& identity() const { return identity_; }
  int64_t size() const { return static_cast<int64_t>(entries_.size()); }
  const ManifestEntry& entry(int64_t sample) const { return entries_[sample]; }
  // The canonical path of a sample's video, or its kPathRefused / kMissing status.
  absl::StatusOr<std::string> ResolvedPath(int64_t sample) const;

  // The order of the manifest in data epoch `epoch` for job seed `seed` (a uniform permutation
  // from DrawKind::kEpochPermutation). Cached for the last few epochs.
  std::shared_ptr<const std::vector<int64_t>> Permutation(uint64_t seed, int64_t epoch) const;

  // Quarantine: deterministic failures, reported once each to the listener.
  void Quarantine(QuarantinedVideo video);
  bool IsQuarantined(int64_t sample) const;
  // Quarantined for a whole-file failure: replaced without being opened.
  bool IsQuarantinedWholeFile(int64_t sample) const;
  std::vector<QuarantinedVideo> Quarantined() const;
  int64_t quarantine_version() const;  // number of distinct quarantined samples
  using QuarantineListener = std::function<void(const QuarantinedVideo&)>;
  void SetQuarantineListener(QuarantineListener listener);

 private:
  Dataset() = default;
  DataRoots roots_;
  std::string base_;
  std::vector<ManifestEntry> entries_;
  DatasetIdentity identity_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int64_t, QuarantinedVideo> quarantine_ ABSL_GUARDED_BY(mu_);
  QuarantineListener listener_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<
      std::pair<std::pair<uint64_t, int64_t>, std::shared_ptr<const std::vector<int64_t>>>>
      permutations_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_BATCH_DATASET_H_
