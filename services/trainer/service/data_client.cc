#include "services/trainer/service/data_client.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/masking/pack.h"
#include "common/rpc/auth.h"
#include "common/status/grpc_status.h"
#include "glog/logging.h"
#include "grpcpp/client_context.h"
#include "services/dataworker/stream_client.h"
#include "vjepa/v1/data.grpc.pb.h"

namespace vjepa::trainer {
namespace {

// Stream endings that reopening the stream cannot fix: a stale generation, a request or job the
// dataworker refuses, a token it does not accept.
bool Permanent(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return true;
    default:
      return false;
  }
}

// int32 indices [B, L] as the int64 tensor the trainer takes.
torch::Tensor IndexTensor(const std::vector<int32_t>& indices, int64_t batch, int64_t length) {
  torch::Tensor out = torch::empty({batch, length}, torch::kInt64);
  int64_t* dst = out.data_ptr<int64_t>();
  for (size_t i = 0; i < indices.size(); ++i) dst[i] = indices[i];
  return out;
}

}  // namespace

DataClient::DataClient(DataClientOptions options) : options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<DataClient>> DataClient::Create(DataClientOptions options) {
  if (options.job_id.empty()) return absl::InvalidArgumentError("data client: no job id");
  if (options.addresses.empty()) {
    return absl::InvalidArgumentError("data client: no dataworker addresses");
  }
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("data client: rank ", options.rank, " outside [0, ", options.world_size, ")"));
  }
  if (options.generation < 0 || options.start_step < 0) {
    return absl::InvalidArgumentError("data client: generation and start step must be >= 0");
  }
  if (options.reorder_batches < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data client: the reorder buffer needs at least 1 batch, got ", options.reorder_batches));
  }
  if (options.batch_size < 1 || options.num_tokens < 1 || options.token_bytes < 1 ||
      (!options.probe && options.mask_configs < 1)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "data client: batch size, num_tokens, token_bytes and mask configs must be >= 1, got ",
        options.batch_size, ", ", options.num_tokens, ", ", options.token_bytes, ", ",
        options.mask_configs));
  }
  if (options.probe && (options.segments < 1 || options.views < 1 || options.mask_configs != 0)) {
    return absl::InvalidArgumentError(
        "data client: probe batches need segments and views >= 1 and no mask configs");
  }
  if (options.initial_backoff <= absl::ZeroDuration() ||
      options.max_backoff < options.initial_backoff) {
    return absl::InvalidArgumentError("data client: backoff must be > 0 and max >= initial");
  }
  const int addresses = static_cast<int>(options.addresses.size());
  if (options.streams <= 0 || options.streams > addresses) options.streams = addresses;
  std::unique_ptr<DataClient> client(new DataClient(std::move(options)));
  absl::MutexLock lock(&client->mu_);
  const DataClientOptions& o = client->options_;
  client->slots_.resize(static_cast<size_t>(o.streams));
  for (int a = 0; a < addresses; ++a) {
    client->slots_[static_cast<size_t>(a % o.streams)].addresses.push_back(o.addresses[a]);
  }
  client->next_g_ = o.start_step * o.world_size + o.rank;
  return client;
}

DataClient::~DataClient() { Stop(); }

absl::Status DataClient::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return absl::FailedPreconditionError("data client already started");
  started_ = true;
  for (int s = 0; s < static_cast<int>(slots_.size()); ++s) {
    threads_.emplace_back([this, s] { ReaderLoop(s); });
  }
  return absl::OkStatus();
}

void DataClient::AddAddress(const std::string& address) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return;
  for (const Slot& slot : slots_) {
    if (std::find(slot.addresses.begin(), slot.addresses.end(), address) != slot.addresses.end()) {
      return;
    }
  }
  Slot slot;
  slot.addresses.push_back(address);
  slots_.push_back(std::move(slot));
  const int s = static_cast<int>(slots_.size()) - 1;
  LOG(INFO) << "data client: reading dataworker " << address << " too";
  if (started_) threads_.emplace_back([this, s] { ReaderLoop(s); });
}

void DataClient::CancelStreamsLocked() {
  for (Slot& slot : slots_) {
    if (slot.context != nullptr) slot.context->TryCancel();
  }
  ready_cv_.SignalAll();
  room_cv_.SignalAll();
}

