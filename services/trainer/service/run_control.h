// What a coordinator session needs of the run it drives (TrainingRun, ProbeRun): a way to take
// it away and to hand it the dataworkers that join its job. Both are callable from any thread.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_RUN_CONTROL_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_RUN_CONTROL_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "services/trainer/service/data_client.h"

namespace vjepa::trainer {

class RunControl {
 public:
  virtual ~RunControl() = default;
  // Ends the run as soon as it can, without a final checkpoint or result. Idempotent.
  virtual void Abort() = 0;
  // Reads the batches of this dataworker too.
  virtual void AddDataworker(const std::string& address) = 0;
};

// A run's data client as other threads reach it: dataworkers added before the client exists are
// kept and handed to it when it is set; Stop() reaches it while it is set.
class DataClientSlot {
 public:
  // `client` (not owned) from now on; null: none any more.
  void Set(DataClient* client) {
    absl::MutexLock lock(&mu_);
    client_ = client;
    if (client_ == nullptr) return;
    for (const std::string& address : added_) client_->AddAddress(address);
    added_.clear();
  }
  // Creates and starts a client for `options` and holds it (Set); the caller owns it.
  absl::StatusOr<std::unique_ptr<DataClient>> Open(const DataClientOptions& options) {
    absl::StatusOr<std::unique_ptr<DataClient>> client = DataClient::Create(options);
    if (!client.ok()) return client.status();
    if (absl::Status s = (*client)->Start(); !s.ok()) return s;
    Set(client->get());
    return client;
  }
  void AddAddress(const std::string& address) {
    absl::MutexLock lock(&mu_);
    if (client_ != nullptr) {
      client_->AddAddress(address);
    } else {
      added_.push_back(address);
    }
  }
  void Stop() {
    absl::MutexLock lock(&mu_);
    if (client_ != nullptr) client_->Stop();
  }

 private:
  absl::Mutex mu_;
  DataClient* client_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::vector<std::string> added_ ABSL_GUARDED_BY(mu_);
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_RUN_CONTROL_H_
