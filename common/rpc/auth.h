// Bearer-token authentication (docs/architecture.md §7). Every adapter method of every service
// except health starts with one `Authenticate(context, roles)` call:
//   ASSIGN_OR_RETURN(Principal p, auth_.Authenticate(ctx, {Role::kUser, Role::kAdmin}));
// The token file holds one `TOKEN PRINCIPAL ROLE` per line (roles: admin, user, worker);
// blank lines and lines starting with '#' are skipped.
#ifndef VJEPA_COMMON_RPC_AUTH_H_
#define VJEPA_COMMON_RPC_AUTH_H_

#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "common/metrics/metrics.h"

namespace grpc {
class ServerContextBase;
class ClientContext;
}  // namespace grpc

namespace vjepa::rpc {

enum class Role { kAdmin, kUser, kWorker };
const char* RoleName(Role role);

struct Principal {
  std::string name;
  Role role = Role::kUser;
  bool is_admin() const { return role == Role::kAdmin; }
};

class Authenticator {
 public:
  // Parses a token file's text; `source` names it in errors ("tokens.txt:3: ...").
  static absl::StatusOr<Authenticator> FromText(std::string_view text, std::string_view source);
  static absl::StatusOr<Authenticator> FromFile(const std::string& path);

  // UNAUTHENTICATED when the `authorization: Bearer <token>` metadata is missing or unknown;
  // PERMISSION_DENIED when the principal's role is not in `allowed`.
  absl::StatusOr<Principal> Authenticate(const grpc::ServerContextBase* context,
                                         std::initializer_list<Role> allowed) const;
  absl::StatusOr<Principal> AuthenticateToken(std::string_view token,
                                              std::initializer_list<Role> allowed) const;

  // Counts refusals in vjepa_<service>_auth_failures_total{reason}.
  void ExportMetrics(metrics::Registry& registry, const std::string& service);

  size_t size() const { return tokens_.size(); }

 private:
  std::map<std::string, Principal, std::less<>> tokens_;
  prometheus::Family<prometheus::Counter>* failures_ = nullptr;
};

// Client side: attaches `authorization: Bearer <token>` to a call.
void AttachToken(grpc::ClientContext* context, const std::string& token);

}  // namespace vjepa::rpc

#endif  // VJEPA_COMMON_RPC_AUTH_H_
