#include "common/rpc/server.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/metrics_interceptor.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"

namespace vjepa::rpc {

absl::Status CheckHostPort(const std::string& address, const std::string& flag) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": must be HOST:PORT with PORT in [0, 65535], got \"", address, "\""));
  }
  return absl::OkStatus();
}

RpcServer::RpcServer(ServerOptions options, std::vector<grpc::Service*> services)
    : options_(std::move(options)), services_(std::move(services)) {}

RpcServer::~RpcServer() { Stop(absl::ZeroDuration()); }

absl::Status RpcServer::Start() {
  if (server_) return absl::FailedPreconditionError("server already started");
  if (auto s = CheckHostPort(options_.listen_address, "--listen"); !s.ok()) return s;
  auto creds = MakeServerCredentials(options_.tls);
  if (!creds.ok()) return creds.status();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen_address, *creds, &bound_port_);
  builder.SetMaxReceiveMessageSize(options_.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_send_message_bytes);
  // Without this gRPC sets SO_REUSEPORT, and a second server on a taken port would silently
  // share its traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  for (grpc::Service* s : services_) builder.RegisterService(s);
  if (options_.registry) {
    std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
    f.push_back(
        std::make_unique<MetricsInterceptorFactory>(*options_.registry, options_.service_name));
    builder.experimental().SetInterceptorCreators(std::move(f));
  }
  server_ = builder.BuildAndStart();
  if (!server_ || bound_port_ == 0) {
    server_.reset();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options_.listen_address, " (in use or not local?)"));
  }
  return absl::OkStatus();
}

void RpcServer::Stop(absl::Duration grace) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + absl::ToChronoNanoseconds(grace));
}

void RpcServer::Wait() {
  if (server_) server_->Wait();
}

bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!(out << port << "\n")) return false;
  }
  return std::rename(tmp.c_str(), path.c_str()) == 0;
}

}  // namespace vjepa::rpc
