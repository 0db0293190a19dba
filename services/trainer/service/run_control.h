// What a coordinator session needs of the run it drives (TrainingRun, ProbeRun): a way to take
// it away and to hand it the dataworkers that join its job. Both are callable from any thread.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_RUN_CONTROL_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_RUN_CONTROL_H_

#include <string>

namespace vjepa::trainer {

class RunControl {
 public:
  virtual ~RunControl() = default;
  // Ends the run as soon as it can, without a final checkpoint or result. Idempotent.
  virtual void Abort() = 0;
  // Reads the batches of this dataworker too.
  virtual void AddDataworker(const std::string& address) = 0;
};

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_RUN_CONTROL_H_
