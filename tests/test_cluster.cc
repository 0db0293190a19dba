#include "tests/test_cluster.h"

#include <filesystem>

#include "absl/strings/str_cat.h"

namespace vjepa::testing {

std::string TestTokenFile() {
  return absl::StrCat(kAliceToken, " alice user\n", kBobToken, " bob user\n", kAdminToken,
                      " root admin\n", kWorkerToken, " dw-0 worker\n");
}

CoordinatorProcess::CoordinatorProcess(const std::string& data_dir, const std::string& tokens_file,
                                       const std::vector<std::string>& extra_flags) {
  const std::string port_file = scratch_.File("port");
  std::vector<std::string> argv = {BinDir() + "/vjepa-coordinator", "--listen=127.0.0.1:0",
                                   "--port_file=" + port_file, "--data_dir=" + data_dir,
                                   "--auth_tokens=" + tokens_file};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  const std::string log = data_dir + ".log";
  process_ = std::make_unique<Process>(argv, log);
  WaitFor([&] { return ReadPortFile(port_file) > 0 || !process_->Running(); }, absl::Seconds(60));
  port_ = ReadPortFile(port_file);
}

}  // namespace vjepa::testing
