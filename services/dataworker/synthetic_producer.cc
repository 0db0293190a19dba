#include "services/dataworker/synthetic_producer.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace vjepa::dataworker {
namespace {

std::string FillClip(int64_t epoch, int64_t batch_index, int clip, int64_t bytes) {
  std::string out(static_cast<size_t>(bytes), '\0');
  for (int64_t i = 0; i < bytes; ++i) {
    out[static_cast<size_t>(i)] = static_cast<char>(SyntheticClipByte(epoch, batch_index, clip, i));
  }
  return out;
}

// `count` little-endian int16 values start, start+step, ... (mod n).
std::string Int16Indices(int64_t count, int64_t start, int64_t step, int64_t n) {
  std::string out(static_cast<size_t>(2 * count), '\0');
  for (int64_t i = 0; i < count; ++i) {
    const auto v = static_cast<uint16_t>((start + i * step) % n);
    out[static_cast<size_t>(2 * i)] = static_cast<char>(v & 0xff);
    out[static_cast<size_t>(2 * i + 1)] = static_cast<char>(v >> 8);
  }
  return out;
}

}  // namespace

uint8_t SyntheticClipByte(int64_t epoch, int64_t batch_index, int clip, int64_t i) {
  uint64_t x = static_cast<uint64_t>(epoch) * 0x9E3779B97F4A7C15ull ^
               static_cast<uint64_t>(batch_index) * 0xC2B2AE3D27D4EB4Full ^
               static_cast<uint64_t>(clip) * 0x165667B19E3779F9ull;
  x += static_cast<uint64_t>(i) * 0x27D4EB2F165667C5ull;
  x ^= x >> 29;
  return static_cast<uint8_t>(x ^ (x >> 8));
}

SyntheticProducer::SyntheticProducer(SyntheticOptions options) : options_(std::move(options)) {
  if (options_.reuse_clips) {
    const int64_t bytes = int64_t{options_.num_tokens} * options_.token_bytes;
    for (int c = 0; c < options_.batch_size; ++c) {
      shared_clips_.push_back(std::make_shared<const std::string>(FillClip(0, 0, c, bytes)));
    }
  }
}

DatasetIdentity SyntheticProducer::identity() const {
  DatasetIdentity id;
  id.size = options_.batches_per_epoch * options_.batch_size;
  id.manifest_sha256 = std::string(64, 'a');
  id.recipe_version = "synthetic-1";
  return id;
}

absl::StatusOr<ProducedBatch> SyntheticProducer::Produce(int64_t epoch, int64_t batch_index) {
  if (batch_index < 0 || batch_index >= options_.batches_per_epoch || epoch < 0) {
    return absl::InvalidArgumentError(absl::StrCat("synthetic batch (", epoch, ", ", batch_index,
                                                   ") outside the epoch of ",
                                                   options_.batches_per_epoch, " batches"));
  }
  if (options_.fail) {
    if (absl::Status s = options_.fail(epoch, batch_index); !s.ok()) return s;
  }
  ProducedBatch batch;
  v1::BatchHeader& h = batch.header;
  h.set_epoch(epoch);
  h.set_batch_index(batch_index);
  h.set_seed(options_.seed);
  h.set_batch_size(options_.batch_size);
  h.set_num_tokens(options_.num_tokens);
  h.set_token_bytes(options_.token_bytes);
  h.set_segments(1);
  h.set_views(1);
  const DatasetIdentity id = identity();
  h.set_manifest_sha256(id.manifest_sha256);
  h.set_recipe_version(id.recipe_version);
  for (int i = 0; i < options_.batch_size; ++i) {
    h.add_sample_ids(batch_index * options_.batch_size + i);
  }
  const int64_t n = options_.num_tokens;
  for (int m = 0; m < options_.mask_configs; ++m) {
    v1::MaskIndices* mask = h.add_masks();
    const int64_t ctx = std::max<int64_t>(1, n / 4);
    const int64_t tgt = std::max<int64_t>(1, n / 2);
    mask->set_element_bytes(2);
    mask->set_context_length(static_cast<int32_t>(ctx));
    mask->set_target_length(static_cast<int32_t>(tgt));
    mask->set_length(static_cast<int32_t>(ctx));
    std::string* c = mask->mutable_context_idx();
    std::string* t = mask->mutable_target_idx();
    for (int i = 0; i < options_.batch_size; ++i) {
      c->append(Int16Indices(ctx, batch_index + i + m, 4, n));
      t->append(Int16Indices(tgt, batch_index + i + m + 1, 2, n));
    }
  }
  if (options_.reuse_clips) {
    batch.clips = shared_clips_;
  } else {
    const int64_t bytes = n * options_.token_bytes;
    for (int c = 0; c < options_.batch_size; ++c) {
      batch.clips.push_back(
          std::make_shared<const std::string>(FillClip(epoch, batch_index, c, bytes)));
    }
  }
  produced_.fetch_add(1);
  return batch;
}

void SyntheticProducer::SetQuarantineListener(QuarantineListener listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

void SyntheticProducer::EmitQuarantine(const QuarantinedVideo& video) {
  QuarantineListener listener;
  {
    absl::MutexLock lock(&mu_);
    listener = listener_;
  }
  if (listener) listener(video);
}

absl::StatusOr<std::shared_ptr<BatchProducer>> SyntheticFactory::Create(const std::string& job_id,
                                                                        const spec::JobSpec& spec) {
  auto producer = std::make_shared<SyntheticProducer>(options_);
  absl::MutexLock lock(&mu_);
  made_.emplace_back(job_id, producer);
  return std::shared_ptr<BatchProducer>(producer);
}

std::shared_ptr<SyntheticProducer> SyntheticFactory::producer(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    if (it->first == job_id) return it->second;
  }
  return nullptr;
}

int64_t SyntheticFactory::created() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(made_.size());
}

}  // namespace vjepa::dataworker