void DataClient::Stop() {
  std::vector<std::thread> threads;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    CancelStreamsLocked();
    threads.swap(threads_);
  }
  for (std::thread& t : threads) t.join();
}

void DataClient::Fail(absl::Status status) {
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return;
  LOG(ERROR) << "data client: " << status;
  error_ = std::move(status);
  CancelStreamsLocked();
}

bool DataClient::Stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_ || !error_.ok();
}

bool DataClient::AllGaveUpLocked() const {
  return std::all_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.gave_up; });
}

int64_t DataClient::next_step() const {
  absl::MutexLock lock(&mu_);
  return (next_g_ - options_.rank) / options_.world_size;
}

DataClientStats DataClient::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

int64_t DataClient::FromIndexLocked() const {
  int64_t g = next_g_;
  while (buffer_.count(g) != 0) g += options_.world_size;
  return g;
}

absl::StatusOr<StepBatch> DataClient::Next() {
  const absl::Time start = absl::Now();
  absl::MutexLock lock(&mu_);
  if (!started_) return absl::FailedPreconditionError("data client not started");
  while (!stopping_ && error_.ok() && buffer_.count(next_g_) == 0 && !AllGaveUpLocked()) {
    ready_cv_.Wait(&mu_);
  }
  stats_.data_wait_seconds += absl::ToDoubleSeconds(absl::Now() - start);
  if (stopping_) return absl::CancelledError("data client stopped");
  auto it = buffer_.find(next_g_);
  if (it != buffer_.end()) {
    StepBatch out = std::move(it->second);
    buffer_.erase(it);
    next_g_ += options_.world_size;
    ++stats_.batches;
    room_cv_.SignalAll();
    return out;
  }
  if (!error_.ok()) return error_;
  std::vector<std::string> errors;
  for (const Slot& s : slots_) errors.push_back(s.last_error.ToString());
  return absl::UnavailableError(absl::StrCat("no dataworker delivered batch g ", next_g_, " (step ",
                                             (next_g_ - options_.rank) / options_.world_size,
                                             "): every stream failed for ",
                                             absl::FormatDuration(options_.reconnect_deadline),
                                             "; last errors: ", absl::StrJoin(errors, "; ")));
}

absl::Status DataClient::CheckHeader(const v1::BatchHeader& h, const std::string& address) const {
  const std::string where = absl::StrCat("dataworker ", address, ", batch g ", h.global_index());
  if (h.job_id() != options_.job_id || h.generation() != options_.generation) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": job '", h.job_id(), "' generation ", h.generation(),
                     ", requested job '", options_.job_id, "' generation ", options_.generation));
  }
  if (h.global_index() < 0 || h.global_index() % options_.world_size != options_.rank) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": not a batch of rank ", options_.rank, " of ", options_.world_size));
  }
  auto mismatch = [&](const char* field, int64_t got, int64_t want) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", field, " ", got, ", the model takes ", want));
  };
  if (options_.probe) {
    if (h.batch_size() < 1 || h.batch_size() > options_.batch_size) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": batch_size ", h.batch_size(),
                                                     ", probe batches hold 1 to ",
                                                     options_.batch_size, " samples"));
    }
  } else if (h.batch_size() != options_.batch_size) {
    return mismatch("batch_size", h.batch_size(), options_.batch_size);
  }
  if (h.num_tokens() != options_.num_tokens) {
    return mismatch("num_tokens", h.num_tokens(), options_.num_tokens);
  }
  if (h.token_bytes() != options_.token_bytes) {
    return mismatch("token_bytes", h.token_bytes(), options_.token_bytes);
  }
  if (h.masks_size() != options_.mask_configs) {
    return mismatch("mask configs", h.masks_size(), options_.mask_configs);
  }
  if (!options_.probe) {
    if (std::max(1, h.segments()) != 1 || std::max(1, h.views()) != 1) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", h.segments(), " segments x ",
                                                     h.views(),
                                                     " views per sample, pretraining takes 1 x 1"));
    }
    return absl::OkStatus();
  }
  if (std::max(1, h.segments()) != options_.segments || std::max(1, h.views()) != options_.views) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", h.segments(), " segments x ",
                                                   h.views(), " views per sample, the probe takes ",
                                                   options_.segments, " x ", options_.views));
  }
  if (h.labels_size() != h.batch_size()) {
    return mismatch("labels", h.labels_size(), h.batch_size());
  }
  if (h.total_batches() <= h.global_index()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": total_batches ", h.total_batches(),
                                                   ", a probe batch needs more than g"));
  }
  if (h.split() != "train" && h.split() != "val") {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": split '", h.split(), "', a probe batch is 'train' or 'val'"));
  }
  return absl::OkStatus();
}

