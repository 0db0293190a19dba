#include "services/dataworker/grpc_data_service.h"

#include <memory>
#include <utility>

#include "common/status/grpc_status.h"
#include "grpcpp/support/proto_buffer_reader.h"
#include "services/dataworker/wire.h"

namespace vjepa::dataworker {
namespace {

using rpc::Role;

// A call that ends at once with `status` (refused before it had a stream).
class Refusal final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit Refusal(const absl::Status& status) { Finish(ToGrpcStatus(status)); }
  void OnDone() override { delete this; }
};

// Writes one stream's batches. Exactly one party drives it at a time (see StreamHandle): after
// StartWrite or Finish it touches nothing of itself.
class BatchWriter final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  explicit BatchWriter(std::unique_ptr<StreamHandle> handle) : handle_(std::move(handle)) {
    Drive();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {  // the call is broken or cancelled: the batch is not delivered
      handle_->Abandoned();
      handle_->Close();
      Finish(grpc::Status(grpc::StatusCode::CANCELLED, "stream write failed"));
      return;
    }
    ++next_part_;
    Drive();
  }

  void OnCancel() override { handle_->Cancel(); }
  void OnDone() override { delete this; }

 private:
  void Drive() {
    while (true) {
      if (batch_ && next_part_ <= batch_->clips.size()) {
        if (next_part_ == 0) {
          message_ = HeaderMessage(batch_->header);
        } else {
          ClipBuffer& clip = batch_->clips[next_part_ - 1];
          message_ = ClipMessage(static_cast<int32_t>(next_part_ - 1), clip);
          clip.reset();  // the message holds it until the transport is done
        }
        batch_bytes_ += static_cast<int64_t>(message_.Length());
        StartWrite(&message_);
        return;
      }
      if (batch_) {
        handle_->Delivered(batch_bytes_);
        batch_.reset();
      }
      absl::Status end;
      switch (handle_->TakeNext(&batch_, &end, [this] { Drive(); })) {
        case StreamHandle::NextResult::kReady:
          next_part_ = 0;
          batch_bytes_ = 0;
          continue;
        case StreamHandle::NextResult::kWaiting:
          return;
        case StreamHandle::NextResult::kEnded:
          handle_->Close();
          Finish(ToGrpcStatus(end));
          return;
      }
    }
  }

  std::unique_ptr<StreamHandle> handle_;
  std::unique_ptr<ProducedBatch> batch_;
  size_t next_part_ = 0;  // 0: the header; i + 1: clip i
  int64_t batch_bytes_ = 0;
  grpc::ByteBuffer message_;
};

}  // namespace

grpc::ServerWriteReactor<grpc::ByteBuffer>* GrpcDataService::StreamBatches(
    grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request) {
  auto principal = auth_.Authenticate(ctx, {Role::kWorker, Role::kAdmin});
  if (!principal.ok()) return new Refusal(principal.status());
  v1::StreamBatchesRequest req;
  grpc::ByteBuffer copy(*request);
  if (!grpc::SerializationTraits<v1::StreamBatchesRequest>::Deserialize(&copy, &req).ok()) {
    return new Refusal(absl::InvalidArgumentError("StreamBatchesRequest: cannot parse"));
  }
  absl::StatusOr<std::unique_ptr<StreamHandle>> handle = service_->OpenStream(req);
  if (!handle.ok()) return new Refusal(handle.status());
  return new BatchWriter(*std::move(handle));
}

}  // namespace vjepa::dataworker
