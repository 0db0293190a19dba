// The trainer's side of DataService.StreamBatches, for tests, benchmarks and tools: reads whole
// batches (a header, then its clip messages) off one stream.
#ifndef VJEPA_SERVICES_DATAWORKER_STREAM_CLIENT_H_
#define VJEPA_SERVICES_DATAWORKER_STREAM_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/rpc/tls.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/sync_stream.h"
#include "vjepa/v1/data.grpc.pb.h"

namespace vjepa::dataworker {

// A channel to a dataworker at HOST:PORT or unix:PATH that accepts clip messages up to
// `max_receive_message_bytes`.
absl::StatusOr<std::shared_ptr<grpc::Channel>> DataChannel(const std::string& address,
                                                           const rpc::TlsFiles& tls = {},
                                                           int max_receive_message_bytes = 64
                                                                                           << 20);

struct ReceivedBatch {
  v1::BatchHeader header;
  std::vector<std::string> clips;  // in wire order
  int64_t bytes = 0;               // serialised size of its messages
};

class BatchStreamReader {
 public:
  // Starts the call (no deadline: a stream lives as long as its trainer).
  BatchStreamReader(const std::shared_ptr<grpc::Channel>& channel, const std::string& token,
                    const v1::StreamBatchesRequest& request);
  ~BatchStreamReader();  // cancels a call still running

  // The next whole batch. When the stream ends: its status (OUT_OF_RANGE if it ended OK);
  // INTERNAL for messages out of order.
  absl::StatusOr<ReceivedBatch> Next();
  // Cancels the call and returns its final status.
  absl::Status Cancel();

 private:
  absl::Status End();
  grpc::ClientContext ctx_;
  std::unique_ptr<v1::DataService::Stub> stub_;
  std::unique_ptr<grpc::ClientReader<v1::BatchMessage>> reader_;
  v1::BatchMessage message_;
  bool finished_ = false;
  absl::Status final_;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_STREAM_CLIENT_H_