absl::StatusOr<StepBatch> DataClient::MakeBatch(v1::BatchHeader header, torch::Tensor tokens,
                                                const std::string& address) const {
  StepBatch out;
  out.global_index = header.global_index();
  out.step = (out.global_index - options_.rank) / options_.world_size;
  out.source = address;
  out.batch.tokens = std::move(tokens);
  const int batch = header.batch_size();
  for (int m = 0; m < header.masks_size(); ++m) {
    v1::MaskIndices* packed = header.mutable_masks(m);
    masking::PackedMasks p;
    p.batch = batch;
    p.context_length = packed->context_length();
    p.target_length = packed->target_length();
    p.element_bytes = packed->element_bytes();
    p.context = std::move(*packed->mutable_context_idx());
    p.target = std::move(*packed->mutable_target_idx());
    core::StatusOr<masking::BatchMasks> masks = masking::UnpackMasks(p, batch, options_.num_tokens);
    const std::string where =
        absl::StrCat("dataworker ", address, ", batch g ", out.global_index, ", mask ", m);
    if (!masks.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": ", masks.status().message()));
    }
    if (masks->context_length < 1 || masks->target_length < 1) {
      return absl::InvalidArgumentError(absl::StrCat(where, ": context length ",
                                                     masks->context_length, " and target length ",
                                                     masks->target_length, ", both must be >= 1"));
    }
    out.batch.masks.push_back({IndexTensor(masks->context, batch, masks->context_length),
                               IndexTensor(masks->target, batch, masks->target_length)});
  }
  header.clear_masks();
  out.header = std::move(header);
  return out;
}

bool DataClient::Offer(StepBatch batch) {
  absl::MutexLock lock(&mu_);
  const int64_t g = batch.global_index;
  const int64_t window = int64_t{options_.reorder_batches} * options_.world_size;
  while (!stopping_ && error_.ok() && g >= next_g_ + window) room_cv_.Wait(&mu_);
  if (stopping_ || !error_.ok()) return true;
  if (g < next_g_ || buffer_.count(g) != 0) {
    ++stats_.duplicates;
    return false;
  }
  buffer_.emplace(g, std::move(batch));
  if (g == next_g_) ready_cv_.SignalAll();
  return true;
}

