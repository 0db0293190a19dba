// vjepa-embed: encoder features of uint8 tokens with the encoder of a checkpoint. See --help.
#include <torch/torch.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "common/core/reexec.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/checkpoint/safetensors.h"
#include "services/trainer/vjepa/checkpointing.h"

namespace {

constexpr char kUsage[] =
    R"(vjepa-embed: run the encoder of a V-JEPA checkpoint on uint8 tokens.

Usage: vjepa-embed --checkpoint F --tokens T --out O [--part target_encoder|encoder]
                   [--batch N] [--threads N]
  --checkpoint  a training checkpoint (safetensors) written by the trainer
  --tokens      a safetensors file with tensor `tokens`: uint8 [B, N, P], N tokens of a clip in
                (t, h, w) order, P = tubelet*patch*patch*3 values in (dt, dy, dx, c) order
  --out         safetensors file to write: `features` float32 [B, N, D] and `mean` [B, D]
  --part        which encoder: target_encoder (default, the one the reference evaluates) or
                encoder (the context encoder)
  --batch       clips per forward pass (default 8)
  --threads     torch threads (default: all cores)
Exit codes: 0 written, 1 a file could not be read or written, 2 bad arguments.
)";

int Fail(int code, const std::string& message) {
  std::cerr << "vjepa-embed: " << message << "\n";
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  vjepa::core::ReexecWithPassiveOmp(argv);
  std::string checkpoint_path, tokens_path, out_path, part = "target_encoder";
  int64_t batch = 8;
  int threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i], value;
    auto take = [&](const std::string& flag) {
      if (a == flag && i + 1 < argc) {
        value = argv[++i];
        return true;
      }
      if (a.rfind(flag + "=", 0) == 0) {
        value = a.substr(flag.size() + 1);
        return true;
      }
      return false;
    };
    if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (take("--checkpoint")) {
      checkpoint_path = value;
    } else if (take("--tokens")) {
      tokens_path = value;
    } else if (take("--out")) {
      out_path = value;
    } else if (take("--part")) {
      part = value;
    } else if (take("--batch") || take("--threads")) {
      const std::string flag = a.substr(0, a.find('='));
      char* end = nullptr;
      const long v = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < 1 || v > 4096) {
        return Fail(2, flag + ": must be an integer in [1, 4096], got \"" + value + "\"");
      }
      if (flag == "--batch") {
        batch = v;
      } else {
        threads = static_cast<int>(v);
      }
    } else {
      return Fail(2, "unknown argument \"" + a + "\"; see --help");
    }
  }
  if (checkpoint_path.empty() || tokens_path.empty() || out_path.empty()) {
    return Fail(2, "--checkpoint, --tokens and --out are required; see --help");
  }
  if (part != "target_encoder" && part != "encoder") {
    return Fail(2, "--part: must be target_encoder or encoder, got \"" + part + "\"");
  }
  if (threads > 0) torch::set_num_threads(threads);

  vjepa::checkpoint::LoadOptions load;
  load.optimizer_state = false;
  auto ckpt = vjepa::checkpoint::LoadCheckpoint(checkpoint_path, load);
  if (!ckpt.ok()) return Fail(1, ckpt.status().ToString());
  vjepa::model::VitConfig vit;
  vjepa::model::PredictorConfig predictor;
  if (auto s = vjepa::jepa::ModelConfigOf(*ckpt, &vit, &predictor); !s.ok()) {
    return Fail(1, checkpoint_path + ": " + s.ToString());
  }
  vjepa::model::VisionTransformer encoder(vit);
  if (auto s = vjepa::checkpoint::CopyStateInto(
          part == "encoder" ? ckpt->encoder : ckpt->target_encoder,
          vjepa::checkpoint::ToNamedTensors(encoder->named_parameters()), part);
      !s.ok()) {
    return Fail(1, checkpoint_path + ": " + s.ToString());
  }
  encoder->eval();

  auto tokens_file = vjepa::checkpoint::ReadSafetensors(tokens_path);
  if (!tokens_file.ok()) return Fail(1, tokens_file.status().ToString());
  torch::Tensor tokens;
  for (const auto& t : tokens_file->tensors) {
    if (t.name == "tokens") tokens = t.tensor;
  }
  if (!tokens.defined()) return Fail(1, tokens_path + ": no tensor named \"tokens\"");
  if (tokens.scalar_type() != torch::kUInt8 || tokens.dim() != 3 ||
      tokens.size(1) != vit.num_tokens() || tokens.size(2) != vit.token_values()) {
    return Fail(1, tokens_path + ": tokens must be uint8 [B, " + std::to_string(vit.num_tokens()) +
                       ", " + std::to_string(vit.token_values()) + "] for this checkpoint, got " +
                       c10::str(tokens.scalar_type(), " ", tokens.sizes()));
  }
  std::cerr << "vjepa-embed: " << tokens.size(0) << " clips through the " << part << " (D "
            << vit.embed_dim << ", depth " << vit.depth << ")\n";
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < tokens.size(0); b += batch) {
    parts.push_back(encoder->forward(tokens.narrow(0, b, std::min(batch, tokens.size(0) - b))));
    std::cerr << "vjepa-embed: " << std::min(b + batch, tokens.size(0)) << "/" << tokens.size(0)
              << "\n";
  }
  torch::Tensor features = torch::cat(parts, 0).contiguous();
  vjepa::checkpoint::TensorFile out;
  out.tensors = {{"features", features}, {"mean", features.mean(1)}};
  out.metadata = {
      {"checkpoint", checkpoint_path}, {"part", part}, {"step", std::to_string(ckpt->step)}};
  if (auto s = vjepa::checkpoint::WriteSafetensors(out_path, out); !s.ok()) {
    return Fail(1, s.ToString());
  }
  std::cerr << "vjepa-embed: wrote " << out_path << " (features " << features.sizes() << ")\n";
  return 0;
}
