#include "common/rpc/client.h"

#include "absl/strings/str_cat.h"
#include "common/rpc/auth.h"
#include "common/rpc/server.h"
#include "grpcpp/create_channel.h"

namespace vjepa::rpc {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ClientOptions& options) {
  if (options.address.empty()) {
    return absl::InvalidArgumentError("coordinator address is empty: give HOST:PORT");
  }
  if (auto s = CheckHostPort(options.address, "address"); !s.ok()) return s;
  auto creds = MakeChannelCredentials(options.tls);
  if (!creds.ok()) return creds.status();
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  return grpc::CreateCustomChannel(options.address, *creds, args);
}

std::unique_ptr<grpc::ClientContext> MakeContext(const std::string& token, absl::Duration timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  AttachToken(ctx.get(), token);
  return ctx;
}

}  // namespace vjepa::rpc