DataClient::StreamEnd DataClient::ReadStream(int slot, const std::string& address) {
  StreamEnd end;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      dataworker::DataChannel(address, options_.tls, options_.max_receive_message_bytes);
  if (!channel.ok()) {
    end.status = channel.status();
    end.fatal = true;
    return end;
  }
  std::unique_ptr<v1::DataService::Stub> stub = v1::DataService::NewStub(*channel);
  grpc::ClientContext context;
  rpc::AttachToken(&context, options_.token);
  v1::StreamBatchesRequest request;
  request.set_job_id(options_.job_id);
  request.set_generation(options_.generation);
  request.set_rank(options_.rank);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ || !error_.ok()) return end;
    request.set_from_global_index(FromIndexLocked());
    slots_[static_cast<size_t>(slot)].context = &context;
  }
  std::unique_ptr<grpc::ClientReader<v1::BatchMessage>> reader =
      stub->StreamBatches(&context, request);
  const int64_t clip_bytes = options_.num_tokens * options_.token_bytes;
  v1::BatchMessage message;
  while (reader->Read(&message)) {
    if (!message.has_header()) {
      end.status = absl::InternalError(
          absl::StrCat("dataworker ", address, ": a batch starts with a clip, not a header"));
      end.fatal = true;
      break;
    }
    v1::BatchHeader header = std::move(*message.mutable_header());
    const int64_t g = header.global_index();
    if (absl::Status s = CheckHeader(header, address); !s.ok()) {
      end.status = s;
      end.fatal = true;
      break;
    }
    bool wanted;
    {
      absl::MutexLock lock(&mu_);
      wanted = g >= next_g_ && buffer_.count(g) == 0;
      if (!wanted) ++stats_.duplicates;
    }
    // The one copy: each clip's bytes into its row of the batch tensor.
    const int clips = options_.probe ? header.batch_size() * options_.segments * options_.views
                                     : header.batch_size();
    torch::Tensor tokens;
    uint8_t* dst = nullptr;
    if (wanted) {
      tokens = torch::empty({clips, options_.num_tokens, options_.token_bytes}, torch::kUInt8);
      dst = tokens.data_ptr<uint8_t>();
    }
    bool whole = true;
    for (int i = 0; i < clips; ++i) {
      if (!reader->Read(&message)) {
        whole = false;
        end.status = absl::UnavailableError(absl::StrCat(
            "dataworker ", address, ": stream ended inside batch g ", g, " after ", i, " clips"));
        break;
      }
      if (!message.has_clip() || message.clip().sample() != i ||
          static_cast<int64_t>(message.clip().tokens().size()) != clip_bytes) {
        whole = false;
        end.status = absl::InvalidArgumentError(
            absl::StrCat("dataworker ", address, ", batch g ", g, ": expected clip ", i, " of ",
                         clip_bytes, " bytes (N·P), got ",
                         message.has_clip() ? absl::StrCat("clip ", message.clip().sample(), " of ",
                                                           message.clip().tokens().size(), " bytes")
                                            : std::string("a header")));
        end.fatal = true;
        break;
      }
      if (dst != nullptr) {
        std::memcpy(dst + i * clip_bytes, message.clip().tokens().data(),
                    static_cast<size_t>(clip_bytes));
      }
    }
    if (!whole) break;
    end.progress = true;
    {
      absl::MutexLock lock(&mu_);
      stats_.bytes += clip_bytes * clips;
    }
    if (!wanted) continue;
    absl::StatusOr<StepBatch> batch = MakeBatch(std::move(header), std::move(tokens), address);
    if (!batch.ok()) {
      end.status = batch.status();
      end.fatal = true;
      break;
    }
    Offer(*std::move(batch));
  }
  if (!end.status.ok()) context.TryCancel();
  absl::Status finish = FromGrpcStatus(reader->Finish());
  {
    absl::MutexLock lock(&mu_);
    slots_[static_cast<size_t>(slot)].context = nullptr;
  }
  if (end.status.ok()) {
    end.fatal = Permanent(finish.code());
    end.status =
        finish.ok()
            ? absl::UnavailableError(absl::StrCat("dataworker ", address, ": the stream ended"))
            : absl::Status(finish.code(),
                           absl::StrCat("dataworker ", address, ": ", finish.message()));
  }
  return end;
}

void DataClient::ReaderLoop(int slot) {
  std::vector<std::string> addresses;
  {
    absl::MutexLock lock(&mu_);
    addresses = slots_[static_cast<size_t>(slot)].addresses;
  }
  size_t a = 0;
  absl::Duration backoff = options_.initial_backoff;
  std::optional<absl::Time> failing_since;
  while (true) {
    StreamEnd end = ReadStream(slot, addresses[a]);
    if (Stopping()) return;
    if (end.fatal) {
      Fail(end.status);
      return;
    }
    if (end.progress) {
      failing_since.reset();
      backoff = options_.initial_backoff;
    }
    const absl::Time now = absl::Now();
    if (!failing_since) failing_since = now;
    LOG(WARNING) << "data client: stream from " << addresses[a] << " broke: " << end.status;
    absl::MutexLock lock(&mu_);
    Slot& s = slots_[static_cast<size_t>(slot)];
    s.last_error = end.status;
    if (now - *failing_since >= options_.reconnect_deadline) {
      s.gave_up = true;
      ready_cv_.SignalAll();
      return;
    }
    a = (a + 1) % addresses.size();
    ++stats_.reconnects;
    auto stop = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !error_.ok(); };
    mu_.AwaitWithTimeout(absl::Condition(&stop), backoff);
    if (stopping_ || !error_.ok()) return;
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

}  // namespace vjepa::trainer
