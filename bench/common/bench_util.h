// Pieces shared by the benchmark binaries (vjepa-bench-dataworker, vjepa-bench-e2e): their
// command-line form, the monotonic clock, and the video inputs and manifests they time.
#ifndef VJEPA_BENCH_COMMON_BENCH_UTIL_H_
#define VJEPA_BENCH_COMMON_BENCH_UTIL_H_

#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"

namespace vjepa::bench {

// Reads argv in the benchmarks' form, where a flag's value is "--flag VALUE" or "--flag=VALUE":
//   for (ArgReader args(argc, argv); args.Next();) {
//     if (args.arg() == "--json") ...
//     else if (const char* v = args.Value("--steps")) ...
//   }
class ArgReader {
 public:
  ArgReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

  // Moves to the next argument; false when there is none.
  bool Next();
  // The current argument.
  const std::string& arg() const { return arg_; }
  // The value of `flag` when the current argument is `flag` followed by another argument (which
  // is consumed) or "`flag`=VALUE"; nullptr otherwise.
  const char* Value(const char* flag);

 private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string arg_;
};

// Seconds on the monotonic clock.
double MonotonicSeconds();

// Where generated benchmark inputs live by default: $HOME/.cache/vjepa-train/bench-videos (/tmp
// in place of an unset HOME).
std::string DefaultVideoCache();

// The regular files directly in `dir`, as absolute paths, sorted; `*ec` is set when `dir` cannot
// be listed.
std::vector<std::string> FilesIn(const std::string& dir, std::error_code* ec);

// Writes to `path` a manifest of `rows` rows: the file names of `files` in turn (relative to
// their directory), each with label 0.
absl::Status WriteManifest(const std::string& path, const std::vector<std::string>& files,
                           size_t rows);

}  // namespace vjepa::bench

#endif  // VJEPA_BENCH_COMMON_BENCH_UTIL_H_
