// vjepa-export: writes a training checkpoint in the reference's .pth.tar layout
// (reference_export.h) for facebookresearch/jepa's resume and evaluation code.
#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "common/core/reexec.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/checkpoint/reference_export.h"

namespace {

constexpr char kUsage[] =
    "Usage: vjepa-export --checkpoint FILE --out FILE [--format pth]\n"
    "\n"
    "Writes a V-JEPA training checkpoint (safetensors) in the reference implementation's\n"
    ".pth.tar layout: a dict with encoder, predictor and target_encoder (keys\n"
    "module.backbone.<reference key>) and epoch, readable by Python's torch.load.\n"
    "\n"
    "  --checkpoint FILE  the checkpoint to export (verified against its SHA-256)\n"
    "  --out FILE         the file to write (replaced atomically)\n"
    "  --format pth       output format; pth is the only one\n"
    "  --help             this text\n";

struct Args {
  std::string checkpoint;
  std::string out;
  std::string format = "pth";
};

// Returns false (with a message on stderr) for bad arguments.
bool ParseArgs(int argc, char** argv, Args* args, bool* help) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      *help = true;
      return true;
    }
    std::string value;
    bool has_value = false;
    if (const size_t eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    std::string* target = nullptr;
    if (arg == "--checkpoint") {
      target = &args->checkpoint;
    } else if (arg == "--out") {
      target = &args->out;
    } else if (arg == "--format") {
      target = &args->format;
    } else {
      std::cerr << "vjepa-export: unknown argument '" << argv[i] << "' (see --help)\n";
      return false;
    }
    if (!has_value) {
      if (i + 1 >= argc) {
        std::cerr << "vjepa-export: " << arg << " needs a value (see --help)\n";
        return false;
      }
      value = argv[++i];
    }
    if (value.empty()) {
      std::cerr << "vjepa-export: " << arg << " is empty\n";
      return false;
    }
    *target = value;
  }
  if (args->checkpoint.empty() || args->out.empty()) {
    std::cerr << "vjepa-export: --checkpoint and --out are required (see --help)\n";
    return false;
  }
  if (args->format != "pth") {
    std::cerr << "vjepa-export: unsupported --format '" << args->format << "' (supported: pth)\n";
    return false;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  vjepa::core::ReexecWithPassiveOmp(argv);
  Args args;
  bool help = false;
  if (!ParseArgs(argc, argv, &args, &help)) return 2;
  if (help) {
    std::cout << kUsage;
    return 0;
  }
  std::cerr << "vjepa-export: reading " << args.checkpoint << "\n";
  vjepa::checkpoint::LoadOptions load;
  load.optimizer_state = false;
  auto checkpoint = vjepa::checkpoint::LoadCheckpoint(args.checkpoint, load);
  if (!checkpoint.ok()) {
    std::cerr << "vjepa-export: " << checkpoint.status() << "\n";
    return 1;
  }
  auto summary = vjepa::checkpoint::ExportReferencePth(*checkpoint, args.out);
  if (!summary.ok()) {
    std::cerr << "vjepa-export: " << summary.status() << "\n";
    return 1;
  }
  std::cerr << "vjepa-export: wrote " << args.out << " (" << summary->bytes << " bytes): step "
            << checkpoint->step << ", epoch " << summary->epoch << ", encoder "
            << summary->encoder_tensors << " / predictor " << summary->predictor_tensors
            << " / target_encoder " << summary->target_encoder_tensors << " tensors\n";
  return 0;
}
