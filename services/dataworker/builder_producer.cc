#include "services/dataworker/builder_producer.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace vjepa::dataworker {

// Every producer of one shared dataset hears its quarantine events.
struct BuilderProducerFactory::Listeners {
  absl::Mutex mu;
  std::vector<std::pair<const void*, BatchProducer::QuarantineListener>> listeners
      ABSL_GUARDED_BY(mu);

  void Notify(const QuarantinedVideo& video) {
    std::vector<BatchProducer::QuarantineListener> copy;
    {
      absl::MutexLock lock(&mu);
      for (auto& [owner, l] : listeners) copy.push_back(l);
    }
    for (auto& l : copy) l(video);
  }
  void Set(const void* owner, BatchProducer::QuarantineListener listener) {
    absl::MutexLock lock(&mu);
    listeners.erase(std::remove_if(listeners.begin(), listeners.end(),
                                   [&](const auto& e) { return e.first == owner; }),
                    listeners.end());
    if (listener) listeners.emplace_back(owner, std::move(listener));
  }
};

namespace {

// A probe job's validation manifest: its dataset and the listeners of that dataset.
struct ValData {
  std::shared_ptr<Dataset> dataset;
  std::shared_ptr<BuilderProducerFactory::Listeners> listeners;
};

class BuilderProducer : public BatchProducer {
 public:
  BuilderProducer(std::unique_ptr<BatchBuilder> builder, std::shared_ptr<Dataset> dataset,
                  std::shared_ptr<BuilderProducerFactory::Listeners> listeners, ValData val)
      : builder_(std::move(builder)),
        dataset_(std::move(dataset)),
        listeners_(std::move(listeners)),
        val_(std::move(val)) {}
  ~BuilderProducer() override {
    listeners_->Set(this, nullptr);
    if (val_.listeners) val_.listeners->Set(&val_, nullptr);
  }

  int64_t batches_per_epoch() const override { return builder_->batches_per_epoch(); }
  DatasetIdentity identity() const override {
    DatasetIdentity id = dataset_->identity();
    if (val_.dataset) {
      id.val_size = val_.dataset->identity().size;
      id.val_manifest_sha256 = val_.dataset->identity().manifest_sha256;
    }
    return id;
  }

  absl::StatusOr<ProducedBatch> Produce(int64_t epoch, int64_t batch_index) override {
    absl::StatusOr<BuiltBatch> built = builder_->Build(epoch, batch_index);
    if (!built.ok()) return built.status();
    ProducedBatch out;
    out.header = std::move(built->header);
    out.header.set_quarantine_version(dataset_->quarantine_version());
    out.clips.reserve(built->clips.size());
    for (std::string& clip : built->clips) {
      out.clips.push_back(std::make_shared<const std::string>(std::move(clip)));
    }
    out.decode_s = built->seconds.decode;
    for (const ClipSource& source : built->sources) out.sample_decode_s.push_back(source.decode_s);
    out.convert_s = built->seconds.convert;
    out.patchify_s = built->seconds.patchify;
    out.mask_s = built->seconds.mask;
    return out;
  }

  // A video of the validation manifest is reported as sample N_train + row (its own row
  // after the train manifest's). When both manifests are one file, a bad video is bad in both.
  void SetQuarantineListener(QuarantineListener listener) override {
    if (val_.listeners) {
      QuarantineListener val_listener;
      if (listener) {
        val_listener = [listener, offset = dataset_->size()](const QuarantinedVideo& video) {
          QuarantinedVideo shifted = video;
          shifted.sample += offset;
          listener(shifted);
        };
      }
      val_.listeners->Set(&val_, std::move(val_listener));
    }
    listeners_->Set(this, std::move(listener));
  }

 private:
  const std::unique_ptr<BatchBuilder> builder_;
  const std::shared_ptr<Dataset> dataset_;
  const std::shared_ptr<BuilderProducerFactory::Listeners> listeners_;
  const ValData val_;  // probe jobs with probe.val_manifest
};

}  // namespace

BuilderProducerFactory::BuilderProducerFactory(BuilderFactoryOptions options, DataRoots roots)
    : options_(std::move(options)),
      roots_(std::move(roots)),
      index_cache_(options_.index_cache_entries) {}

absl::StatusOr<std::shared_ptr<BuilderProducerFactory>> BuilderProducerFactory::Create(
    BuilderFactoryOptions options) {
  if (options.data_roots.empty()) {
    return absl::InvalidArgumentError("--data_root: at least one directory is needed");
  }
  absl::StatusOr<DataRoots> roots = DataRoots::Create(options.data_roots);
  if (!roots.ok()) {
    return absl::Status(roots.status().code(),
                        absl::StrCat("--data_root: ", roots.status().message()));
  }
  return std::shared_ptr<BuilderProducerFactory>(
      new BuilderProducerFactory(std::move(options), *std::move(roots)));
}

absl::StatusOr<
    std::pair<std::shared_ptr<Dataset>, std::shared_ptr<BuilderProducerFactory::Listeners>>>
BuilderProducerFactory::SharedDataset(const std::string& manifest, const std::string& root) {
  const auto key = std::make_pair(manifest, root);
  {
    absl::MutexLock lock(&mu_);
    auto it = datasets_.find(key);
    if (it != datasets_.end()) {
      if (auto dataset = it->second.first.lock()) return std::make_pair(dataset, it->second.second);
    }
  }
  // Loaded outside the lock; a concurrent load of the same manifest keeps the first one.
  absl::StatusOr<std::shared_ptr<Dataset>> loaded = Dataset::Load(roots_, manifest, root);
  if (!loaded.ok()) return loaded.status();
  absl::MutexLock lock(&mu_);
  auto& entry = datasets_[key];
  if (auto dataset = entry.first.lock()) return std::make_pair(dataset, entry.second);
  auto listeners = std::make_shared<Listeners>();
  (*loaded)->SetQuarantineListener(
      [listeners](const QuarantinedVideo& video) { listeners->Notify(video); });
  entry = {*loaded, listeners};
  return std::make_pair(*loaded, listeners);
}

absl::StatusOr<std::shared_ptr<BatchProducer>> BuilderProducerFactory::Create(
    const std::string& job_id, const spec::JobSpec& spec) {
  auto shared = SharedDataset(spec.dataset.manifest, spec.dataset.root);
  if (!shared.ok()) return shared.status();
  ValData val;
  if (spec.kind == spec::JobKind::kProbe && !spec.probe.val_manifest.empty()) {
    // Resolved like dataset.manifest: under the data roots, videos under dataset.root.
    auto loaded = SharedDataset(spec.probe.val_manifest, spec.dataset.root);
    if (!loaded.ok()) {
      return absl::Status(loaded.status().code(),
                          absl::StrCat("probe.val_manifest: ", loaded.status().message()));
    }
    val = ValData{std::move(loaded->first), std::move(loaded->second)};
  }
  BuilderOptions builder_options;
  builder_options.limits = options_.limits;
  builder_options.index_cache = &index_cache_;
  builder_options.batch_timeout = options_.batch_timeout;
  absl::StatusOr<std::unique_ptr<BatchBuilder>> builder =
      BatchBuilder::Create(spec, shared->first, val.dataset, builder_options);
  if (!builder.ok()) return builder.status();
  return std::shared_ptr<BatchProducer>(std::make_shared<BuilderProducer>(
      *std::move(builder), std::move(shared->first), std::move(shared->second), std::move(val)));
}

}  // namespace vjepa::dataworker
