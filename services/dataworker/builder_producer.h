// The real batch production: BatchBuilder (batch/batch_builder.h) over a Dataset shared by every
// job that reads the same manifest, with one frame index cache for the worker.
#ifndef VJEPA_SERVICES_DATAWORKER_BUILDER_PRODUCER_H_
#define VJEPA_SERVICES_DATAWORKER_BUILDER_PRODUCER_H_

#include <map>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "services/dataworker/batch/batch_builder.h"
#include "services/dataworker/batch/dataset.h"
#include "services/dataworker/batch_producer.h"
#include "services/dataworker/video/frame_index.h"

namespace vjepa::dataworker {

struct BuilderFactoryOptions {
  std::vector<std::string> data_roots;  // --data_root
  ReaderLimits limits;
  absl::Duration batch_timeout = absl::Seconds(120);
  size_t index_cache_entries = 4096;
};

class BuilderProducerFactory : public ProducerFactory {
 public:
  // INVALID_ARGUMENT when a data root is missing or not a directory.
  static absl::StatusOr<std::shared_ptr<BuilderProducerFactory>> Create(
      BuilderFactoryOptions options);

  absl::StatusOr<std::shared_ptr<BatchProducer>> Create(const std::string& job_id,
                                                        const spec::JobSpec& spec) override;

  // The quarantine listeners of the producers sharing one dataset.
  struct Listeners;

 private:
  BuilderProducerFactory(BuilderFactoryOptions options, DataRoots roots);
  // The dataset of (manifest, root), loaded once while any job uses it.
  absl::StatusOr<std::pair<std::shared_ptr<Dataset>, std::shared_ptr<Listeners>>> SharedDataset(
      const std::string& manifest, const std::string& root);

  const BuilderFactoryOptions options_;
  const DataRoots roots_;
  FrameIndexCache index_cache_;
  absl::Mutex mu_;
  std::map<std::pair<std::string, std::string>,
           std::pair<std::weak_ptr<Dataset>, std::shared_ptr<Listeners>>>
      datasets_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_BUILDER_PRODUCER_H_
