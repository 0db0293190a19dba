// A BatchProducer of ready-made bytes, for tests and the wire benchmark: no video, no decode.
// Batch (epoch, b) has sample ids b·B .. b·B+B−1, clip c is filled with SyntheticClipByte(epoch,
// b, c, i) (or, with `reuse_clips`, the same buffers every batch), and each mask config gets
// context/target indices of fixed lengths.
#ifndef VJEPA_SERVICES_DATAWORKER_SYNTHETIC_PRODUCER_H_
#define VJEPA_SERVICES_DATAWORKER_SYNTHETIC_PRODUCER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "services/dataworker/batch_producer.h"

namespace vjepa::dataworker {

struct SyntheticOptions {
  int batch_size = 2;    // B
  int num_tokens = 8;    // N
  int token_bytes = 24;  // P
  int mask_configs = 2;  // mask entries in each header
  int64_t batches_per_epoch = 1000;
  uint64_t seed = 1;
  // Hand out the same clip buffers for every batch (the benchmark: no per-batch fill).
  bool reuse_clips = false;
  // When set, consulted before each batch: a non-OK status fails it (e.g. DEADLINE_EXCEEDED).
  std::function<absl::Status(int64_t epoch, int64_t batch_index)> fail;
};

// The byte at offset i of clip c of batch (epoch, b).
uint8_t SyntheticClipByte(int64_t epoch, int64_t batch_index, int clip, int64_t i);

class SyntheticProducer : public BatchProducer {
 public:
  explicit SyntheticProducer(SyntheticOptions options);

  int64_t batches_per_epoch() const override { return options_.batches_per_epoch; }
  DatasetIdentity identity() const override;
  absl::StatusOr<ProducedBatch> Produce(int64_t epoch, int64_t batch_index) override;
  void SetQuarantineListener(QuarantineListener listener) override;

  // Calls the quarantine listener as a real producer would on meeting a bad video.
  void EmitQuarantine(const QuarantinedVideo& video);
  // Batches produced so far (successful Produce calls).
  int64_t produced() const { return produced_.load(); }
  const SyntheticOptions& options() const { return options_; }

 private:
  const SyntheticOptions options_;
  std::vector<ClipBuffer> shared_clips_;  // with reuse_clips
  std::atomic<int64_t> produced_{0};
  absl::Mutex mu_;
  QuarantineListener listener_ ABSL_GUARDED_BY(mu_);
};

// Makes SyntheticProducers for any job; the specs are ignored. Keeps the producers it made.
class SyntheticFactory : public ProducerFactory {
 public:
  explicit SyntheticFactory(SyntheticOptions options) : options_(std::move(options)) {}
  absl::StatusOr<std::shared_ptr<BatchProducer>> Create(const std::string& job_id,
                                                        const spec::JobSpec& spec) override;
  // The producer made for `job_id`, or null.
  std::shared_ptr<SyntheticProducer> producer(const std::string& job_id) const;
  int64_t created() const;

 private:
  const SyntheticOptions options_;
  mutable absl::Mutex mu_;
  std::vector<std::pair<std::string, std::shared_ptr<SyntheticProducer>>> made_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_SYNTHETIC_PRODUCER_H_
