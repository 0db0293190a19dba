// What the stream service asks of batch production: one BatchProducer per job, made by a
// ProducerFactory. The real one wraps BatchBuilder (builder_producer.h); tests and the wire
// benchmark use SyntheticProducer (synthetic_producer.h), which hands out ready-made bytes.
#ifndef VJEPA_SERVICES_DATAWORKER_BATCH_PRODUCER_H_
#define VJEPA_SERVICES_DATAWORKER_BATCH_PRODUCER_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/spec/job_spec.h"
#include "services/dataworker/batch/dataset.h"
#include "vjepa/v1/data.pb.h"

namespace vjepa::dataworker {

// A clip's N·P uint8 tokens. Shared and immutable: the wire sends it without copying, and a
// producer of ready-made bytes may hand the same buffer out many times.
using ClipBuffer = std::shared_ptr<const std::string>;

// One batch as produced, before it is bound to a stream: the header carries identity, shapes
// and masks (job_id, generation, global_index and lease_id are filled in by the service).
struct ProducedBatch {
  v1::BatchHeader header;
  std::vector<ClipBuffer> clips;  // one per clip message, in wire order
  // Seconds per stage summed over the batch's clips (0 where a producer does not measure).
  double decode_s = 0;
  std::vector<double> sample_decode_s;  // per sample (its video's clips), when known
  double convert_s = 0;
  double patchify_s = 0;
  double mask_s = 0;
  int64_t bytes() const;  // clip bytes plus the header's serialised size
};

class BatchProducer {
 public:
  virtual ~BatchProducer() = default;
  // nb = ⌊N / B⌋: batch g is batch g mod nb of data epoch ⌊g / nb⌋ (docs/architecture.md §4).
  virtual int64_t batches_per_epoch() const = 0;
  virtual DatasetIdentity identity() const = 0;
  // Batch `batch_index` of data epoch `epoch`; called from several producer threads at once.
  // Errors fail the lease (DEADLINE_EXCEEDED is load-dependent); a producer never returns a
  // partial batch.
  virtual absl::StatusOr<ProducedBatch> Produce(int64_t epoch, int64_t batch_index) = 0;
  // Called for every video newly quarantined while producing (on a producer thread).
  using QuarantineListener = std::function<void(const QuarantinedVideo&)>;
  virtual void SetQuarantineListener(QuarantineListener listener) = 0;
};

class ProducerFactory {
 public:
  virtual ~ProducerFactory() = default;
  // The producer of job `job_id` with the resolved `spec`. Errors: INVALID_ARGUMENT for a spec
  // it cannot serve, NOT_FOUND / PERMISSION_DENIED for a manifest it cannot read.
  virtual absl::StatusOr<std::shared_ptr<BatchProducer>> Create(const std::string& job_id,
                                                                const spec::JobSpec& spec) = 0;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_BATCH_PRODUCER_H_
