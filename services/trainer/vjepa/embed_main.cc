// vjepa-embed: encoder features of uint8 tokens with the encoder of a checkpoint. See --help.
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "common/core/reexec.h"
#include "services/trainer/checkpoint/checkpoint.h"
#include "services/trainer/checkpoint/safetensors.h"
#include "services/trainer/vjepa/checkpointing.h"
#ifdef VJEPA_EMBED_VIDEO
#include "services/dataworker/batch/video_tokens.h"
#endif

namespace {

constexpr char kUsage[] =
    R"(vjepa-embed: run the encoder of a V-JEPA checkpoint on uint8 tokens.

Usage: vjepa-embed --checkpoint F (--tokens T | --video V) --out O
                   [--part target_encoder|encoder] [--batch N] [--threads N]
                   [--segments N] [--views N] [--frame_step N]
  --checkpoint  a training checkpoint (safetensors) written by the trainer
  --tokens      a safetensors file with tensor `tokens`: uint8 [B, N, P], N tokens of a clip in
                (t, h, w) order, P = tubelet*patch*patch*3 values in (dt, dy, dx, c) order
  --video       a video file instead: its evaluation clips (the probe transforms: --segments
                temporal segments x --views spatial views, short side resized, centre or
                spread crops, the checkpoint's frames/crop/patch/tubelet), B = segments x views
                in (segment, view) order (full build only)
  --segments    temporal segments of --video (default 1)
  --views       spatial views of --video: 1 (centre) or more along the long side (default 1)
  --frame_step  source frames between sampled frames of --video (default 4)
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
  std::string checkpoint_path, tokens_path, video_path, out_path, part = "target_encoder";
  int64_t batch = 8, segments = 1, views = 1, frame_step = 4;
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
    } else if (take("--video")) {
      video_path = value;
    } else if (take("--out")) {
      out_path = value;
    } else if (take("--part")) {
      part = value;
    } else if (take("--batch") || take("--threads") || take("--segments") || take("--views") ||
               take("--frame_step")) {
      const std::string flag = a.substr(0, a.find('='));
      char* end = nullptr;
      const long v = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < 1 || v > 4096) {
        return Fail(2, flag + ": must be an integer in [1, 4096], got \"" + value + "\"");
      }
      if (flag == "--batch") {
        batch = v;
      } else if (flag == "--segments") {
        segments = v;
      } else if (flag == "--views") {
        views = v;
      } else if (flag == "--frame_step") {
        frame_step = v;
      } else {
        threads = static_cast<int>(v);
      }
    } else {
      return Fail(2, "unknown argument \"" + a + "\"; see --help");
    }
  }
  if (checkpoint_path.empty() || out_path.empty() || tokens_path.empty() == video_path.empty()) {
    return Fail(2, "--checkpoint, --out and one of --tokens or --video are required; see --help");
  }
#ifndef VJEPA_EMBED_VIDEO
  if (!video_path.empty()) {
    return Fail(2, "--video: this build has no video reader (build without VJEPA_CORE_ONLY)");
  }
  (void)segments, (void)views, (void)frame_step;  // read only with --video
#endif
  if (part != "target_encoder" && part != "encoder") {
    return Fail(2, "--part: must be target_encoder or encoder, got \"" + part + "\"");
  }
  if (threads > 0) torch::set_num_threads(threads);

  auto frozen = vjepa::jepa::LoadFrozenEncoder(checkpoint_path, part);
  if (!frozen.ok()) return Fail(1, frozen.status().ToString());
  const vjepa::model::VitConfig& vit = frozen->vit;
  vjepa::model::VisionTransformer& encoder = frozen->encoder;

  torch::Tensor tokens;
  if (!tokens_path.empty()) {
    auto tokens_file = vjepa::checkpoint::ReadSafetensors(tokens_path);
    if (!tokens_file.ok()) return Fail(1, tokens_file.status().ToString());
    for (const auto& t : tokens_file->tensors) {
      if (t.name == "tokens") tokens = t.tensor;
    }
    if (!tokens.defined()) return Fail(1, tokens_path + ": no tensor named \"tokens\"");
  }
#ifdef VJEPA_EMBED_VIDEO
  if (!video_path.empty()) {
    vjepa::dataworker::VideoTokensOptions options;
    options.frames = static_cast<int>(vit.frames);
    options.crop = static_cast<int>(vit.crop);
    options.patch = static_cast<int>(vit.patch);
    options.tubelet = static_cast<int>(vit.tubelet);
    options.frame_step = static_cast<int>(frame_step);
    options.segments = static_cast<int>(segments);
    options.views = static_cast<int>(views);
    vjepa::dataworker::VideoTokens video;
    std::string error;
    if (!vjepa::dataworker::ReadVideoTokens(video_path, options, &video, &error)) {
      return Fail(1, error);
    }
    std::cerr << "vjepa-embed: " << video_path << ": " << video.codec << " " << video.width << "x"
              << video.height << ", " << video.frames << " frames; " << video.clips.size()
              << " clips (" << segments << " segments x " << views << " views)\n";
    tokens = torch::empty(
        {static_cast<int64_t>(video.clips.size()), vit.num_tokens(), vit.token_values()},
        torch::kUInt8);
    for (size_t c = 0; c < video.clips.size(); ++c) {
      if (static_cast<int64_t>(video.clips[c].size()) != tokens[0].numel()) {
        return Fail(1, video_path + ": clip of unexpected size");
      }
      std::memcpy(tokens[static_cast<int64_t>(c)].data_ptr(), video.clips[c].data(),
                  video.clips[c].size());
    }
  }
#endif
  const std::string source = tokens_path.empty() ? video_path : tokens_path;
  if (tokens.scalar_type() != torch::kUInt8 || tokens.dim() != 3 ||
      tokens.size(1) != vit.num_tokens() || tokens.size(2) != vit.token_values()) {
    return Fail(1, source + ": tokens must be uint8 [B, " + std::to_string(vit.num_tokens()) +
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
      {"checkpoint", checkpoint_path}, {"part", part}, {"step", std::to_string(frozen->step)}};
  if (auto s = vjepa::checkpoint::WriteSafetensors(out_path, out); !s.ok()) {
    return Fail(1, s.ToString());
  }
  std::cerr << "vjepa-embed: wrote " << out_path << " (features " << features.sizes() << ")\n";
  return 0;
}
