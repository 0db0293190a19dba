// The one place where absl::Status and grpc::Status meet. The two share code numbers.
#ifndef VJEPA_COMMON_STATUS_GRPC_STATUS_H_
#define VJEPA_COMMON_STATUS_GRPC_STATUS_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace vjepa {

grpc::Status ToGrpcStatus(const absl::Status& s);
absl::Status FromGrpcStatus(const grpc::Status& s);

// The canonical upper-case name of a code ("INVALID_ARGUMENT"), as used in metric labels.
const char* StatusCodeName(absl::StatusCode code);

}  // namespace vjepa

#endif  // VJEPA_COMMON_STATUS_GRPC_STATUS_H_
