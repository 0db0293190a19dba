// What workers of every kind (dataworkers, trainers) share in talking to the coordinator's
// WorkerService: the channel, registration, and the conventions of its answers.
#ifndef VJEPA_COMMON_RPC_WORKER_CLIENT_H_
#define VJEPA_COMMON_RPC_WORKER_CLIENT_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/rpc/client.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::rpc {

// A channel to the coordinator at `address` (--coordinator) with `token` and `tls`; its errors
// name --coordinator.
absl::StatusOr<std::shared_ptr<grpc::Channel>> CoordinatorChannel(const std::string& address,
                                                                  const std::string& token,
                                                                  const TlsFiles& tls);

// What a worker says about itself when it registers.
struct WorkerIdentity {
  std::string name;
  v1::WorkerKind kind = v1::WORKER_KIND_UNSPECIFIED;
  std::string advertise_address;
  int cpus = 0;
  std::string device;
};

// One RegisterWorker call for `self` with `incarnation`, within `timeout`.
absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(v1::WorkerService::StubInterface& stub,
                                                          const WorkerIdentity& self,
                                                          int64_t incarnation,
                                                          const std::string& token,
                                                          absl::Duration timeout);

// Heartbeat errors after which a worker registers again with a new incarnation: the coordinator
// does not know it (NOT_FOUND) or knows a newer incarnation of it (FAILED_PRECONDITION).
bool MustReregister(const absl::Status& s);

// The heartbeat interval an answer asks for (`interval_ms`), or `current` when it names none.
absl::Duration HeartbeatInterval(int64_t interval_ms, absl::Duration current);

// The log line of a registration: "registered with the coordinator at ADDRESS as ID (name NAME,
// incarnation N, heartbeat every INTERVAL)".
std::string RegisteredMessage(const std::string& address, const std::string& worker_id,
                              const std::string& name, int64_t incarnation,
                              absl::Duration heartbeat_interval);

}  // namespace vjepa::rpc

#endif  // VJEPA_COMMON_RPC_WORKER_CLIENT_H_
