// Real service processes on 127.0.0.1 for multi-process tests (the coordinator for now; workers
// join as they are built). Ports are picked by the services (port 0) and read from port files.
#ifndef VJEPA_TESTS_TEST_CLUSTER_H_
#define VJEPA_TESTS_TEST_CLUSTER_H_

#include <memory>
#include <string>
#include <vector>

#include "tests/process.h"

namespace vjepa::testing {

// Tokens of the test principals (written to the token file every test cluster uses).
inline constexpr char kAliceToken[] = "alice-token-00000000000000000001";
inline constexpr char kBobToken[] = "bob-token-0000000000000000000002";
inline constexpr char kAdminToken[] = "admin-token-000000000000000000003";
inline constexpr char kWorkerToken[] = "worker-token-00000000000000000004";
std::string TestTokenFile();

class CoordinatorProcess {
 public:
  // Starts vjepa-coordinator on `data_dir` with `extra_flags`; waits until it serves.
  CoordinatorProcess(const std::string& data_dir, const std::string& tokens_file,
                     const std::vector<std::string>& extra_flags = {});
  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  Process& process() { return *process_; }

 private:
  ScratchDir scratch_;
  std::unique_ptr<Process> process_;
  int port_ = 0;
};

}  // namespace vjepa::testing

#endif  // VJEPA_TESTS_TEST_CLUSTER_H_
