#include "services/trainer/service/test_dataset.h"

#include <filesystem>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "services/dataworker/test_util.h"
#include "tests/test_cluster.h"

namespace vjepa::trainer {

absl::StatusOr<std::string> StartTestDataworker(const testing::ScratchDir& dir,
                                                const std::string& spec, const std::string& job_id,
                                                const std::vector<std::string>& extra_flags,
                                                std::unique_ptr<testing::Process>* worker) {
  std::filesystem::create_directories(dir.File("data"));
  for (const char* name : {"a", "b", "c", "d"}) {
    const std::string path = dir.File(absl::StrCat("data/", name, ".mp4"));
    if (!dataworker::MakeTestVideo(path, 64, 48, 40)) {
      return absl::InternalError(absl::StrCat("cannot make ", path));
    }
  }
  dir.Write("data/manifest.txt", "a.mp4 0\nb.mp4 1\nc.mp4 2\nd.mp4 3\n");
  dir.Write("spec.yaml", spec);
  dir.Write("tokens", testing::TestTokenFile());
  dir.Write("worker.token", absl::StrCat(testing::kWorkerToken, "\n"));
  const std::string port_file = dir.File("dw.port");
  std::vector<std::string> argv = {testing::BinDir() + "/vjepa-dataworker",
                                   "--listen=127.0.0.1:0",
                                   "--port_file=" + port_file,
                                   "--auth_tokens=" + dir.File("tokens"),
                                   "--data_root=" + dir.File("data"),
                                   "--job_spec=" + dir.File("spec.yaml"),
                                   "--job_id=" + job_id,
                                   "--threads=1"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  *worker = std::make_unique<testing::Process>(argv, dir.File("dw.log"));
  testing::WaitFor([&] { return testing::ReadPortFile(port_file) > 0 || !(*worker)->Running(); },
                   absl::Seconds(60));
  const int port = testing::ReadPortFile(port_file);
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("vjepa-dataworker does not listen; its log:\n", (*worker)->Log()));
  }
  return absl::StrCat("127.0.0.1:", port);
}

}  // namespace vjepa::trainer
