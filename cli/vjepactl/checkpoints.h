// The checkpoint verbs of vjepactl: `checkpoints list JOB`, `checkpoints pull JOB ... -o FILE`
// and `delete job ID`, plus the LibTorch-free safetensors filter behind `pull --only`. Same
// conventions as commands.h. docs/checkpoints.md.
#ifndef VJEPA_CLI_VJEPACTL_CHECKPOINTS_H_
#define VJEPA_CLI_VJEPACTL_CHECKPOINTS_H_

#include <cstdint>
#include <iosfwd>
#include <string>

#include "absl/status/status.h"
#include "cli/vjepactl/commands.h"
#include "vjepa/v1/checkpoint.grpc.pb.h"
#include "vjepa/v1/job.grpc.pb.h"

namespace vjepa::vjepactl {

struct PullOptions {
  std::string job_id;
  int64_t step = -1;                   // -1: the latest
  std::string only;                    // "": every tensor; else "encoder", "target_encoder", ...
  std::string format = "safetensors";  // or "pth" (through vjepa-export)
  std::string out;                     // FILE; bytes go to FILE.partial until verified
  std::string export_binary;           // vjepa-export, for --format pth
  bool progress = true;                // the progress bar on `err`
};

int ListCheckpoints(const CommandConfig& config, const std::string& job_id,
                    v1::CheckpointService::StubInterface* checkpoints, std::ostream& out,
                    std::ostream& err);
// Downloads into FILE.partial (resuming from its size), checks the SHA-256 of the whole file
// (a mismatch deletes the partial file and fails), then writes FILE.
int PullCheckpoint(const CommandConfig& config, const PullOptions& options,
                   v1::CheckpointService::StubInterface* checkpoints, std::ostream& out,
                   std::ostream& err);
int DeleteJob(const CommandConfig& config, const std::string& id,
              v1::JobService::StubInterface* jobs, std::ostream& out, std::ostream& err);

// Writes to `out` (atomically) a safetensors file with the tensors of `in` whose names start
// with "<prefix>.", that prefix stripped ("target_encoder.blocks.0.attn.qkv.weight" becomes
// "blocks.0.attn.qkv.weight", the reference encoder's key). Metadata is kept; tensor_sha256 is
// recomputed for the new data section. NOT_FOUND when no tensor has the prefix.
absl::Status SelectTensors(const std::string& in, const std::string& prefix,
                           const std::string& out);

}  // namespace vjepa::vjepactl

#endif  // VJEPA_CLI_VJEPACTL_CHECKPOINTS_H_
