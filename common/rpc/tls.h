// TLS for servers and clients, from PEM files named by flags. A server given a client CA
// requires and verifies client certificates (mutual TLS).
#ifndef VJEPA_COMMON_RPC_TLS_H_
#define VJEPA_COMMON_RPC_TLS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"

namespace vjepa::rpc {

struct TlsFiles {
  std::string cert;  // PEM certificate chain of this side
  std::string key;   // PEM private key of this side
  std::string ca;    // server: client CA (turns on mutual TLS); client: server CA
  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
};

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const char* what);

// Insecure credentials when `files` is empty.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const TlsFiles& files);
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const TlsFiles& files);

}  // namespace vjepa::rpc

#endif  // VJEPA_COMMON_RPC_TLS_H_
