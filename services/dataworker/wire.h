// The batch stream's messages as gRPC byte buffers (docs/architecture.md §3): a header message,
// then one message per clip. A clip message is serialised without copying its tokens: its
// buffer holds the protobuf framing and, as a second slice, a reference to the clip itself. The
// bytes equal BatchMessage::SerializeAsString() of the same message.
#ifndef VJEPA_SERVICES_DATAWORKER_WIRE_H_
#define VJEPA_SERVICES_DATAWORKER_WIRE_H_

#include <cstdint>

#include "grpcpp/support/byte_buffer.h"
#include "services/dataworker/batch_producer.h"
#include "vjepa/v1/data.pb.h"

namespace vjepa::dataworker {

// BatchMessage{header: header}.
grpc::ByteBuffer HeaderMessage(const v1::BatchHeader& header);
// BatchMessage{clip: {sample, tokens: *clip}}; keeps a reference to `clip` until gRPC is done.
grpc::ByteBuffer ClipMessage(int32_t sample, const ClipBuffer& clip);

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_WIRE_H_
