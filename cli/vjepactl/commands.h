// The verbs of vjepactl, one function each. A verb talks to the coordinator through the stub it
// is given, writes its result to `out` and its error to `err` ("vjepactl: <CODE>: <message>"),
// and returns the process exit code. main.cc only turns flags into these arguments.
#ifndef VJEPA_CLI_VJEPACTL_COMMANDS_H_
#define VJEPA_CLI_VJEPACTL_COMMANDS_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "cli/vjepactl/format.h"
#include "common/status/retry.h"
#include "vjepa/v1/job.grpc.pb.h"
#include "vjepa/v1/worker.grpc.pb.h"

namespace vjepa::vjepactl {

// Exit codes.
inline constexpr int kExitOk = 0;
inline constexpr int kExitError = 1;  // the server refused, the coordinator is unreachable,
                                      // or a local check failed (e.g. the spec is invalid)
inline constexpr int kExitUsage = 2;  // bad flags or arguments

// What every verb needs besides its own arguments.
struct CommandConfig {
  std::string coordinator;  // HOST:PORT, named in connection errors
  std::string token;
  absl::Duration timeout = absl::Seconds(30);  // deadline of each call; retries stay within it
  OutputFormat output = OutputFormat::kTable;
  std::function<absl::Time()> now = [] { return absl::Now(); };  // ages in tables
  RetryOptions retry;                                            // backoff of retried calls
};

struct SubmitOptions {
  std::string file;                    // path, or "-" for `in`
  bool from_reference_config = false;  // the file is a reference pretrain config
  std::vector<std::string> overrides;  // --set key.path=value, in order
  std::string request_id;              // empty: a fresh random one
};

// Filters of `get jobs`; empty: every job the caller may see.
struct JobsFilter {
  std::vector<v1::JobState> states;  // any of these
  std::string owner;                 // admins: this owner's jobs only
};

struct WatchOptions {
  std::string id;
  int64_t after_seq = 0;
};

// 32 random hex characters.
std::string NewRequestId();

int Submit(const CommandConfig& config, const SubmitOptions& options,
           v1::JobService::StubInterface* jobs, std::istream& in, std::ostream& out,
           std::ostream& err);
int GetJobs(const CommandConfig& config, v1::JobService::StubInterface* jobs, std::ostream& out,
            std::ostream& err);
int GetJobs(const CommandConfig& config, const JobsFilter& filter,
            v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err);
int GetWorkers(const CommandConfig& config, v1::WorkerService::StubInterface* workers,
               std::ostream& out, std::ostream& err);
int DescribeJob(const CommandConfig& config, const std::string& id,
                v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err);
int CancelJob(const CommandConfig& config, const std::string& id, const std::string& reason,
              v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err);
// Streams the job's events until the server ends the stream (after the event that makes the
// job terminal); returns kExitOk then, whichever terminal state it is. A stream cut by its
// deadline or a transient error is opened again after the last event seen.
int WatchJob(const CommandConfig& config, const WatchOptions& options,
             v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err);

// Helpers shared by the verbs: one unary call with a deadline of config.timeout and transient
// failures retried within it; connection errors that name the coordinator; JSON or YAML output.
absl::Status UnaryCall(const CommandConfig& config, const std::string& method,
                       const std::function<grpc::Status(grpc::ClientContext*)>& rpc);
absl::Status AnnotateConnection(absl::Status s, const CommandConfig& config);
void PrintStructured(const Json& value, OutputFormat format, std::ostream& out);

// Writes "vjepactl: <CODE>: <message>\n" and returns kExitError (kExitOk for an OK status).
int ReportError(const absl::Status& status, std::ostream& err);

}  // namespace vjepa::vjepactl

#endif  // VJEPA_CLI_VJEPACTL_COMMANDS_H_
