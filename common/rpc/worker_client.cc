#include "common/rpc/worker_client.h"

#include "absl/strings/str_cat.h"
#include "common/status/grpc_status.h"

namespace vjepa::rpc {

absl::StatusOr<std::shared_ptr<grpc::Channel>> CoordinatorChannel(const std::string& address,
                                                                  const std::string& token,
                                                                  const TlsFiles& tls) {
  ClientOptions options;
  options.address = address;
  options.token = token;
  options.tls = tls;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
  if (!channel.ok()) {
    return absl::Status(channel.status().code(),
                        absl::StrCat("--coordinator: ", channel.status().message()));
  }
  return channel;
}

absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(v1::WorkerService::StubInterface& stub,
                                                          const WorkerIdentity& self,
                                                          int64_t incarnation,
                                                          const std::string& token,
                                                          absl::Duration timeout) {
  v1::RegisterWorkerRequest req;
  req.set_name(self.name);
  req.set_incarnation(incarnation);
  req.set_kind(self.kind);
  req.set_advertise_address(self.advertise_address);
  req.set_cpus(self.cpus);
  req.set_device(self.device);
  v1::RegisterWorkerResponse resp;
  auto ctx = MakeContext(token, timeout);
  absl::Status s = FromGrpcStatus(stub.RegisterWorker(ctx.get(), req, &resp));
  if (!s.ok()) return s;
  return resp;
}

bool MustReregister(const absl::Status& s) {
  return absl::IsFailedPrecondition(s) || absl::IsNotFound(s);
}

absl::Duration HeartbeatInterval(int64_t interval_ms, absl::Duration current) {
  return interval_ms > 0 ? absl::Milliseconds(interval_ms) : current;
}

std::string RegisteredMessage(const std::string& address, const std::string& worker_id,
                              const std::string& name, int64_t incarnation,
                              absl::Duration heartbeat_interval) {
  return absl::StrCat("registered with the coordinator at ", address, " as ", worker_id, " (name ",
                      name, ", incarnation ", incarnation, ", heartbeat every ",
                      absl::FormatDuration(heartbeat_interval), ")");
}

}  // namespace vjepa::rpc
