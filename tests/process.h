// Child processes for multi-process tests: start a binary, capture its output, wait with a
// deadline, kill by PID (only processes the test started).
#ifndef VJEPA_TESTS_PROCESS_H_
#define VJEPA_TESTS_PROCESS_H_

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/testing/testing.h"

namespace vjepa::testing {

// The folder of the built binaries (env VJEPA_BIN_DIR, set by ctest) and of the sources.
std::string BinDir();
std::string SourceDir();

struct RunResult {
  int exit_code = -1;  // -1 if it was killed at the deadline
  std::string out;
  std::string err;
};

// Runs argv to completion (killed after `timeout`), with `stdin_text` on its standard input.
RunResult Run(const std::vector<std::string>& argv, absl::Duration timeout = absl::Seconds(60),
              const std::vector<std::string>& extra_env = {}, const std::string& stdin_text = "");

class Process {
 public:
  // Starts argv; its stdout and stderr go to `log_path`.
  Process(const std::vector<std::string>& argv, const std::string& log_path);
  ~Process();  // SIGKILLs and reaps the child if still running

  pid_t pid() const { return pid_; }
  void Signal(int sig);
  // Waits for exit; returns the exit code, 128+signal, or -1 on timeout.
  int Wait(absl::Duration timeout);
  bool Running();
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_path_;
};

// Polls `ready` every 20 ms until it returns true or `timeout` passes.
bool WaitFor(const std::function<bool()>& ready, absl::Duration timeout);

// Reads a port file written by a service's --port_file; 0 while absent.
int ReadPortFile(const std::string& path);

}  // namespace vjepa::testing

#endif  // VJEPA_TESTS_PROCESS_H_
