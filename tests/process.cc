#include "tests/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/testing/testing.h"

extern char** environ;

namespace vjepa::testing {
namespace {

int DecodeStatus(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

pid_t Spawn(const std::vector<std::string>& argv, const std::string& in_path,
            const std::string& out_path, const std::string& err_path,
            const std::vector<std::string>& extra_env) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, in_path.empty() ? "/dev/null" : in_path.c_str(),
                                   O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(),
                                   O_WRONLY | O_CREAT | (err_path == out_path ? O_APPEND : O_TRUNC),
                                   0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& e : extra_env) env_strings.push_back(e);
  std::vector<char*> env;
  for (auto& e : env_strings) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), env.data()) != 0) pid = -1;
  posix_spawn_file_actions_destroy(&actions);
  return pid;
}

// waitpid with a deadline; -1 on timeout.
int WaitPid(pid_t pid, absl::Duration timeout, int* raw) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      *raw = status;
      return DecodeStatus(status);
    }
    if (r < 0) return -1;
    if (absl::Now() >= deadline) return -1;
    absl::SleepFor(absl::Milliseconds(10));
  }
}

}  // namespace

std::string BinDir() {
  if (const char* d = std::getenv("VJEPA_BIN_DIR")) return d;
  // Tests live in <build>/tests/, binaries in <build>/bin/.
  std::error_code ec;
  auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "build/bin" : (self.parent_path().parent_path() / "bin").string();
}

std::string SourceDir() {
  const char* d = std::getenv("VJEPA_SOURCE_DIR");
  return d ? d : ".";
}

RunResult Run(const std::vector<std::string>& argv, absl::Duration timeout,
              const std::vector<std::string>& extra_env, const std::string& stdin_text) {
  ScratchDir dir;
  std::string in_path;
  if (!stdin_text.empty()) {
    dir.Write("stdin", stdin_text);
    in_path = dir.File("stdin");
  }
  RunResult r;
  pid_t pid = Spawn(argv, in_path, dir.File("out"), dir.File("err"), extra_env);
  if (pid < 0) {
    r.err = "cannot start " + argv[0];
    return r;
  }
  int raw = 0;
  r.exit_code = WaitPid(pid, timeout, &raw);
  if (r.exit_code == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, &raw, 0);
  }
  r.out = ReadFile(dir.File("out"));
  r.err = ReadFile(dir.File("err"));
  return r;
}

Process::Process(const std::vector<std::string>& argv, const std::string& log_path)
    : log_path_(log_path) {
  pid_ = Spawn(argv, "", log_path, log_path, {});
}

Process::~Process() {
  if (Running()) {
    kill(pid_, SIGKILL);
    Wait(absl::Seconds(10));
  }
}

void Process::Signal(int sig) {
  if (pid_ > 0 && status_ == -1) kill(pid_, sig);
}

int Process::Wait(absl::Duration timeout) {
  if (pid_ <= 0) return -1;
  if (status_ != -1) return DecodeStatus(status_);
  int raw = 0;
  int code = WaitPid(pid_, timeout, &raw);
  if (code != -1) status_ = raw;
  return code;
}

bool Process::Running() {
  if (pid_ <= 0 || status_ != -1) return false;
  int raw = 0;
  if (waitpid(pid_, &raw, WNOHANG) == pid_) {
    status_ = raw;
    return false;
  }
  return true;
}

std::string Process::Log() const { return ReadFile(log_path_); }

bool WaitFor(const std::function<bool()>& ready, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!ready()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

int ReadPortFile(const std::string& path) {
  std::ifstream in(path);
  int port = 0;
  if (!(in >> port)) return 0;
  return port;
}

}  // namespace vjepa::testing
