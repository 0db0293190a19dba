// `vjepa-dataworker check`: the dataset pre-flight. Opens every manifest entry as a job would
// (data roots, the reader's probe and frame index) and decodes one training clip of it (the
// training sampler's frames and crop, converted to RGB), then prints per file ok (codec, size,
// fps, frames, duration) or why it would be quarantined, and a summary.
#ifndef VJEPA_SERVICES_DATAWORKER_CHECK_H_
#define VJEPA_SERVICES_DATAWORKER_CHECK_H_

#include <ostream>
#include <string>
#include <vector>

namespace vjepa::dataworker {

struct CheckOptions {
  std::string manifest;
  std::vector<std::string> data_roots;
  std::string root;  // base of relative video paths ("" = the manifest's directory)
  bool json = false;
  int frames = 16;  // the clip's frames, frame step and crop (the default recipe)
  int frame_step = 4;
  int crop = 224;
  int seconds_per_file = 60;  // wall-clock bound per file (open + decode)
};

// Exit codes.
inline constexpr int kCheckAllOk = 0;
inline constexpr int kCheckSomeBad = 1;
inline constexpr int kCheckBadArguments = 2;

// Parses the arguments after "check" (--manifest M --data_root R[,R2] [--root DIR] [--json]
// [--frames T] [--frame_step S] [--crop C] [--help]); kCheckBadArguments with a message on `err`
// when they are wrong, -1 when they parse.
int ParseCheckArgs(const std::vector<std::string>& args, CheckOptions* options, std::ostream& out,
                   std::ostream& err);

// Checks every file; one line (or JSON object) per file and a summary on `out`.
int RunCheck(const CheckOptions& options, std::ostream& out, std::ostream& err);

extern const char kCheckUsage[];

}  // namespace vjepa::dataworker

#endif  // VJEPA_SERVICES_DATAWORKER_CHECK_H_
