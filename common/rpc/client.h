// Client side of our RPCs: channels with deliberate message limits and TLS, and call contexts
// that carry a deadline and the bearer token.
#ifndef VJEPA_COMMON_RPC_CLIENT_H_
#define VJEPA_COMMON_RPC_CLIENT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc/tls.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"

namespace vjepa::rpc {

struct ClientOptions {
  std::string address;  // host:port
  std::string token;
  TlsFiles tls;  // ca: the server's CA; cert/key: client certificate for mutual TLS
  int max_receive_message_bytes = 8 << 20;
};

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options);

// A context with `timeout` from now and the token attached.
std::unique_ptr<grpc::ClientContext> MakeContext(const std::string& token, absl::Duration timeout);

}  // namespace vjepa::rpc

#endif  // VJEPA_COMMON_RPC_CLIENT_H_
