// The dataworker's gRPC adapter: DataService.StreamBatches on the callback API. Each call
// authenticates (worker or admin token), opens its stream in the logic layer and writes each
// batch as a header message then one message per clip, one write in flight at a time; the next
// write starts from OnWriteDone, or from the producer thread that finishes the batch the call
// waits for. Semantics: proto/vjepa/v1/data.proto.
//
// The method is registered raw (ByteBuffer messages) so that clip tokens go to the transport
// without being copied (wire.h); requests are parsed as StreamBatchesRequest.
#ifndef VJEPA_SERVICES_DATAWORKER_GRPC_DATA_SERVICE_H_
#define VJEPA_SERVICES_DATAWORKER_GRPC_DATA_SERVICE_H_

#include "common/rpc/auth.h"
#include "grpcpp/support/byte_buffer.h"
#include "services/dataworker/data_service.h"
#include "vjepa/v1/data.grpc.pb.h"

namespace vjepa::dataworker {

class GrpcDataService final
    : public v1::DataService::WithRawCallbackMethod_StreamBatches<v1::DataService::Service> {
 public:
  GrpcDataService(const rpc::Authenticator& auth, DataService* service)
      : auth_(auth), service_(service) {}

  grpc::ServerWriteReactor<grpc::ByteBuffer>* StreamBatches(
      grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request) override;

 private:
  const rpc::Authenticator& auth_;
  DataService* const service_;
};

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_GRPC_DATA_SERVICE_H_
