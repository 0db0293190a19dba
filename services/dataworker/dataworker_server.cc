#include "services/dataworker/dataworker_server.h"

#include <unistd.h>

#include <chrono>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/rpc/metrics_interceptor.h"
#include "common/rpc/server.h"
#include "common/status/status_macros.h"
#include "glog/logging.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "services/dataworker/grpc_data_service.h"

namespace vjepa::dataworker {
namespace {

constexpr char kUnixPrefix[] = "unix:";

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

std::string AdvertiseAddress(const std::string& advertise, const std::string& listen,
                             int bound_port) {
  if (!advertise.empty()) return advertise;
  if (absl::StartsWith(listen, kUnixPrefix)) return listen;
  std::string host = listen.substr(0, listen.rfind(':'));
  if (host.empty() || host == "0.0.0.0" || host == "[::]" || host == "::") host = HostName();
  return absl::StrCat(host, ":", bound_port);
}

DataworkerServer::DataworkerServer(DataworkerConfig config) : config_(std::move(config)) {}

absl::StatusOr<std::unique_ptr<DataworkerServer>> DataworkerServer::Create(
    DataworkerConfig config, std::shared_ptr<ProducerFactory> factory) {
  if (config.auth_tokens.empty()) {
    return absl::InvalidArgumentError(
        "--auth_tokens: must name a token file (one TOKEN PRINCIPAL ROLE per line)");
  }
  const bool unix_socket = absl::StartsWith(config.listen, kUnixPrefix);
  if (unix_socket) {
    if (config.listen.size() <= sizeof(kUnixPrefix) - 1) {
      return absl::InvalidArgumentError("--listen: unix: needs a socket path");
    }
    if (config.tls.enabled()) {
      return absl::InvalidArgumentError("--listen: TLS is for HOST:PORT, not unix sockets");
    }
  } else {
    RETURN_IF_ERROR(rpc::CheckHostPort(config.listen, "--listen"));
  }
  if (!config.metrics_listen.empty()) {
    RETURN_IF_ERROR(rpc::CheckHostPort(config.metrics_listen, "--metrics_listen"));
  }
  if (config.max_send_message_bytes < (1 << 20)) {
    return absl::InvalidArgumentError("max send message size: at least 1 MiB");
  }
  std::unique_ptr<DataworkerServer> s(new DataworkerServer(std::move(config)));
  ASSIGN_OR_RETURN(rpc::Authenticator auth, rpc::Authenticator::FromFile(s->config_.auth_tokens));
  s->auth_ = std::make_unique<rpc::Authenticator>(std::move(auth));
  s->registry_ = std::make_shared<metrics::Registry>();
  s->auth_->ExportMetrics(*s->registry_, "dataworker");
  s->metrics_ = std::make_unique<DataworkerMetrics>(*s->registry_);
  s->service_ =
      std::make_unique<DataService>(s->config_.service, std::move(factory), s->metrics_.get());
  s->grpc_service_ = std::make_unique<GrpcDataService>(*s->auth_, s->service_.get());
  if (!unix_socket) {
    rpc::ServerOptions options;
    options.listen_address = s->config_.listen;
    options.tls = s->config_.tls;
    options.service_name = "dataworker";
    options.registry = s->registry_;
    options.max_receive_message_bytes = 1 << 20;
    options.max_send_message_bytes = s->config_.max_send_message_bytes;
    s->server_ = std::make_unique<rpc::RpcServer>(
        options, std::vector<grpc::Service*>{s->grpc_service_.get()});
  }
  return s;
}

DataworkerServer::~DataworkerServer() { Stop(); }

// rpc::RpcServer takes HOST:PORT only; a unix socket gets the same server set-up here.
absl::Status DataworkerServer::StartUnixServer() {
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(config_.listen, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(1 << 20);
  builder.SetMaxSendMessageSize(config_.max_send_message_bytes);
  builder.RegisterService(grpc_service_.get());
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> f;
  f.push_back(std::make_unique<rpc::MetricsInterceptorFactory>(*registry_, "dataworker"));
  builder.experimental().SetInterceptorCreators(std::move(f));
  unix_server_ = builder.BuildAndStart();
  if (!unix_server_ || port == 0) {
    unix_server_.reset();
    return absl::UnavailableError(absl::StrCat("cannot listen on ", config_.listen));
  }
  return absl::OkStatus();
}

absl::Status DataworkerServer::Start() {
  if (started_) return absl::FailedPreconditionError("dataworker already started");
  started_ = true;
  RETURN_IF_ERROR(service_->Start());
  if (!config_.metrics_listen.empty()) {
    ASSIGN_OR_RETURN(exposer_, metrics::Exposer::Start(config_.metrics_listen, registry_));
  }
  RETURN_IF_ERROR(server_ ? server_->Start() : StartUnixServer());
  if (!config_.coordinator.address.empty()) {
    CoordinatorClientOptions options = config_.coordinator;
    options.advertise_address =
        AdvertiseAddress(options.advertise_address, config_.listen, BoundPort());
    if (options.name.empty()) {
      options.name = absl::StartsWith(config_.listen, kUnixPrefix)
                         ? HostName()
                         : absl::StrCat(HostName(), ":", BoundPort());
    }
    if (options.cpus <= 0) options.cpus = config_.service.threads;
    client_ =
        std::make_unique<CoordinatorClient>(std::move(options), service_.get(), metrics_.get());
    RETURN_IF_ERROR(client_->Start());
  }
  return absl::OkStatus();
}

void DataworkerServer::Stop() {
  if (stopped_ || !started_) return;
  stopped_ = true;
  if (client_) client_->StopLeasing();
  std::vector<std::string> leases = service_->Shutdown();
  if (server_) server_->Stop(config_.stop_grace);
  if (unix_server_) {
    unix_server_->Shutdown(std::chrono::system_clock::now() +
                           absl::ToChronoNanoseconds(config_.stop_grace));
  }
  // Every call has finished: what they were writing is delivered or back in the list.
  std::vector<std::string> abandoned = service_->TakeReturnedLeases();
  leases.insert(leases.end(), abandoned.begin(), abandoned.end());
  if (client_) {
    client_->ReturnLeases(std::move(leases)).IgnoreError();
  } else if (!leases.empty()) {
    LOG(WARNING) << leases.size() << " leases undelivered and no coordinator to return them to";
  }
  service_->Stop();
  if (client_) client_->Stop();
}

int DataworkerServer::BoundPort() const {
  if (server_) return server_->BoundPort();
  return unix_server_ ? 1 : 0;
}

int DataworkerServer::MetricsPort() const { return exposer_ ? exposer_->BoundPort() : 0; }

}  // namespace vjepa::dataworker
