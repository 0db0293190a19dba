// vjepa-bench-trainer-step: the time of one V-JEPA training step against the sgemm ceiling
// measured in the same process (see --help). One JSON line per config on stdout (with --json),
// the human table on stderr; with several configs the last line is the aggregate, "config": "all".
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/trainer_step/flops.h"
#include "common/core/reexec.h"
#include "common/masking/mask.h"
#include "services/trainer/vjepa/trainer.h"

namespace vjepa::bench {
namespace {

constexpr char kUsage[] =
    R"(vjepa-bench-trainer-step: median seconds of a V-JEPA training step, its FLOPs, and the ratio
of achieved GFLOP/s to the best of 5 fp32 2048x2048 torch::mm in the same process.

Usage: vjepa-bench-trainer-step [--config micro,tiny] [--json] [--steps N] [--warmup N]
                                [--threads N] [--device cpu|cuda]
  --config   comma-separated: micro (vit_tiny, 8x112x112, batch 8, predictor 6x192x3),
             tiny (vit_tiny, 16x224x224, batch 2, same predictor), large (vit_large,
             16x224x224, batch 24, predictor 12x384x16; CUDA only). Default: micro,tiny.
  --json     one JSON object per config on stdout (keys: config, step_s, clips_per_s,
             gflop_per_step, achieved_gflops, ceiling_gflops, ratio, peak_rss_mb, the time split
             and every FLOP term); with several configs a last line with "config": "all".
  --steps    timed steps after the warm-up (default 7, at least 5)
  --warmup   untimed steps first (default 2)
  --threads  torch intra-op threads (default: all cores)
  --device   cpu (default) or cuda
Masks come from the real multiblock3d generator (both default mask configs), inputs are random
uint8 tokens. FLOPs: target forward + 3 x (context encoder + predictor forwards), 2*M*N*K per
matrix product plus QK^T and AV at the truncated lengths.
)";

struct Options {
  std::vector<std::string> configs = {"micro", "tiny"};
  bool json = false;
  int steps = 7;
  int warmup = 2;
  int threads = 0;
  std::string device = "cpu";
};

struct BenchConfig {
  std::string name;
  std::string preset;
  int64_t frames, crop, batch;
  model::PredictorConfig predictor;
};

bool FindConfig(const std::string& name, BenchConfig* out) {
  model::PredictorConfig small;
  small.width = 192;
  small.depth = 6;
  small.heads = 3;
  model::PredictorConfig large;  // 384 wide, 12 deep, 16 heads
  const BenchConfig configs[] = {
      {"micro", "vit_tiny", 8, 112, 8, small},
      {"tiny", "vit_tiny", 16, 224, 2, small},
      {"large", "vit_large", 16, 224, 24, large},
  };
  for (const auto& c : configs) {
    if (c.name == name) {
      *out = c;
      return true;
    }
  }
  return false;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

double PeakRssMb() {
  rusage r{};
  getrusage(RUSAGE_SELF, &r);
  return r.ru_maxrss / 1024.0;
}

// Best of 5 fp32 2048^2 matrix products, in GFLOP/s.
double CeilingGflops(torch::Device device) {
  torch::Tensor a = torch::randn({2048, 2048}, torch::TensorOptions().device(device));
  torch::Tensor b = torch::randn({2048, 2048}, torch::TensorOptions().device(device));
  torch::Tensor c = torch::mm(a, b);  // warm-up
  double best = 1e30;
  for (int i = 0; i < 5; ++i) {
    const double t0 = Now();
    c = torch::mm(a, b);
    (void)c.sum().item<float>();  // forces completion on any device
    best = std::min(best, Now() - t0);
  }
  return 2.0 * 2048 * 2048 * 2048 / best / 1e9;
}

std::string Json(const std::map<std::string, std::string>& fields) {
  std::ostringstream out;
  out << "{";
  bool first = true;
  // "config" first, then the rest in key order.
  if (auto it = fields.find("config"); it != fields.end()) {
    out << "\"config\": " << it->second;
    first = false;
  }
  for (const auto& [k, v] : fields) {
    if (k == "config") continue;
    out << (first ? "" : ", ") << "\"" << k << "\": " << v;
    first = false;
  }
  out << "}";
  return out.str();
}

std::string Num(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.6g", v);
  return buf;
}

int Run(const Options& o) {
  torch::Device device =
      o.device == "cuda" ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());
  torch::set_num_threads(threads);
  torch::manual_seed(234);
  const double ceiling = CeilingGflops(device);
  std::cerr << "ceiling: " << Num(ceiling) << " GFLOP/s (fp32 2048^2 mm, " << threads
            << " threads, " << o.device << ")\n";

  std::vector<std::string> lines;
  double all_flops = 0, all_seconds = 0;
  for (const std::string& name : o.configs) {
    BenchConfig bc;
    if (!FindConfig(name, &bc)) {
      std::cerr << "vjepa-bench-trainer-step: --config: unknown config \"" << name
                << "\" (micro, tiny, large)\n";
      return 2;
    }
    if (name == "large" && o.device != "cuda") {
      std::cerr << "vjepa-bench-trainer-step: config large runs on --device cuda only\n";
      return 2;
    }
    jepa::TrainerConfig tc;
    tc.vit = *model::VitPreset(bc.preset);
    tc.vit.frames = bc.frames;
    tc.vit.crop = bc.crop;
    tc.predictor = bc.predictor;
    auto trainer = jepa::Trainer::Create(tc, device);
    if (!trainer.ok()) {
      std::cerr << "vjepa-bench-trainer-step: " << trainer.status() << "\n";
      return 1;
    }
    const masking::Grid grid{static_cast<int>(tc.vit.grid_t()), static_cast<int>(tc.vit.grid_h()),
                             static_cast<int>(tc.vit.grid_w())};
    std::vector<std::unique_ptr<masking::MaskGenerator>> generators;
    masking::MaskConfig short_range;  // 8 blocks of 0.15
    masking::MaskConfig long_range;
    long_range.num_blocks = 2;
    long_range.spatial_scale = {0.7, 0.7};
    for (const auto& mc : {short_range, long_range}) {
      auto g = masking::MakeMaskGenerator(mc, grid);
      if (!g.ok()) {
        std::cerr << "vjepa-bench-trainer-step: masks: " << g.status() << "\n";
        return 1;
      }
      generators.push_back(std::move(g).value());
    }
    torch::Tensor tokens = torch::randint(
        0, 256, {bc.batch, tc.vit.num_tokens(), tc.vit.token_values()}, torch::kUInt8);
    std::vector<double> step_s, flops, target_s, context_s, predictor_s, backward_s, optimizer_s;
    std::vector<double> attention_flops;
    std::vector<double> ctx_len[2], tgt_len[2];
    for (int s = 0; s < o.warmup + o.steps; ++s) {
      jepa::Batch batch;
      batch.tokens = tokens;
      std::vector<MaskLengths> lengths;
      double attn = 0;
      for (int m = 0; m < 2; ++m) {
        auto masks = generators[m]->Generate({234, 0, s}, m, static_cast<int>(bc.batch));
        if (!masks.ok()) {
          std::cerr << "vjepa-bench-trainer-step: masks: " << masks.status() << "\n";
          return 1;
        }
        auto to_tensor = [&](const std::vector<int32_t>& v, int len) {
          return torch::from_blob(const_cast<int32_t*>(v.data()), {bc.batch, len}, torch::kInt32)
              .to(torch::kInt64);
        };
        batch.masks.push_back({to_tensor(masks->context, masks->context_length),
                               to_tensor(masks->target, masks->target_length)});
        lengths.push_back({masks->context_length, masks->target_length});
        attn += 3 * (EncoderAttentionFlops(tc.vit, bc.batch, masks->context_length) +
                     PredictorAttentionFlops(tc.predictor, bc.batch, masks->context_length,
                                             masks->target_length));
        ctx_len[m].push_back(masks->context_length);
        tgt_len[m].push_back(masks->target_length);
      }
      attn += EncoderAttentionFlops(tc.vit, bc.batch, tc.vit.num_tokens());
      const double t0 = Now();
      auto stats = (*trainer)->Step(batch);
      const double dt = Now() - t0;
      if (!stats.ok()) {
        std::cerr << "vjepa-bench-trainer-step: step: " << stats.status() << "\n";
        return 1;
      }
      std::cerr << name << " step " << s << (s < o.warmup ? " (warm-up)" : "") << ": " << Num(dt)
                << " s, loss " << Num(stats->loss) << "\n";
      if (s < o.warmup) continue;
      step_s.push_back(dt);
      flops.push_back(StepFlops(tc.vit, tc.predictor, bc.batch, lengths).back().flops);
      attention_flops.push_back(attn);
      target_s.push_back(stats->target_s);
      context_s.push_back(stats->context_s);
      predictor_s.push_back(stats->predictor_s);
      backward_s.push_back(stats->backward_s);
      optimizer_s.push_back(stats->optimizer_s);
    }
    // FLOP terms at the median mask lengths.
    std::vector<MaskLengths> median_lengths = {
        {static_cast<int64_t>(Median(ctx_len[0])), static_cast<int64_t>(Median(tgt_len[0]))},
        {static_cast<int64_t>(Median(ctx_len[1])), static_cast<int64_t>(Median(tgt_len[1]))}};
    auto terms = StepFlops(tc.vit, tc.predictor, bc.batch, median_lengths);
    double mean_flops = 0, mean_attn = 0;
    for (size_t i = 0; i < flops.size(); ++i) {
      mean_flops += flops[i] / flops.size();
      mean_attn += attention_flops[i] / flops.size();
    }
    const double step = Median(step_s);
    const double achieved = mean_flops / step / 1e9;
    all_flops += mean_flops;
    all_seconds += step;
    std::map<std::string, std::string> f = {
        {"config", "\"" + name + "\""},
        {"step_s", Num(step)},
        {"clips_per_s", Num(bc.batch / step)},
        {"gflop_per_step", Num(mean_flops / 1e9)},
        {"achieved_gflops", Num(achieved)},
        {"ceiling_gflops", Num(ceiling)},
        {"ratio", Num(achieved / ceiling)},
        {"peak_rss_mb", Num(PeakRssMb())},
        {"threads", std::to_string(threads)},
        {"batch", std::to_string(bc.batch)},
        {"target_s", Num(Median(target_s))},
        {"context_encoder_s", Num(Median(context_s))},
        {"predictor_s", Num(Median(predictor_s))},
        {"backward_s", Num(Median(backward_s))},
        {"optimizer_ema_s", Num(Median(optimizer_s))},
        {"attention_flop_share", Num(mean_attn / mean_flops)},
        {"context_len", "[" + Num(Median(ctx_len[0])) + ", " + Num(Median(ctx_len[1])) + "]"},
        {"target_len", "[" + Num(Median(tgt_len[0])) + ", " + Num(Median(tgt_len[1])) + "]"},
    };
    for (const auto& t : terms) f["gflop_" + t.name] = Num(t.flops / 1e9);
    lines.push_back(Json(f));
    std::fprintf(stderr,
                 "%-6s step %.4f s  %.2f clips/s  %.3f GFLOP/step  %.2f GFLOP/s  ratio %.3f  "
                 "(target %.4f, context %.4f, predictor %.4f, backward %.4f, optim+EMA %.4f s; "
                 "attention %.0f%% of FLOPs)\n",
                 name.c_str(), step, bc.batch / step, mean_flops / 1e9, achieved,
                 achieved / ceiling, Median(target_s), Median(context_s), Median(predictor_s),
                 Median(backward_s), Median(optimizer_s), 100 * mean_attn / mean_flops);
  }
  if (lines.size() > 1) {
    const double achieved = all_flops / all_seconds / 1e9;
    lines.push_back(Json({{"config", "\"all\""},
                          {"achieved_gflops", Num(achieved)},
                          {"ceiling_gflops", Num(ceiling)},
                          {"ratio", Num(achieved / ceiling)},
                          {"peak_rss_mb", Num(PeakRssMb())},
                          {"configs", std::to_string(o.configs.size())}}));
  }
  if (o.json) {
    for (const auto& l : lines) std::cout << l << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace vjepa::bench

int main(int argc, char** argv) {
  vjepa::core::ReexecWithPassiveOmp(argv);
  vjepa::bench::Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    std::string value;
    auto take = [&](const char* flag) {
      const std::string f = flag;
      if (a == f && i + 1 < argc) {
        value = argv[++i];
        return true;
      }
      if (a.rfind(f + "=", 0) == 0) {
        value = a.substr(f.size() + 1);
        return true;
      }
      return false;
    };
    auto as_int = [&](const char* flag, int min) {
      char* end = nullptr;
      long v = std::strtol(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || v < min || v > 100000) {
        std::cerr << "vjepa-bench-trainer-step: " << flag << ": must be an integer >= " << min
                  << ", got \"" << value << "\"\n";
        std::exit(2);
      }
      return static_cast<int>(v);
    };
    if (a == "--help" || a == "-h") {
      std::cout << vjepa::bench::kUsage;
      return 0;
    } else if (a == "--json") {
      o.json = true;
    } else if (take("--config")) {
      o.configs.clear();
      std::stringstream ss(value);
      for (std::string c; std::getline(ss, c, ',');) o.configs.push_back(c == "all" ? "micro" : c);
      if (value == "all") o.configs = {"micro", "tiny"};
    } else if (take("--steps")) {
      o.steps = as_int("--steps", 5);
    } else if (take("--warmup")) {
      o.warmup = as_int("--warmup", 0);
    } else if (take("--threads")) {
      o.threads = as_int("--threads", 1);
    } else if (take("--device")) {
      if (value != "cpu" && value != "cuda") {
        std::cerr << "vjepa-bench-trainer-step: --device: must be cpu or cuda, got \"" << value
                  << "\"\n";
        return 2;
      }
      o.device = value;
    } else {
      std::cerr << "vjepa-bench-trainer-step: unknown argument \"" << a << "\"; see --help\n";
      return 2;
    }
  }
  return vjepa::bench::Run(o);
}
