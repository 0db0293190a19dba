// The data side of the trainer's process tests: a generated dataset (four tiny H.264 clips and a
// manifest), a job spec, the test token files and a standalone vjepa-dataworker serving it.
#ifndef VJEPA_SERVICES_TRAINER_SERVICE_TEST_DATASET_H_
#define VJEPA_SERVICES_TRAINER_SERVICE_TEST_DATASET_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/testing/testing.h"
#include "tests/process.h"

namespace vjepa::trainer {

// Writes into `dir`: data/{a,b,c,d}.mp4 (64x48, 40 frames) listed in data/manifest.txt with
// labels 0 to 3, `spec` as spec.yaml, the test token file as tokens and the worker token as
// worker.token. Then starts vjepa-dataworker on 127.0.0.1 serving job `job_id` of spec.yaml over
// data/ with one producer thread (port file dw.port, log dw.log, `extra_flags` appended) into
// `*worker`, and waits up to 60 s for its port. Returns its address "127.0.0.1:PORT"; an error
// (with the dataworker's log) when a clip cannot be made or the dataworker does not listen.
absl::StatusOr<std::string> StartTestDataworker(const testing::ScratchDir& dir,
                                                const std::string& spec, const std::string& job_id,
                                                const std::vector<std::string>& extra_flags,
                                                std::unique_ptr<testing::Process>* worker);

}  // namespace vjepa::trainer

#endif  // VJEPA_SERVICES_TRAINER_SERVICE_TEST_DATASET_H_
