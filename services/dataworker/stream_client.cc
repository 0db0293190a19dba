#include "services/dataworker/stream_client.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/auth.h"
#include "common/rpc/client.h"
#include "common/status/grpc_status.h"
#include "grpcpp/create_channel.h"

namespace vjepa::dataworker {

absl::StatusOr<std::shared_ptr<grpc::Channel>> DataChannel(const std::string& address,
                                                           const rpc::TlsFiles& tls,
                                                           int max_receive_message_bytes) {
  if (!absl::StartsWith(address, "unix:")) {
    rpc::ClientOptions options;
    options.address = address;
    options.tls = tls;
    options.max_receive_message_bytes = max_receive_message_bytes;
    return rpc::MakeChannel(options);
  }
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_receive_message_bytes);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

BatchStreamReader::BatchStreamReader(const std::shared_ptr<grpc::Channel>& channel,
                                     const std::string& token,
                                     const v1::StreamBatchesRequest& request)
    : stub_(v1::DataService::NewStub(channel)) {
  rpc::AttachToken(&ctx_, token);
  reader_ = stub_->StreamBatches(&ctx_, request);
}

BatchStreamReader::~BatchStreamReader() {
  if (!finished_) Cancel().IgnoreError();
}

absl::Status BatchStreamReader::End() {
  if (!finished_) {
    finished_ = true;
    final_ = FromGrpcStatus(reader_->Finish());
    if (final_.ok()) final_ = absl::OutOfRangeError("the stream ended");
  }
  return final_;
}

absl::Status BatchStreamReader::Cancel() {
  if (!finished_) ctx_.TryCancel();
  return End();
}

absl::StatusOr<ReceivedBatch> BatchStreamReader::Next() {
  if (finished_) return final_;
  if (!reader_->Read(&message_)) return End();
  if (!message_.has_header()) {
    return absl::InternalError("stream: a batch starts with a clip message, not a header");
  }
  ReceivedBatch batch;
  batch.bytes = static_cast<int64_t>(message_.ByteSizeLong());
  batch.header = std::move(*message_.mutable_header());
  const int64_t clips = int64_t{batch.header.batch_size()} * std::max(1, batch.header.segments()) *
                        std::max(1, batch.header.views());
  batch.clips.reserve(static_cast<size_t>(clips));
  for (int64_t i = 0; i < clips; ++i) {
    if (!reader_->Read(&message_)) {
      absl::Status end = End();
      return absl::Status(end.code(),
                          absl::StrCat("stream ended inside batch g ", batch.header.global_index(),
                                       " after ", i, " of ", clips, " clips: ", end.message()));
    }
    if (!message_.has_clip() || message_.clip().sample() != i) {
      return absl::InternalError(
          absl::StrCat("stream: expected clip ", i, " of batch g ", batch.header.global_index()));
    }
    batch.bytes += static_cast<int64_t>(message_.ByteSizeLong());
    batch.clips.push_back(std::move(*message_.mutable_clip()->mutable_tokens()));
  }
  return batch;
}

}  // namespace vjepa::dataworker
