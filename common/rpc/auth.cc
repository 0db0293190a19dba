#include "common/rpc/auth.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "grpcpp/client_context.h"
#include "grpcpp/server_context.h"

namespace vjepa::rpc {
namespace {

constexpr char kAuthHeader[] = "authorization";
constexpr char kBearer[] = "Bearer ";

// Compares every byte, so the time taken does not tell how much of a guess was right.
bool ConstantTimeEqual(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAdmin:
      return "admin";
    case Role::kUser:
      return "user";
    case Role::kWorker:
      return "worker";
  }
  return "unknown";
}

absl::StatusOr<Authenticator> Authenticator::FromText(std::string_view text,
                                                      std::string_view source) {
  Authenticator auth;
  int line_no = 0;
  const absl::string_view src(source.data(), source.size());
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_no;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> f =
        absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    auto where = [&] { return absl::StrCat(src, ":", line_no, ": "); };
    if (f.size() != 3) {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "expected TOKEN PRINCIPAL ROLE, got ", f.size(), " fields"));
    }
    Principal p{std::string(f[1])};
    if (f[2] == "admin")
      p.role = Role::kAdmin;
    else if (f[2] == "user")
      p.role = Role::kUser;
    else if (f[2] == "worker")
      p.role = Role::kWorker;
    else {
      return absl::InvalidArgumentError(
          absl::StrCat(where(), "role must be admin, user or worker, got \"", f[2], "\""));
    }
    if (f[0].size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          where(), "token of ", f[1], " must be at least 16 characters, got ", f[0].size()));
    }
    if (!auth.tokens_.emplace(std::string(f[0]), p).second) {
      return absl::InvalidArgumentError(absl::StrCat(where(), "duplicate token (of ", f[1], ")"));
    }
  }
  if (auth.tokens_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(src, ": no tokens"));
  }
  return auth;
}

absl::StatusOr<Authenticator> Authenticator::FromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("auth tokens file ", path, ": cannot open"));
  std::stringstream ss;
  ss << in.rdbuf();
  return FromText(ss.str(), path);
}

void Authenticator::ExportMetrics(metrics::Registry& registry, const std::string& service) {
  failures_ =
      &metrics::AddCounter(registry, absl::StrCat("vjepa_", service, "_auth_failures_total"),
                           "RPCs refused by authentication, by reason.");
}

absl::StatusOr<Principal> Authenticator::AuthenticateToken(
    std::string_view token, std::initializer_list<Role> allowed) const {
  const Principal* found = nullptr;
  for (const auto& [t, p] : tokens_) {
    if (ConstantTimeEqual(t, token)) found = &p;
  }
  if (found == nullptr) {
    if (failures_) failures_->Add({{"reason", "unknown_token"}}).Increment();
    return absl::UnauthenticatedError("unknown bearer token");
  }
  for (Role r : allowed) {
    if (r == found->role) return *found;
  }
  if (failures_) failures_->Add({{"reason", "role"}}).Increment();
  return absl::PermissionDeniedError(absl::StrCat(
      "principal ", found->name, " (role ", RoleName(found->role), ") may not call this method"));
}

absl::StatusOr<Principal> Authenticator::Authenticate(const grpc::ServerContextBase* context,
                                                      std::initializer_list<Role> allowed) const {
  const auto& md = context->client_metadata();
  auto it = md.find(kAuthHeader);
  if (it == md.end()) {
    if (failures_) failures_->Add({{"reason", "missing"}}).Increment();
    return absl::UnauthenticatedError(
        "missing bearer token: send metadata 'authorization: Bearer <token>'");
  }
  absl::string_view value(it->second.data(), it->second.size());
  if (!absl::ConsumePrefix(&value, kBearer)) {
    if (failures_) failures_->Add({{"reason", "malformed"}}).Increment();
    return absl::UnauthenticatedError("authorization metadata must be 'Bearer <token>'");
  }
  value = absl::StripAsciiWhitespace(value);
  return AuthenticateToken(std::string_view(value.data(), value.size()), allowed);
}

void AttachToken(grpc::ClientContext* context, const std::string& token) {
  if (!token.empty()) context->AddMetadata(kAuthHeader, absl::StrCat(kBearer, token));
}

}  // namespace vjepa::rpc
