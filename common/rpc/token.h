// The bearer token a service presents as a client (to the coordinator, to dataworkers), from
// its flags or the environment.
#ifndef VJEPA_COMMON_RPC_TOKEN_H_
#define VJEPA_COMMON_RPC_TOKEN_H_

#include <string>

#include "absl/status/statusor.h"

namespace vjepa::rpc {

// The first line of `token_file` (whitespace trimmed) when set, else `token`, else the
// environment variable `env` (e.g. "VJEPA_TOKEN"). INVALID_ARGUMENT naming the flags when both
// are set, the file cannot be read, or no token is found.
absl::StatusOr<std::string> ResolveToken(const std::string& token, const std::string& token_file,
                                         const char* env = "VJEPA_TOKEN");

// The whole of a file; NOT_FOUND naming it when it cannot be read.
absl::StatusOr<std::string> ReadTextFile(const std::string& path);

}  // namespace vjepa::rpc

#endif  // VJEPA_COMMON_RPC_TOKEN_H_
