// The first line of every adapter method: authenticate, then run the logic and convert its
// status.
//   return rpc::Authorized(auth_, ctx, {Role::kUser, Role::kAdmin},
//                          [&](const Principal& p) { return impl_->GetJob(p, *req, resp); });
#ifndef VJEPA_COMMON_RPC_AUTHORIZED_H_
#define VJEPA_COMMON_RPC_AUTHORIZED_H_

#include <initializer_list>
#include <utility>

#include "common/rpc/auth.h"
#include "common/status/grpc_status.h"
#include "grpcpp/server_context.h"

namespace vjepa::rpc {

template <typename F>
grpc::Status Authorized(const Authenticator& auth, const grpc::ServerContextBase* context,
                        std::initializer_list<Role> allowed, F&& logic) {
  auto principal = auth.Authenticate(context, allowed);
  if (!principal.ok()) return ToGrpcStatus(principal.status());
  return ToGrpcStatus(std::forward<F>(logic)(*principal));
}

}  // namespace vjepa::rpc

#endif  // VJEPA_COMMON_RPC_AUTHORIZED_H_
